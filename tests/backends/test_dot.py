"""The dot backend: DOT text (parsed by pydot), SVG and PNG through Graphviz's `dot`.

Graphviz is a requirement of these tests (tools/_setup.sh installs it): when `dot` is missing the
SVG/PNG tests fail, they never skip.
"""
import functools
import re
import shutil
import xml.etree.ElementTree as ET

import pydot
import pytest

import incdsl
from incdsl.backends.dot import op_text, si, to_dot
from incdsl.cli.main import main

from conftest import SPECS

SVG = "{http://www.w3.org/2000/svg}"

# Nested module calls, a concat whose second branch starts inside a nested call, a residual add
# with an identity branch, a named concat outside any module, and a training-only head.
NESTED = """
defaults conv(act=relu)
module unit(c) { conv(c, 1) }
module mixed(c) {
  concat {
    conv(c, 1)
    unit(c) -> conv(c, 3)
    conv(c, 1) -> concat { conv(c, 1x3); conv(c, 3x1) }
    avgpool(3, stride=1, pad=same) -> conv(c, 1)
  }
}
module res(c) { add { identity; conv(2, 1) -> conv(c, 3) } }
network nested(classes=3, aux=true) {
  input 16x16x3
  conv(8, 3, stride=2, pad=valid)
  m1 = mixed(2)
  r1 = res(10)
  side = concat { conv(4, 1); maxpool(3, stride=1, pad=same) }
  output predictions = gap -> dense(classes, act=softmax)
  if aux {
    train_output aux(loss_weight=0.3) = m1 -> gap -> dense(classes)
  }
}
"""


@pytest.fixture(scope="module")
def googlenet():
    return incdsl.load(SPECS / "googlenet.inc")


@pytest.fixture
def nested(spec_file):
    return incdsl.load(spec_file(NESTED, "nested.inc"))


def need_dot() -> str:
    exe = shutil.which("dot")
    assert exe, "Graphviz's `dot` is not installed (apt-get install graphviz; tools/_setup.sh does it)"
    return exe


@functools.lru_cache(maxsize=8)
def parse(text: str) -> pydot.Dot:
    """The one graph of DOT `text`, parsed by pydot; kept per text (pydot's parser takes ~2 s of
    CPU for GoogLeNet, and several tests read the same drawing; they only read it)."""
    graphs = pydot.graph_from_dot_data(text)
    assert graphs and len(graphs) == 1, "pydot could not parse the DOT text"
    return graphs[0]


def unq(s: str) -> str:
    return s[1:-1].replace('\\"', '"').replace("\\n", "\n") if s.startswith('"') else s


def clusters(g) -> dict[str, object]:
    """cluster name (module call) -> pydot subgraph, all nesting levels."""
    out = {}
    for sub in g.get_subgraphs():
        name = unq(sub.get_name())
        if name.startswith("cluster_"):
            out[name[len("cluster_"):]] = sub
        out.update(clusters(sub))
    return out


def nodes(g, titles=False) -> dict[str, object]:
    """node name -> pydot node, all nesting levels (attribute defaults `node`/`graph`/`edge` left out;
    the title nodes of module-call clusters only with titles=True)."""
    out = {unq(n.get_name()): n for n in g.get_nodes() if unq(n.get_name()) not in ("node", "graph", "edge")
           and titles == unq(n.get_name()).endswith(":title")}
    for sub in g.get_subgraphs():
        for k, v in nodes(sub, titles).items():
            out.setdefault(k, v)
    return out


def edges(g, visible=True) -> list[tuple[str, str, dict]]:
    out = []
    for e in g.get_edges():
        attrs = e.get_attributes()
        if visible and attrs.get("style") == "invis":
            continue
        out.append((unq(e.get_source()), unq(e.get_destination()), attrs))
    for sub in g.get_subgraphs():
        out += edges(sub, visible)
    return out


def direct_nodes(sub) -> set[str]:
    return {unq(n.get_name()) for n in sub.get_nodes()} - {"node", "graph", "edge"}


# --- DOT text ------------------------------------------------------------------------------------

def test_full_drawing_has_a_cluster_per_module_call_and_every_layer(googlenet):
    g = parse(to_dot(googlenet))
    assert set(clusters(g)) == {b.name for b in googlenet.graph.blocks}
    assert set(nodes(g)) == set(googlenet.layers)
    # one edge per layer input, each labelled with the shape of the tensor it carries
    drawn = edges(g)
    assert len(drawn) == sum(len(l.inputs) for l in googlenet.layers.values())
    for src, dst, attrs in drawn:
        assert unq(attrs["label"]) == "x".join(map(str, googlenet.shapes[src]))
    # a module's layers sit inside its cluster
    c = clusters(g)["inception3a"]
    assert direct_nodes(c) >= {n for n in googlenet.layers if n.startswith("inception3a/")}


def test_nested_calls_nest_and_depth_collapses(nested):
    g = parse(to_dot(nested))
    cs = clusters(g)
    assert set(cs) == {b.name for b in nested.graph.blocks} == {"m1", "m1/b2/unit_1", "r1"}
    assert "cluster_m1/b2/unit_1" in {unq(s.get_name()) for s in cs["m1"].get_subgraphs()}
    assert direct_nodes(cs["m1/b2/unit_1"]) == {"m1/b2/unit_1/conv_1"}

    g2 = parse(to_dot(nested, depth=2))   # m1 and r1 stay clusters; the nested call is one box
    assert set(clusters(g2)) == {"m1", "r1"}
    assert "m1/b2/unit_1" in direct_nodes(clusters(g2)["m1"])
    assert "m1/b2/unit_1/conv_1" not in nodes(g2)

    g1 = parse(to_dot(nested, depth=1))   # every top-level call is a box
    assert clusters(g1) == {}
    ns = nodes(g1)
    assert {"m1", "r1"} <= set(ns) and not any(n.startswith(("m1/", "r1/")) for n in ns)
    # the named concat outside any module is not a module call: its layers stay
    assert {"side", "side/b1/conv_1", "side/b2/maxpool_1"} <= set(ns)
    # one edge per producer into a box, one edge out of it
    es = edges(g1)
    assert [(s, d) for s, d, _ in es if d == "m1"] == [("conv_1", "m1")]
    assert sorted((s, d) for s, d, _ in es if s == "m1") == [("m1", "gap_2"), ("m1", "r1")]


def test_googlenet_depth1_boxes_carry_the_summary_block_totals(googlenet):
    g = parse(to_dot(googlenet, depth=1))
    assert clusters(g) == {}
    ns = nodes(g)
    blocks = googlenet.report()["blocks"]
    assert len(blocks) == 11
    for b in blocks:
        node = ns[b["name"]]
        tip = unq(node.get_attributes()["tooltip"])
        params = int(re.search(r"params ([\d,]+)", tip).group(1).replace(",", ""))
        macs = int(re.search(r"MACs ([\d,]+)", tip).group(1).replace(",", ""))
        assert (params, macs) == (b["params"]["total"], b["macs"]), b["name"]
        label = node.get_attributes()["label"]
        shape = "x".join(map(str, b["shape"]))
        assert f"{si(b['params']['total'])} params · {si(b['macs'])} MACs" in label
        assert b["module"] in label
        # its output shape once: on the edges leaving the box (a box nothing reads says it itself)
        out = [unq(a["label"]) for s, d, a in edges(g) if s == b["name"]]
        assert (set(out) == {shape} and shape not in label) if out else shape in label
    # a training-only head: no edge leaves it
    assert nodes(g)["aux1"].get_attributes()["label"].count("1000") == 1
    # the figures printed by `incdsl summary --depth 1` for inception3a and aux1
    tip = unq(ns["inception3a"].get_attributes()["tooltip"])
    assert "params 163,696" in tip and "MACs 128,049,152" in tip and "output 28x28x256" in tip
    assert "params 3,188,840" in unq(ns["aux1"].get_attributes()["tooltip"])


def test_cluster_titles_have_name_module_and_totals(googlenet):
    g = parse(to_dot(googlenet))
    c = clusters(g)["inception4e"]
    assert unq(c.get_attributes()["label"]) == ""  # the title is a node, which edges go around
    title = nodes(c, titles=True)["inception4e:title"].get_attributes()
    assert "inception4e: inception" in title["label"] and "868K params · 170M MACs" in title["label"]
    assert unq(title["shape"]) == "plaintext"
    # on the row of the module's first layers (branch heads), which Graphviz draws side by side
    text = to_dot(googlenet)
    assert '{ rank=same; "inception4e:title"; "inception4e/b1/conv_1"; }' in text


def test_concat_edges_and_branch_heads_follow_input_order(nested, googlenet):
    for net, concat in ((googlenet, "inception3a/concat_1"), (nested, "m1/concat_1"), (nested, "side")):
        text = to_dot(net)
        g = parse(text)
        into = [s for s, d, _ in edges(g) if d == concat]
        assert into == list(net.layers[concat].inputs)
    # branch heads of m1's outer concat share a rank, chained left to right in input order, the
    # second one inside the nested call m1/b2/unit_1
    text = to_dot(nested)
    assert ('  { rank=same;\n    "m1/b1/conv_1" -> "m1/b2/unit_1/conv_1" [style=invis];\n'
            '    "m1/b2/unit_1/conv_1" -> "m1/b3/conv_1" [style=invis];\n'
            '    "m1/b3/conv_1" -> "m1/b4/avgpool_1" [style=invis];\n  }') in text


def test_node_labels_are_compact(spec_file):
    net = incdsl.load(spec_file("""
network t {
  input 35x35x3
  conv(192, 3, stride=2, pad=valid, act=relu) -> maxpool(3, stride=2, ceil=true) -> conv(8, 1x7, act=softmax)
  flatten -> dropout(0.5) -> dense(3)
}"""))
    # as `incdsl summary` writes them: batch norm and activation shown, `conv 1x1` only with neither
    assert [op_text(l) for l in net.layers.values()] == [
        "input", "conv 3x3/2 valid relu", "maxpool 3x3/2 ceil", "conv 1x7 softmax", "flatten", "dropout 0.5",
        "dense"]
    from incdsl.analysis.report import describe
    assert [op_text(l) for l in net.layers.values()] == [describe(l) for l in net.layers.values()]
    g = parse(to_dot(net))
    label = nodes(g)["conv_1"].get_attributes()["label"]
    assert "conv 3x3/2 valid relu" in label and "17x17x192" not in label  # the shape is on its edge
    assert [unq(a["label"]) for s, d, a in edges(g) if s == "conv_1"] == ["17x17x192"]
    assert "3</b>" not in nodes(g)["dense_1"].get_attributes()["label"] and \
        "<br/>3>" in nodes(g)["dense_1"].get_attributes()["label"]  # the output: shape on the node


def test_training_only_heads_are_dashed(nested, googlenet):
    g = parse(to_dot(nested))
    ns = nodes(g)
    for name, node in ns.items():
        style = unq(node.get_attributes().get("style", ""))
        assert ("dashed" in style) == nested.is_train_only(name), name
    for src, dst, attrs in edges(g):
        assert (unq(attrs.get("style", "")) == "dashed") == nested.is_train_only(dst)
    g = parse(to_dot(googlenet))
    style = unq(clusters(g)["aux1"].get_attributes().get("style", ""))
    assert "dashed" in style
    assert "dashed" not in unq(clusters(g)["inception4a"].get_attributes().get("style", ""))


def test_only_draws_one_module_call(googlenet):
    g = parse(to_dot(googlenet, only="inception4a"))
    assert set(clusters(g)) == {"inception4a"}
    ns = nodes(g)
    inside = {n for n in googlenet.layers if n.startswith("inception4a/")}
    assert inside <= set(ns)
    assert set(ns) - inside == {"pool3", "inception4a:out"}  # stubs for what comes in and goes out
    assert "to inception4b, aux1" in unq(ns["inception4a:out"].get_attributes()["label"])


# --- the command: SVG, PNG, errors ----------------------------------------------------------------

def test_svg_and_png_are_produced(tmp_path, capsys):
    need_dot()
    svg, png = tmp_path / "g.svg", tmp_path / "g.png"
    assert main(["compile", str(SPECS / "googlenet_tv.inc"), "--to", "svg", "-o", str(svg)]) == 0
    assert main(["compile", str(SPECS / "googlenet_tv.inc"), "--to", "png", "--depth", "1", "-o",
                 str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(svg).getroot()
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert "cluster_inception5b" in titles and "inception5b/concat_1" in titles
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


# A residual whose branch holds an Inception-v3-like block: without the layout hints, Graphviz puts
# this block's first branch to the right of the others.
RESIDUAL = """
defaults conv(bn=true, act=relu, bias=false, pad=same)
module c2(c) { conv(c, 1) }
module block_c {
  concat {
    conv(32, 1)
    conv(38, 1) -> concat { conv(38, 1x3); conv(38, 3x1) }
    c2(44) -> conv(38, 3) -> concat { conv(38, 1x3); conv(38, 3x1) }
    avgpool(3, stride=1, pad=same) -> conv(19, 1)
  }
}
module res { add { identity; conv(16, 1) -> conv(16, 3); block_c() -> conv(16, 1) } }
network residual {
  input 32x32x3
  conv(16, 3, stride=2, pad=valid)
  r = res()
  gap -> dense(3, act=softmax)
}
"""


def svg_positions(path) -> dict[str, tuple[float, float]]:
    """node name -> (x, y) of its first text line in an SVG drawn by Graphviz."""
    pos = {}
    for g in ET.parse(path).getroot().iter(f"{SVG}g"):
        if g.get("class") == "node":
            t = g.find(f".//{SVG}text")
            pos[g.find(f"{SVG}title").text] = (float(t.get("x")), float(t.get("y")))
    return pos


def assert_side_by_side(pos, heads):
    xs = [pos[h][0] for h in heads]
    assert xs == sorted(xs), f"branches out of order: {list(zip(heads, xs))}"
    ys = [pos[h][1] for h in heads]  # the first text line: bold and plain labels differ by a point
    assert max(ys) - min(ys) <= 2, f"branch heads on different rows: {[pos[h] for h in heads]}"


def test_svg_layout_puts_concat_branches_side_by_side_in_order(tmp_path, spec_file):
    need_dot()
    out = tmp_path / "n.svg"
    assert main(["compile", str(spec_file(NESTED, "nested.inc")), "--to", "svg", "-o", str(out)]) == 0
    pos = svg_positions(out)
    assert_side_by_side(pos, ["m1/b1/conv_1", "m1/b2/unit_1/conv_1", "m1/b3/conv_1", "m1/b4/avgpool_1"])
    assert_side_by_side(pos, ["m1/b3/b1/conv_1", "m1/b3/b2/conv_1"])  # the concat nested in a branch
    assert_side_by_side(pos, ["side/b1/conv_1", "side/b2/maxpool_1"])

    assert main(["compile", str(spec_file(RESIDUAL, "residual.inc")), "--to", "svg", "-o", str(out)]) == 0
    pos = svg_positions(out)
    block = "r/b3/block_c_1"
    assert_side_by_side(pos, [f"{block}/b1/conv_1", f"{block}/b2/conv_1", f"{block}/b3/c2_1/conv_1",
                              f"{block}/b4/avgpool_1"])
    assert_side_by_side(pos, ["r/b2/conv_1", f"{block}/b1/conv_1"])


def test_default_output_is_named_after_the_network(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(SPECS / "googlenet.inc"), "--to", "dot", "--depth", "1"]) == 0
    assert (tmp_path / "googlenet.dot").read_text().startswith('digraph "googlenet"')
    assert "wrote googlenet.dot" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_missing_dot_is_a_clean_error_and_writes_nothing(tmp_path, monkeypatch, capsys, fmt):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"g.{fmt}"
    rc = main(["compile", str(SPECS / "googlenet.inc"), "--to", fmt, "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Graphviz" in err and "apt-get install graphviz" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    # DOT text needs no Graphviz at all
    assert main(["compile", str(SPECS / "googlenet.inc"), "--to", "dot"]) == 0
    parse((tmp_path / "googlenet.dot").read_text())


def test_failing_dot_is_a_clean_error_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\necho 'Error: layout went wrong' >&2\nexit 1\n")
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    out = tmp_path / "g.png"
    out.write_bytes(b"old")  # an earlier drawing survives a failed one
    rc = main(["compile", str(SPECS / "googlenet.inc"), "--to", "png", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "layout went wrong" in err and "Traceback" not in err
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "g.png"]


def test_bad_depth_and_only_are_usage_errors(capsys):
    assert main(["compile", str(SPECS / "googlenet.inc"), "--to", "dot", "--depth", "0", "-o", "-"]) == 2
    assert main(["compile", str(SPECS / "googlenet.inc"), "--to", "dot", "--only", "inception9z", "-o",
                 "-"]) == 2
    err = capsys.readouterr().err
    assert "--depth must be at least 1" in err and "no module call of that name" in err
