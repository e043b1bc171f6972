"""The shape rules' refusals as a user reads them (incdsl/ops/rules.py), pinned where
`tools/mutation.sh ops` (mutmut) found them unpinned: the message, the hint and which input the
caret points at (`culprit`) for multiply's gates, an activation given a slope, channel_shuffle's
groups; and `Count` sums, which every total of summary/compare is made of. The gate forms are the
ones Keras' Multiply, torch and ONNX's Mul broadcast (squeeze-and-excitation, Hu et al. 2018):
a vector of C values or a 1x1xC map against an HxWxC map."""
from __future__ import annotations

import pytest

from incdsl.ops import OPS, Count, ShapeError, infer, normalize


def refusal(op: str, shapes, **raw) -> tuple[str, str | None, int | None]:
    """(message, hint, culprit) of the ShapeError the rule raises."""
    with pytest.raises(ShapeError) as e:
        infer(OPS[op], normalize(OPS[op], raw), [tuple(s) for s in shapes])
    return e.value.message, e.value.hint, e.value.culprit


def out(op: str, shapes, **raw):
    return infer(OPS[op], normalize(OPS[op], raw), [tuple(s) for s in shapes])[0]


GATE_HINT = ("a gate scales a map's channels: give it the map's 6 channels, as 6 values (gap -> dense(6)) "
             "or as a 1x1x6 map (adaptive_avgpool(1) -> conv(6, 1))")


@pytest.mark.parametrize("shapes, want", [([(8, 8, 6), (6,)], (8, 8, 6)), ([(6,), (8, 8, 6)], (8, 8, 6)),
                                          ([(8, 8, 6), (1, 1, 6)], (8, 8, 6)),
                                          ([(1, 1, 6), (8, 8, 6), (6,)], (8, 8, 6)),
                                          ([(8, 8, 6), (8, 8, 6)], (8, 8, 6)), ([(6,), (6,)], (6,))])
def test_multiply_takes_gates_of_the_maps_channels(shapes, want):
    assert out("multiply", shapes) == want


@pytest.mark.parametrize("shapes, shown, culprit", [
    ([(8, 8, 6), (5,)], "8x8x6 vs 5", 1),            # a vector of the wrong length
    ([(8, 8, 6), (2, 2, 6)], "8x8x6 vs 2x2x6", 1),   # a map that is not 1x1 (numpy would refuse it too)
    ([(8, 8, 6), (1, 2, 6)], "8x8x6 vs 1x2x6", 1),
    ([(8, 8, 6), (1, 1, 5)], "8x8x6 vs 1x1x5", 1),   # 1x1, other channels
    ([(8, 8, 6), (8, 6)], "8x8x6 vs 8x6", 1),        # rank 2 is no gate
    ([(8, 8, 6), (8, 8, 6), (8, 8, 5)], "8x8x6 vs 8x8x5", 2),
    ([(4, 4, 6), (1, 1, 6), (3, 3, 6)], "4x4x6 vs 3x3x6", 2),
    ([(5,), (8, 8, 6)], "8x8x6 vs 5", 1),            # the first input is wrong: the caret goes to the map
])
def test_multiply_refuses_what_does_not_broadcast_and_points_at_it(shapes, shown, culprit):
    assert refusal("multiply", shapes) == (f"multiply inputs do not broadcast: {shown}", GATE_HINT, culprit)


def test_a_slope_only_for_leaky_relu():
    assert refusal("act", [(4, 4, 6)], fn="relu", slope=0.1) == (
        "takes no slope: only leaky_relu has one", "drop the slope, or use leaky_relu(0.1)", None)
    assert refusal("act", [(4, 4, 6)], fn="sigmoid", slope=2.5)[1] == "drop the slope, or use leaky_relu(2.5)"
    assert out("act", [(4, 4, 6)], fn="leaky_relu", slope=0.1) == (4, 4, 6)
    assert out("act", [(4, 4, 6)], fn="relu") == (4, 4, 6)


def test_channel_shuffle_needs_a_multiple_of_its_groups():
    assert refusal("channel_shuffle", [(4, 4, 6)], groups=4) == (
        "4 groups do not divide the 6 input channels", "channel_shuffle(g) needs a multiple of g channels",
        None)
    assert out("channel_shuffle", [(4, 4, 6)], groups=3) == (4, 4, 6)


def test_counts_add_field_by_field():
    assert Count(1, 2, 3) + Count(10, 20, 300) == Count(11, 22, 303)
    assert sum([Count(1, 0, 5), Count(0, 4, 7)], Count()) == Count(1, 4, 12)


@pytest.mark.parametrize("op, raw, key", [
    ("normalize", {"mean": (1.0, 2.0), "std": (1.0,)}, "mean"),
    ("normalize", {"mean": (1.0,), "std": (1.0, 2.0)}, "std"),
    ("affine", {"scale": (1.0, 2.0)}, "scale"), ("affine", {"scale": (1.0,), "shift": (1.0, 2.0)}, "shift"),
])
def test_normalize_and_affine_take_one_value_or_one_per_channel(op, raw, key):
    assert refusal(op, [(4, 4, 3)], **raw) == (f"{key} gives 2 values for 3 channels",
                                                "give one value, or one per channel", None)


def test_affine_of_an_affine_layer_is_its_scale_and_shift():
    from incdsl.ops.rules import affine_of
    assert affine_of(normalize(OPS["affine"], {"scale": (2.0,), "shift": (3.0, 4.0, 5.0)})) == ((2.0,),
                                                                                                (3.0, 4.0,
                                                                                                 5.0))


def test_add_points_at_the_input_that_disagrees():
    assert refusal("add", [(4, 4, 3), (4, 4, 3), (4, 4, 2)]) == (
        "add inputs disagree on shape: 4x4x3 vs 4x4x2",
        "a residual branch must end with as many channels as its input, at the same size", 2)


@pytest.mark.parametrize("op, raw",
                         [("dwconv", {"kernel": 3, "dilation": 2, "multiplier": 2, "pad": "valid"}),
                                     ("sepconv", {"filters": 4, "kernel": 3, "dilation": 2, "pad": "valid"})])
def test_dilated_depthwise_and_separable_convs_match_keras(op, raw):
    """Output size, weight names and shapes as Keras' DepthwiseConv2D / SeparableConv2D build them
    (a 3x3 window dilated by 2 spans 5 pixels: 9 - 5 + 1 = 5), and the size arithmetic shown."""
    import keras
    layer = (keras.layers.DepthwiseConv2D(3, dilation_rate=2, depth_multiplier=2) if op == "dwconv"
             else keras.layers.SeparableConv2D(4, 3, dilation_rate=2))
    want = layer.compute_output_shape((None, 9, 9, 3))[1:]
    layer.build((None, 9, 9, 3))
    rule = OPS[op].rule(normalize(OPS[op], raw), [(9, 9, 3)])
    assert rule.out == tuple(want) == ((5, 5, 6) if op == "dwconv" else (5, 5, 4))
    assert sorted(map(tuple, rule.weights.values())) == sorted(tuple(w.shape) for w in layer.weights)
    # the depthwise kernel under the name Keras 2 and the legacy .h5 files give it (Keras 3's
    # DepthwiseConv2D stores it as `kernel` and keeps `depthwise_kernel` as its attribute)
    assert tuple(rule.weights["depthwise_kernel"]) == ((3, 3, 3, 2) if op == "dwconv" else (3, 3, 3, 1))
    if op == "sepconv":  # SeparableConv2D keeps both names
        assert set(rule.weights) == {w.path.split("/")[-1] for w in layer.weights}
    assert rule.why == "9 - 5 + 1 = 5 with pad=valid"


def test_a_shape_error_is_not_a_too_small_input_unless_it_says_so():
    assert ShapeError("x").too_small is False and ShapeError("x", too_small=True).too_small is True
