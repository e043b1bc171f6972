"""Summary extras: % of total, repeated calls folded ("block35 x10"), backbone taps against timm's
feature_info, memory (hand counts, and a measurement: the tensors PyTorch's autograd saves for
backward in torchvision's googlenet and inception_v3), the roofline bound by hand."""
from __future__ import annotations

import json

import pytest

import incdsl
from incdsl.analysis.roofline import layer_bounds
from incdsl.cli.commands.flag_values import parse_device
from incdsl.passes.memory import forward_peak, layer_memory, training_step

from conftest import SPECS

# 8x8x3 -> conv(4, 3, bias=false, bn=true) -> maxpool(2) -> gap -> dense(2)
TINY = """
network t() {
  input 8x8x3
  c = conv(4, 3, bias=false, bn=true, act=relu)
  p = maxpool(2)
  gap -> dense(2)
}
"""


def test_percent_of_total_and_memory_by_hand(spec_file, cli):
    path = spec_file(TINY)
    net = incdsl.load(path)
    # conv: 3*3*3*4 = 108 weights + 8 gamma/beta + 8 statistics = 124 params, 8*8*4*27 = 6,912 MACs
    # dense: 4*2 + 2 = 10 params, 8 MACs -> 134 params, 6,920 MACs
    rows = {l.split()[0]: l.split() for l in cli.ok("summary", path).splitlines() if l[:1].isalpha()}
    assert rows["c"][-4:] == ["124", f"{124 * 100 / 134:.1f}", "6,912", f"{6912 * 100 / 6920:.1f}"]
    mem = layer_memory(net)
    # float32, one image: conv keeps the input (192 values); batch norm its input, the conv output
    # (256); relu its output, in place (256); maxpool its input (charged to c) and int64 indices
    # (64 x 8 bytes); gap its input (64 values, charged to p); dense its input (4)
    assert mem["input"].kept == 4 * 192
    assert mem["c"].kept == 4 * 256 + 4 * 256 and mem["c"].outputs == 2 * 4 * 256
    assert mem["p"].kept == 8 * 64 + 4 * 64 and mem["gap_1"].kept == 4 * 4
    assert mem["c"].params == 4 * 124
    step = training_step(net, batch=8, optimizer="adam")
    assert step.total == 4 * 134 + 4 * 126 + 2 * 4 * 126 + 8 * (768 + 2048 + 768 + 16)
    # forward peak: the input (768 B) and the conv's output with its pre-BN copy (2 x 1,024 B)
    assert forward_peak(net) == 768 + 2 * 1024
    data = json.loads(cli.ok("summary", path, "--json", "--batch", "8", "--optimizer", "adam"))
    assert data["memory"]["training_step"]["total"] == step.total
    assert data["memory"]["param_bytes"] == {"float32": 4 * 134}
    assert {l["name"]: l["memory"]["kept"] for l in data["layers"]}["c"] == 2048
    text = cli.ok("summary", path, "--memory", "--batch", "8", "--optimizer", "adam")
    assert "param bytes" in text and "kept x8" in text and "training step at batch 8 (adam)" in text


def test_block_memory_sums_its_layers(cli):
    data = json.loads(cli.ok("summary", SPECS / "googlenet.inc", "--json"))
    layers = {l["name"]: l["memory"] for l in data["layers"]}
    b = next(b for b in data["blocks"] if b["name"] == "inception3a")
    inside = [m for n, m in layers.items() if n.startswith("inception3a/")]
    # float32: the params' bytes are 4 x the block's params (163,696 in the paper's Table 1 row)
    assert b["memory"]["param_bytes"] == 4 * 163_696 == sum(m["param_bytes"] for m in inside)
    assert b["memory"]["kept"] == sum(m["kept"] for m in inside) > 0


def test_roofline_by_hand(spec_file, cli):
    net = incdsl.load(spec_file(TINY))
    dev = parse_device("1T,1G")
    b = layer_bounds(net, dev, batch=2)["c"]
    # 2 x 6,912 MACs x 2 images = 27,648 FLOPs; bytes: 124 params x 4 + 2 images x 4 x (192 in + 256 out)
    assert (b.flops, b.bytes) == (27_648, 4 * 124 + 2 * 4 * (192 + 256))
    assert b.seconds == max(27_648 / 1e12, b.bytes / 1e9) and not b.compute_bound
    text = cli.ok("summary", spec_file(TINY), "--device", "1T,1G", "--batch", "2")
    assert "bound" in text and "a lower bound, not a prediction" in text


def test_repeated_calls_fold_into_one_row(cli):
    rows = [l.split() for l in cli.ok("summary", SPECS / "inception_resnet_v2.inc", "--depth",
                                      "1").splitlines()]
    folded = {r[0]: r for r in rows if len(r) > 2 and r[1].startswith("x") and r[1][1:].isdigit()}
    # keras' InceptionResNetV2: block35_1..10, block17_1..20, block8_1..9 the same call, then block8_10
    # with other arguments (scale 1.0, no relu): its own row
    assert {k: v[1] for k, v in folded.items()} == {"block35": "x10", "block17": "x20", "block8": "x9"}
    assert folded["block35"][2:5] == ["resnet_a", "35x35x320", f"{10 * 123_408:,}"]
    assert not any(r and r[0].startswith("block35_") for r in rows)
    assert [r[1] for r in rows if r and r[0] == "block8_10"] == ["resnet_c"]
    # same module, same arguments, different names: Inception v3's mixed5 and mixed6 (v3_c(160)) fold;
    # mixed4 (v3_c(128)) and mixed7 (v3_c(192)) have other arguments and stay rows of their own
    rows = [l.split() for l in cli.ok("summary", SPECS / "inception_v3.inc", "--depth", "1").splitlines()]
    names = [r[0] for r in rows if r and r[0].startswith("mixed")]
    assert names[3:7] == ["mixed3", "mixed4", "mixed5..mixed6", "mixed7"]
    net = incdsl.load(SPECS / "inception_v3.inc")
    pair = sum(c.params for n, c in net.counts.items() if n.split("/")[0] in ("mixed5", "mixed6"))
    assert [r for r in rows if r and r[0] == "mixed5..mixed6"][0][1:4] == ["x2", "v3_c", "17x17x768"]
    assert f"{pair:,}" in [r for r in rows if r and r[0] == "mixed5..mixed6"][0]


@pytest.mark.slow
def test_taps_match_timm_feature_info(cli):
    import timm
    import torch
    for name in ("inception_v3", "inception_resnet_v2"):
        with torch.device("meta"):  # feature_info is all we read: no weights allocated or initialized
            info = timm.create_model(name, features_only=True, pretrained=False).feature_info
        data = json.loads(cli.ok("summary", SPECS / f"{name}.inc", "--json"))
        assert [t["num_chs"] for t in data["taps"]] == info.channels()
        assert [t["reduction"] for t in data["taps"]] == info.reduction()
    assert [t["name"] for t in data["taps"]][2:] == ["block35_10", "block17_20", "conv_7b"]


@pytest.mark.slow
def test_kept_for_backward_matches_pytorch_autograd():
    """Measured: the bytes of the tensors autograd saves in one training forward pass (one image,
    float32), counted once per storage, parameters left out. Tolerance: 1% (README)."""
    import torch
    import torchvision

    # (inception_v3 at 299 agrees within 0.4% too; the README has both figures)
    for name, spec, size in (("googlenet", "googlenet_tv.inc", 224),):
        model = getattr(torchvision.models, name)(weights=None, aux_logits=False, init_weights=False).train()
        params = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
        saved: dict[int, int] = {}

        def pack(t):
            st = t.untyped_storage()
            if st.data_ptr() not in params:
                saved[st.data_ptr()] = st.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(torch.zeros(1, 3, size, size))
        measured = sum(saved.values())
        ours = sum(m.kept for m in layer_memory(incdsl.load(SPECS / spec, aux=False)).values())
        assert abs(ours - measured) / measured < 0.01, (name, ours, measured)
