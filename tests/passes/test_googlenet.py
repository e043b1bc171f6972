"""GoogLeNet figures from the front end alone (torchvision's own models are checked in test_references)."""
import incdsl

from conftest import SPECS


def test_googlenet_tv_matches_torchvision_published_counts():
    net = incdsl.load(SPECS / "googlenet_tv.inc")
    s = net.report()
    # torchvision.models.googlenet: sum(p.numel() for p in model.parameters())
    assert s["inference"]["params"]["trainable"] == 6_624_904
    assert s["params"]["trainable"] == 13_004_888
    assert s["inference"]["macs"] == 1_498_376_192


def test_googlenet_paper_block_shapes():
    net = incdsl.load(SPECS / "googlenet.inc")
    shapes = {b["name"]: tuple(b["shape"]) for b in net.report()["blocks"]}
    assert shapes["inception3a"] == (28, 28, 256)
    assert shapes["inception4e"] == (14, 14, 832)
    assert shapes["inception5b"] == (7, 7, 1024)


def test_networkx_view_keeps_concat_input_order():
    net = incdsl.load(SPECS / "googlenet.inc")
    g = net.nx
    assert g.number_of_nodes() == len(net.layers)
    concat = "inception3a/concat_1"
    ports = sorted((d["port"], src) for src, _, d in g.in_edges(concat, data=True))
    assert [src for _, src in ports] == list(net.layers[concat].inputs)
    assert [src.split("/")[1] for _, src in ports] == ["b1", "b2", "b3", "b4"]
