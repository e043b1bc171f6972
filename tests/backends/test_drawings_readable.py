"""Static drawings that keep their information and stay readable (issue 15, item 3): bn and
activation in labels, params on plain layers at --depth 1, shapes once, no edge through a
cluster's title, a whole Inception v3 PNG that can be read, and a `compare --plot` with the
network's name and labels that do not overlap."""
import re
import struct
import xml.etree.ElementTree as ET

import incdsl
from incdsl.backends.dot import to_dot
from incdsl.cli.main import main

from conftest import SPECS

SVG = "{http://www.w3.org/2000/svg}"


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_whole_inception_v3_png_is_readable(tmp_path, capsys):
    out = tmp_path / "v3.png"
    assert main(["compile", str(SPECS / "inception_v3.inc"), "--to", "png", "-o", str(out)]) == 0
    assert "module calls drawn folded" in capsys.readouterr().err
    w, h = png_size(out)
    # was 695x6480 px, layer by layer; folded it is one column of 16 boxes with 11-point text at 96 dpi
    assert h <= 2000 and h / w <= 6, (w, h)
    text = tmp_path / "v3.dot"
    assert main(["compile", str(SPECS / "inception_v3.inc"), "--to", "dot", "-o", str(text)]) == 0
    dot = text.read_text()
    assert all(f'"mixed{i}" [label=<<b>mixed{i}</b>' in dot for i in range(11)) and "subgraph" not in dot
    # every layer on request
    assert main(["compile", str(SPECS / "inception_v3.inc"), "--to", "dot", "--depth", "all", "-o",
                 str(text)]) == 0
    net = incdsl.load(SPECS / "inception_v3.inc")
    assert all(f'"{n}" [label=' in text.read_text() for n in net.layers)


def test_plain_layers_show_params_at_depth_1():
    net = incdsl.load(SPECS / "googlenet.inc")
    dot = to_dot(net, depth=1)
    conv1 = re.search(r'"conv1" \[label=<(.*?)>,', dot).group(1)
    c = net.counts["conv1"]
    assert (c.params, c.macs) == (9472, 118013952)
    assert "conv 7x7/2 pad 3 relu" in conv1 and "9.47K params · 118M MACs" in conv1
    assert "params" not in re.search(r'"pool1" \[label=<(.*?)>,', dot).group(1)  # nothing to count
    assert "params" not in re.search(r'"conv1" \[label=<(.*?)>,', to_dot(net)).group(1)  # unfolded: as before


def test_bn_and_activation_in_labels():
    dot = to_dot(incdsl.load(SPECS / "inception_v3.inc"), only="mixed9")
    assert re.search(r'"mixed9/b1/conv_1" \[label=<<b>conv 1x1 bn relu</b>>', dot)
    plain = to_dot(incdsl.load(SPECS / "googlenet.inc"), only="inception3a")
    assert "<b>conv 1x1 relu</b>" in plain and "bn" not in plain


def _curve_points(d: str, steps: int = 20) -> list[tuple[float, float]]:
    """Points along an SVG path of M and C commands, as Graphviz writes edges."""
    nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", d)]
    pts = list(zip(nums[0::2], nums[1::2]))
    out = [pts[0]]
    for i in range(1, len(pts) - 2, 3):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        for k in range(1, steps + 1):
            t = k / steps
            out.append(
                tuple((1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t ** 2 * c + t ** 3 * e
                             for a, b, c, e in zip(p0, p1, p2, p3)))
    return out


def test_edges_do_not_cross_module_titles(tmp_path):
    out = tmp_path / "g.svg"
    assert main(["compile", str(SPECS / "googlenet.inc"), "--to", "svg", "--depth", "all", "-o",
                 str(out)]) == 0
    root = ET.parse(out).getroot()
    boxes, paths = {}, []
    for g in root.iter(f"{SVG}g"):
        title = g.find(f"{SVG}title").text if g.find(f"{SVG}title") is not None else ""
        if g.get("class") == "node" and title.endswith(":title"):
            xs, ys = zip(*((float(t.get("x")), float(t.get("y"))) for t in g.iter(f"{SVG}text")))
            boxes[title] = (min(xs) - 60, min(ys) - 12, max(xs) + 60, max(ys) + 3)  # text is centred on x
        elif g.get("class") == "edge":
            paths += [p.get("d") for p in g.iter(f"{SVG}path")]
    assert len(boxes) == 11 and len(paths) > 100
    for name, (x0, y0, x1, y1) in boxes.items():
        for d in paths:
            hit = [p for p in _curve_points(d) if x0 < p[0] < x1 and y0 < p[1] < y1]
            assert not hit, f"an edge runs through the title of {name}: {hit[:2]}"


def test_compare_plot_title_names_the_network_and_labels_do_not_overlap(tmp_path):
    from incdsl.analysis.plot import compare_figure
    from incdsl.analysis.sweep import align_blocks, measure_all, plan

    spec = incdsl.network.Spec(SPECS / "inception_v3.inc")
    widths = [f"{w / 100:g}" for w in range(25, 151, 5)]  # 26 variants, crowded near each other
    rows = measure_all(plan([spec], sweeps=[("width", widths)]), 1, False)
    fig, labels = compare_figure(rows, align_blocks(rows))
    assert "inception_v3" in fig.axes[0].get_title()
    assert len(labels) >= 10
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    out = tmp_path / "p.png"
    assert main(["compare", str(SPECS / "inception_v3.inc"), "--sweep", "width=0.5,0.75,1.0", "--plot",
                 str(out)]) == 0
    assert png_size(out)[0] > 500


def test_compare_plot_of_five_reference_nets_fits_its_title_and_labels_its_own_points(tmp_path):
    """`incdsl compare googlenet googlenet_tv inception_v3 inception_v3_tv bn_inception --plot`:
    the title fits the figure (wrapped), every label is nearest its own point or tied to it by a
    leader line, and no label covers a point."""
    import math

    from incdsl.analysis.plot import compare_figure
    from incdsl.analysis.sweep import align_blocks, measure_all, plan

    names = ["googlenet", "googlenet_tv", "inception_v3", "inception_v3_tv", "bn_inception"]
    out = tmp_path / "cmp.png"
    assert main(["compare", *[str(SPECS / f"{n}.inc") for n in names], "--plot", str(out)]) == 0
    rows = measure_all(plan([incdsl.network.Spec(SPECS / f"{n}.inc") for n in names]), 1, False)
    fig, labels = compare_figure(rows, align_blocks(rows))
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    title = ax.title.get_window_extent(renderer)
    assert 0 <= title.x0 and title.x1 <= fig.bbox.x1 and title.y1 <= fig.bbox.y1
    assert all(n in ax.get_title().replace("\n", " ") for n in names)
    assert sorted(t.get_text() for t in labels) == sorted(r.label for r in rows) == sorted(names)
    dots = {t.get_text(): ax.transData.transform(t.xy) for t in labels}  # every point is labelled
    r = 5 * fig.dpi / 72
    for t in labels:
        box = t.get_window_extent(renderer)
        centre = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        nearest = min(dots, key=lambda n: math.dist(dots[n], centre))
        assert nearest == t.get_text() or t.arrow_patch is not None, t.get_text()
        for n, (x, y) in dots.items():
            assert not (
                box.x0 < x + r and x - r < box.x1 and box.y0 < y + r and y - r < box.y1), (t.get_text(), n)
    assert png_size(out)[0] > 500
