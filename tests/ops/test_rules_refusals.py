"""The shape rules (incdsl/ops/rules.py) and argument normalization (incdsl/ops/table.py) as a user
reads them, pinned whole where `tools/mutation.sh ops` (mutmut) found them unpinned: each refusal's
message, hint, caret (`culprit`), size arithmetic (`detail`) and whether a larger input would fit
(`too_small`, which drives the smallest-input note); the size arithmetic each conv and pool layer
keeps for the error notes of later layers; a `fit` kernel taken at the input's size when the rule
is called directly (importers, the library); and which argument a bad value is blamed on."""
from __future__ import annotations

import pytest

from incdsl.ir import window
from incdsl.ops import OPS, ShapeError, infer, normalize
from incdsl.ops import table as op_table
from incdsl.ops.kinds import REQUIRED, ArgError


def refused(op: str, shapes, **raw) -> ShapeError:
    with pytest.raises(ShapeError) as e:
        infer(OPS[op], normalize(OPS[op], raw), [tuple(s) for s in shapes])
    return e.value


def whole(e: ShapeError) -> tuple:
    return e.message, e.hint, e.culprit, e.detail, e.too_small


def test_a_spatial_layer_after_the_map_is_flattened_says_where_it_belongs():
    assert whole(refused("conv", [(64,)], filters=8, kernel=3)) == (
        "needs an HxWxC feature map, got a flat vector of 64", "spatial layers must come before gap/flatten",
        None, None, False)


def test_a_dense_layer_on_a_map_says_to_flatten_first():
    assert whole(refused("dense", [(7, 5, 32)], units=10)) == (
        "needs a flat vector, got a 7x5x32 feature map",
        "insert gap (global average pooling) or flatten before it", None, None, False)


def test_ceil_mode_with_pad_same_is_refused():
    assert whole(refused("maxpool", [(9, 9, 4)], kernel=3, stride=2, pad="same", ceil=True)) == (
        "ceil mode means nothing with pad=same (its output is already ceil(in / stride))",
        "drop ceil=true, or give explicit padding", None, None, False)


def test_a_window_that_does_not_fit_names_its_dilated_extent_and_the_arithmetic():
    # 3x3 taps at dilation 2 span 5x5 pixels (window.extent); the input is 4x6
    e = refused("conv", [(4, 6, 3)], filters=8, kernel=3, pad="valid", dilation=2)
    detail = "height 4 - 5 + 1 = 0 with pad=valid; width 6 - 5 + 1 = 2 with pad=valid"
    assert whole(e) == ("output would be 0x2: the 5x5 window does not fit the 4x6 input",
                        "use pad=same, a smaller kernel, or a larger input", None, detail, True)
    e = refused("conv", [(6, 4, 3)], filters=8, kernel=(1, 3), pad="valid", dilation=(1, 2))
    assert e.message == "output would be 6x0: the 1x5 window does not fit the 6x4 input"


def test_each_layer_keeps_its_size_arithmetic_for_later_notes():
    _, why, _ = infer(OPS["conv"], normalize(OPS["conv"], dict(filters=8, kernel=7, stride=2, pad="valid")),
                      [(229, 229, 3)])
    assert why == "(229 - 7) / 2 + 1 = 112 with pad=valid"
    # a non-square map: each side's arithmetic
    _, why, _ = infer(OPS["maxpool"], normalize(OPS["maxpool"], dict(kernel=3, stride=2)), [(35, 17, 8)])
    assert why == "height (35 - 3) / 2 + 1 = 17 with pad=valid; width (17 - 3) / 2 + 1 = 8 with pad=valid"
    # explicit (top, bottom, left, right) padding: the bottom and right pads are read for their sides
    out, why, _ = infer(OPS["avgpool"], normalize(OPS["avgpool"], dict(kernel=3, stride=1, pad=(0, 2, 1, 0))),
                        [(8, 8, 4)])
    assert out == (8, 7, 4)
    assert why == "height 8 + 2 - 3 + 1 = 8 with padding 0+2; width 8 + 1 - 3 + 1 = 7 with padding 1+0"
    assert why == "height {}; width {}".format(window.output_length(8, 3, 1, 1, (0, 2), False)[1],
                                              window.output_length(8, 3, 1, 1, (1, 0), False)[1])


@pytest.mark.parametrize("fit, shape, kernel, out", [
    ("shrink", (3, 5, 4), (3, 5), (1, 1, 8)),   # TF-slim's reduced kernel: 5x5 shrinks to the 3x5 map
    ("map", (3, 5, 4), (3, 5), (1, 1, 8)),      # the map's own size (not its width twice)
    ("map", (5, 3, 4), (5, 3), (1, 1, 8)),
])
def test_a_fit_kernel_is_taken_at_the_input_when_the_rule_is_called_directly(fit, shape, kernel, out):
    attrs = normalize(OPS["conv"], dict(filters=8, kernel=5, pad="valid", fit=fit))
    got, _, count = infer(OPS["conv"], attrs, [shape])
    assert got == out
    assert count.params == kernel[0] * kernel[1] * 4 * 8 + 8  # its kernel's taps, and the bias


@pytest.mark.parametrize("cin, filters, groups, message", [
    (6, 8, 4, "groups=4 does not divide the 6 input channels"),
    (6, 9, 2, "groups=2 does not divide the 9 filters"),
    (5, 8, 2, "groups=2 does not divide the 5 input channels"),
])
def test_groups_must_divide_the_channels_and_the_filters(cin, filters, groups, message):
    assert whole(refused("conv", [(8, 8, cin)], filters=filters, kernel=3, groups=groups)) == (
        message, "both the input channels and the filters must be multiples of groups", None, None, False)


@pytest.mark.parametrize("pad, side, p", [((3, 0, 0, 0), "top", 3), ((0, 4, 0, 0), "bottom", 4),
                                          ((1, 1, 3, 0), "left", 3), ((0, 0, 0, 3), "right", 3)])
def test_pool_padding_as_large_as_the_window_names_its_side(pad, side, p):
    for op in ("maxpool", "avgpool"):
        assert whole(refused(op, [(9, 9, 4)], kernel=3, stride=1, pad=pad)) == (
            f"{side} padding {p} is not smaller than the window (3): some windows would hold padding only",
            "pool padding must be less than the window (at most 2 here)", None, None, False)


def test_pool_padding_one_less_than_the_window_is_accepted():
    out, _, _ = infer(OPS["maxpool"], normalize(OPS["maxpool"], dict(kernel=3, stride=1, pad=(2, 2, 2, 2))),
                      [(5, 5, 4)])
    assert out == (7, 7, 4)
    hint = refused("maxpool", [(9, 9, 4)], kernel=(5, 2), stride=1, pad=(0, 0, 2, 0)).hint
    assert hint == "pool padding must be less than the window (at most 1 here)"  # the width's window


def test_concat_points_at_the_input_that_disagrees():
    e = refused("concat", [(8, 8, 4), (8, 8, 2), (7, 7, 3)])
    assert whole(e) == ("concat inputs disagree on spatial size: 8x8 vs 7x7",
                        "give every branch the same strides and padding, or pad=same", 2, None, False)
    # a map beside a flat vector: the whole shapes (their spatial parts would show one as nothing)
    e = refused("concat", [(8, 8, 4), (8, 8, 4), (16,)])
    assert whole(e) == ("concat inputs disagree on shape: 8x8x4 vs 16",
                        "concatenate feature maps with maps, flat vectors with vectors", 2, None, False)
    assert refused("concat", [(10,), (4, 4, 10)]).message == "concat inputs disagree on shape: 10 vs 4x4x10"
    # flat vectors of any lengths concatenate
    assert infer(OPS["concat"], normalize(OPS["concat"], {}), [(10,), (6,)])[0] == (16,)


def test_the_built_in_defaults_are_normalized_once():
    # sizes as (h, w) pairs; a default of None stays None; a required argument stays required
    conv = op_table._normalized_defaults(OPS["conv"])
    assert conv["stride"] == (1, 1) and conv["kernel"] == (1, 1) and conv["dilation"] == (1, 1)
    assert conv["filters"] is REQUIRED and conv["act"] is None and conv["fit"] is None
    pool = op_table._normalized_defaults(OPS["maxpool"])
    assert pool["kernel"] is REQUIRED and pool["stride"] is None
    assert {n: op_table._normalized_defaults(op) for n, op in OPS.items()} == op_table.DEFAULTS


def test_normalize_blames_the_argument_and_says_why():
    with pytest.raises(ArgError) as e:
        normalize(OPS["conv"], dict(filters=8, kernel=0))
    assert (e.value.arg, str(e.value)) == ("kernel", "must be at least 1, got 0")
    with pytest.raises(ArgError) as e:
        normalize(OPS["conv"], dict(kernel=3))
    assert (e.value.arg, str(e.value)) == ("filters", "conv needs 'filters'")
    # None is a value only for an argument whose default is None (a pool's stride: its kernel)
    assert normalize(OPS["maxpool"], dict(kernel=3, stride=None))["stride"] == (3, 3)
    with pytest.raises(ArgError) as e:
        normalize(OPS["conv"], dict(filters=8, kernel=3, stride=None))
    assert (e.value.arg, str(e.value)) == ("stride", "must be an integer, got none")
