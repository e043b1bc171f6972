"""Window arithmetic in one place (incdsl/ir/window.py) and the pads pass the backends read (issue 19,
item 2): TF's "same" split, explicit pads, the ceil overhang, worked out by hand here."""
import incdsl
from incdsl.backends.onnx.direct import emit
from incdsl.ir.window import NO_PADS, Pads, adaptive_bin, extent, output_length, overhang, resolve, same_split
from incdsl.weights.arrays import init_weights

NET = """
network pads() {
  input 15x16x3
  conv(4, 3, stride=2)
  maxpool(3, stride=2, pad=(0, 1, 1, 0), ceil=true)
  avgpool(2, stride=2, pad=same, count_pad=true)
  conv(4, 1, pad=valid)
}
"""


def test_output_length_and_its_derivation():
    assert output_length(112, 3, 2, 1, "same", False) == (56, "ceil(112 / 2) = 56 with pad=same")
    assert output_length(112, 3, 2, 1, (0, 0), True)[0] == 56  # GoogLeNet's ceil-mode pool: 55.5 -> 56
    assert output_length(112, 3, 2, 1, "valid", False) == (55, "floor((112 - 3) / 2) + 1 = 55 with pad=valid")
    # the last window would start in the end padding: PyTorch drops it
    assert output_length(5, 2, 2, 1, (1, 1), True)[0] == 3
    assert output_length(4, 3, 1, 2, "valid", False)[0] == 0  # a dilated 3-tap kernel spans 5


def test_same_split_puts_the_odd_pixel_at_the_end():
    assert same_split(16, 3, 2, 1, 8) == (0, 1)   # TF: 1 pixel of padding, at the bottom
    assert same_split(15, 3, 2, 1, 8) == (1, 1)
    assert same_split(16, 3, 1, 2, 16) == (2, 2)  # dilation 2: the kernel spans 5
    assert same_split(8, 1, 2, 1, 4) == (0, 0)


def test_resolve_gives_real_pads_and_the_ceil_overhang():
    # kernel 3, stride 2, ceil mode. Rows: 17 + (0 + 1) padded, ceil((18 - 3) / 2) + 1 = 9 windows,
    # the last reaching 8 * 2 + 3 = 19: one row past the padding. Columns: 16 + (1 + 0),
    # ceil(14 / 2) + 1 = 8 windows reaching 17: none past it.
    p = resolve((0, 1, 1, 0), (3, 3), (2, 2), (1, 1), (17, 16, 3), (9, 8, 3))
    assert p == Pads(0, 1, 1, 0, over_bottom=1, over_right=0)
    assert p.real == (0, 1, 1, 0) and p.begin == [0, 1] and p.end == [2, 0]
    # pad=same at stride 2 on 16: 8 outputs, (8 - 1) * 2 + 3 - 16 = 1 pixel, at the end (TF)
    assert resolve("same", (3, 3), (2, 2), (1, 1), (16, 15, 3), (8, 8, 3)) == Pads(0, 1, 1, 1)
    assert resolve("valid", (3, 3), (1, 1), (1, 1), (8, 8), (6, 6)) is NO_PADS


def test_the_pads_pass_and_the_backends_read_it():
    net = incdsl.loads(NET)
    conv, pool, avg, last = (n for n in net.layers if n != "input")
    # 15x16 at stride 2, same: 8x8; rows (7 * 2 + 3 - 15) = 2 -> (1, 1), columns 1 -> (0, 1)
    assert net.shapes[conv] == (8, 8, 4) and net.pads[conv] == Pads(1, 1, 0, 1)
    # 8 + (0 + 1) rows: ceil(6 / 2) + 1 = 4 windows reaching 3 * 2 + 3 = 9: none over; columns alike
    assert net.shapes[pool] == (4, 4, 4) and net.pads[pool] == Pads(0, 1, 1, 0)
    assert net.pads[avg] == NO_PADS and net.pads[last] == NO_PADS
    w = init_weights(net)
    nodes = {n.name: n for n in emit(net, w).model.graph.node}
    attr = lambda node, key: next(list(a.ints) for a in node.attribute if a.name == key)  # noqa: E731
    assert attr(nodes[pool], "pads") == [0, 1, 1, 0]  # ONNX: begin (top, left), end (bottom, right)
    assert attr(nodes[conv], "pads") == [1, 0, 1, 1]
    net.pads[pool] = Pads(1, 1, 1, 1, over_bottom=1)  # what the pass says is what the emitter writes
    nodes = {n.name: n for n in emit(net, w).model.graph.node}
    assert attr(nodes[pool], "pads") == [1, 1, 2, 1]


def test_edges_of_the_length_rule_and_its_text():
    """The cases mutation testing found unpinned (tools/mutation.sh): the default dilation, the
    derivation text of explicit pads and of stride 1, an exact division, a window that just fits
    (span 0) and one that does not (never a negative length), ceil mode with begin padding."""
    assert extent(3) == 3 and extent(3, 2) == 5
    assert output_length(7, 3, 2, 1, (1, 2), False) == (4, "floor((7 + 3 - 3) / 2) + 1 = 4 with padding 1+2")
    assert output_length(7, 3, 2, 1, (1, 1), False) == (4, "(7 + 2 - 3) / 2 + 1 = 4 with padding 1+1")
    assert output_length(7, 3, 2, 1, "valid", False) == (3, "(7 - 3) / 2 + 1 = 3 with pad=valid")
    assert output_length(7, 3, 1, 1, "valid", False) == (5, "7 - 3 + 1 = 5 with pad=valid")
    assert output_length(7, 3, 2, 1, (0, 1), True) == (
        4,
        "ceil((7 + 1 - 3) / 2) + 1 = 4 with padding 0+1, ceil mode",
    )
    assert output_length(3, 3, 1, 1, "valid", False)[0] == 1    # span 0: exactly one window
    assert output_length(2, 5, 2, 1, "valid", False)[0] == 0    # span -3: none, not -1
    # ceil mode, pads (2, 0): windows start at -2, 0, 2, 4; the last starts inside the input, kept
    assert output_length(6, 3, 2, 1, (2, 0), True)[0] == 4
    assert output_length(1, 3, 2, 1, (2, 2), True)[0] == 2      # starts -2, 0: kept; 2 is past it


def test_adaptive_bins_overlap_as_pytorch_s():
    # PyTorch's AdaptiveAvgPool2d: [floor(i * 10 / 4), ceil((i + 1) * 10 / 4))
    assert [adaptive_bin(i, 10, 4) for i in range(4)] == [(0, 3), (2, 5), (5, 8), (7, 10)]
    assert [adaptive_bin(i, 6, 3) for i in range(3)] == [(0, 2), (2, 4), (4, 6)]


def test_resolve_keeps_any_single_pad_and_overhang():
    """Each of the six numbers alone makes a `Pads` (not NO_PADS), and the overhang counts the
    dilation: 8 pixels, kernel 2 at dilation 2 (spans 3), stride 2, ceil mode: 4 windows, the
    last reaching 3 * 2 + 3 = 9, one past the input."""
    for pad in ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)):
        t, b, l, r = pad
        assert resolve(pad, (1, 1), (1, 1), (1, 1), (4, 4, 3), (4 + t + b, 4 + l + r, 3)) == Pads(*pad)
    assert overhang(8, 2, 2, 2, 0, 0, 4) == 1
    assert resolve((0, 0, 0, 0), (2, 1), (2, 1), (2, 1), (8, 4, 3), (4, 4, 3)) == Pads(over_bottom=1)
    assert resolve((0, 0, 0, 0), (1, 2), (1, 2), (1, 2), (4, 8, 3), (4, 4, 3)) == Pads(over_right=1)
    assert resolve("valid", (3, 3), (1, 1), (1, 1), (5, 5, 3), (3, 3, 3)) is NO_PADS
