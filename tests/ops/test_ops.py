"""Each op's shape and count rules (incdsl/ops.py) against worked examples computed by hand here,
then against the same layer built in Keras (output shape, count_params, trainable and
non-trainable weights) and, for PyTorch's ceil mode, against torch's own pooling layers."""
import math
import os

import pytest

from incdsl.ops import KINDS, OPS, Count, ShapeError, infer, normalize

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def run(op: str, shape, **raw):
    """(output shape, Count) of one layer: arguments as the language would pass them."""
    out, _why, count = infer(OPS[op], normalize(OPS[op], raw), [tuple(shape)])
    return out, count


def bn(c: int, scale: bool = True) -> Count:
    """Batch norm on c channels: gamma (if scale) and beta learn; moving mean and variance do not."""
    return Count((2 if scale else 1) * c, 2 * c, 0)


# --- padding and strides: (input, kernel, stride, pad) -> output, derived by hand in the comment -----

@pytest.mark.parametrize("size, k, s, pad, want", [
    (32, 3, 1, "same", 32),          # same, stride 1: unchanged
    (35, 3, 2, "same", 18),          # same: ceil(35 / 2) = 18
    (35, 3, 2, "valid", 17),         # valid: (35 - 3) // 2 + 1 = 17
    (36, 3, 2, "valid", 17),         # valid: (36 - 3) // 2 + 1 = 16 + 1 = 17 (floor)
    (299, 3, 2, "valid", 149),       # Inception v3 stem: (299 - 3) // 2 + 1 = 149
    (224, 7, 2, 3, 112),             # explicit 3: (224 + 6 - 7) // 2 + 1 = 111 + 1 = 112
    (224, 3, 2, (0, 1, 0, 1), 112),  # asymmetric: (224 + 0 + 1 - 3) // 2 + 1 = 111 + 1 = 112
    (224, 3, 2, (1, 0, 1, 0), 112),  # the other side: same arithmetic
    (28, 5, 1, 2, 28),               # explicit 2 keeps a 5x5 at stride 1
    (8, 3, 3, "same", 3),            # same: ceil(8 / 3) = 3
    (8, 8, 1, "valid", 1),           # kernel as large as the input: one window
])
def test_conv_output_size(size, k, s, pad, want):
    out, _ = run("conv", (size, size, 3), filters=4, kernel=k, stride=s, pad=pad)
    assert out == (want, want, 4)


def test_conv_counts_and_macs():
    # 3x3x3 -> 16 with bias on 32x32: 3*3*3*16 + 16 = 448 params; 32*32 outputs * 16 * (3*3*3) MACs
    out, c = run("conv", (32, 32, 3), filters=16, kernel=3)
    assert out == (32, 32, 16)
    assert c == Count(448, 0, 32 * 32 * 16 * 27)


def test_conv_1x7_and_7x1_factorized():
    # Inception v3's 17x17 block: 1x7 then 7x1, 128 -> 192, no bias, bn without scale
    a, ca = run("conv", (17, 17, 128), filters=192, kernel=(1, 7), bias=False, bn=True, bn_scale=False)
    b, cb = run("conv", (17, 17, 128), filters=192, kernel=(7, 1), bias=False, bn=True, bn_scale=False)
    assert a == b == (17, 17, 192)
    assert ca == cb == Count(7 * 128 * 192, 0, 17 * 17 * 192 * 7 * 128) + bn(192, scale=False)
    # valid padding shrinks only the long side of the kernel: 17 - 7 + 1 = 11
    c, _ = run("conv", (17, 17, 8), filters=8, kernel=(1, 7), pad="valid")
    assert c == (17, 11, 8)


def test_conv_dilation():
    # dilation 2 spreads a 3x3 to 5x5: (10 - 5) + 1 = 6 with pad=valid; same keeps 10
    assert run("conv", (10, 10, 1), filters=1, kernel=3, dilation=2, pad="valid")[0] == (6, 6, 1)
    out, c = run("conv", (10, 10, 1), filters=1, kernel=3, dilation=2)
    assert out == (10, 10, 1)
    assert c.trainable == 9 + 1  # dilation adds no weights


def test_conv_with_bn_and_without_bias():
    _, c = run("conv", (8, 8, 4), filters=8, kernel=3, bias=False, bn=True)
    assert c == Count(3 * 3 * 4 * 8, 0, 8 * 8 * 8 * 36) + bn(8)
    assert c.params == 288 + 32


def test_depthwise_multiplier():
    # 3x3 depthwise on 4 channels, multiplier 2 -> 8 channels: 3*3*4*2 weights + 8 biases
    out, c = run("dwconv", (8, 8, 4), kernel=3, multiplier=2)
    assert out == (8, 8, 8)
    assert c == Count(72 + 8, 0, 8 * 8 * 8 * 9)


def test_separable():
    # Keras SeparableConv2D: depthwise 3*3*4 + pointwise 4*16, no bias
    out, c = run("sepconv", (8, 8, 4), filters=16, kernel=3, bias=False)
    assert out == (8, 8, 16)
    assert c == Count(36 + 64, 0, 8 * 8 * (4 * 9 + 4 * 16))
    # Xception's entry: stride 2 same, multiplier 2: depthwise 3*3*4*2, pointwise 8*16, bias 16
    out, c = run("sepconv", (9, 9, 4), filters=16, kernel=3, stride=2, multiplier=2)
    assert out == (5, 5, 16)
    assert c.trainable == 72 + 128 + 16


def test_dense():
    out, c = run("dense", (2048,), units=1000)
    assert out == (1000,)
    assert c == Count(2048 * 1000 + 1000, 0, 2048 * 1000)
    assert run("dense", (10,), units=3, bias=False)[1] == Count(30, 0, 30)


@pytest.mark.parametrize("scale", [True, False])
def test_bn_op(scale):
    out, c = run("bn", (7, 7, 64), scale=scale)
    assert out == (7, 7, 64)
    assert c == Count(128 if scale else 64, 128, 0)


@pytest.mark.parametrize("size, k, s, pad, ceil, want", [
    (112, 3, 2, "valid", False, 55),   # floor: (112 - 3) // 2 + 1 = 54 + 1 = 55
    (112, 3, 2, "valid", True, 56),    # ceil (Caffe GoogLeNet): ceil(109 / 2) + 1 = 55 + 1 = 56
    (56, 3, 2, "valid", True, 28),     # ceil(53 / 2) + 1 = 27 + 1 = 28
    (14, 2, 2, "valid", True, 7),      # exact: ceil(12 / 2) + 1 = 7, ceil changes nothing
    (28, 3, 1, 1, True, 28),           # ceil(27 / 1) + 1 = 28
    # PyTorch's rule: the last window must start inside the input or its left padding.
    # 5, k2, s2, pad 1: ceil((5 + 2 - 2) / 2) + 1 = 4, but window 4 would start at 3*2 = 6 >= 5 + 1: so 3
    (5, 2, 2, 1, True, 3),
    (6, 3, 2, 1, True, 4),            # ceil((6 + 2 - 3) / 2) + 1 = 4; last starts at 6 < 6 + 1: kept
    (7, 3, 3, "valid", True, 3),       # ceil(4 / 3) + 1 = 3; starts at 6 < 7: kept
    (35, 3, 2, "same", False, 18),     # Keras same: ceil(35 / 2)
])
def test_pool_output_size(size, k, s, pad, ceil, want):
    for op in ("maxpool", "avgpool"):
        out, c = run(op, (size, size, 8), kernel=k, stride=s, pad=pad, ceil=ceil)
        assert out == (want, want, 8)
        assert c == Count()


def test_pool_stride_defaults_to_kernel():
    assert run("maxpool", (8, 8, 2), kernel=2)[0] == (4, 4, 2)
    assert run("avgpool", (299, 299, 2), kernel=5, stride=3)[0] == (99, 99, 2)  # (299 - 5) // 3 + 1 = 99


def test_window_larger_than_input_is_an_error():
    with pytest.raises(ShapeError, match="0x0"):
        run("maxpool", (5, 5, 3), kernel=7)
    with pytest.raises(ShapeError):
        run("conv", (8, 8, 3), filters=1, kernel=(1, 9), pad="valid")


def test_adaptive_pool_gap_flatten_zeropad():
    assert run("adaptive_avgpool", (14, 14, 512), size=4) == ((4, 4, 512), Count())
    assert run("adaptive_avgpool", (14, 14, 512), size=(2, 7))[0] == (2, 7, 512)
    assert run("adaptive_avgpool", (3, 3, 1), size=4)[0] == (4, 4, 1)  # up: PyTorch's bins overlap
    assert run("gap", (7, 7, 1024))[0] == (1024,)
    assert run("gmp", (7, 7, 1024))[0] == (1024,)
    assert run("flatten", (4, 4, 128))[0] == (2048,)
    assert run("zeropad", (8, 8, 3), pad=(1, 2, 3, 4))[0] == (11, 15, 3)  # top+bottom, left+right
    assert run("zeropad", (8, 8, 3), pad=(1, 2))[0] == (10, 12, 3)       # (h, w): 1 each side, 2 each side
    assert run("zeropad", (8, 8, 3), pad=1)[0] == (10, 10, 3)


def test_shape_preserving_ops_count_nothing():
    for op, raw in [("dropout", {"rate": 0.5}), ("act", {"fn": "relu"}), ("lrn", {}),
                    ("scale", {"factor": 0.17})]:
        assert run(op, (7, 7, 3), **raw) == ((7, 7, 3), Count())


def test_concat_and_add():
    ins = [(28, 28, 64), (28, 28, 128), (28, 28, 32)]
    out, _, c = infer(OPS["concat"], {}, ins)
    assert out == (28, 28, 224) and c == Count()
    with pytest.raises(ShapeError, match="28x28 vs 14x14"):
        infer(OPS["concat"], {}, [(28, 28, 64), (14, 14, 64)])
    assert infer(OPS["add"], {}, [(8, 8, 3), (8, 8, 3)])[0] == (8, 8, 3)
    with pytest.raises(ShapeError):
        infer(OPS["add"], {}, [(8, 8, 3), (8, 8, 4)])


def test_spatial_op_on_flat_vector_and_dense_on_map_are_errors():
    with pytest.raises(ShapeError, match="feature map"):
        run("conv", (10,), filters=1)
    with pytest.raises(ShapeError, match="flat vector"):
        run("dense", (4, 4, 2), units=3)


@pytest.mark.parametrize("op, raw, bad", [
    ("conv", {"filters": 0}, "filters"), ("conv", {"filters": 2.0}, "filters"),
    ("conv", {"filters": 4, "stride": 0}, "stride"),
    ("conv", {"filters": 4, "pad": "full"}, "pad"), ("conv", {"filters": 4, "act": "swish2"}, "act"),
    ("conv", {"filters": 4, "kernel": (1, 2, 3)}, "kernel"), ("dropout", {"rate": 1.0}, "rate"),
    ("conv", {"filters": 4, "bn": 1}, "bn"), ("bn", {"eps": 0}, "eps"),
    ("conv", {"filters": 2**21}, "filters"),
])
def test_argument_kinds_reject_bad_values(op, raw, bad):
    with pytest.raises(ValueError):
        normalize(OPS[op], raw)
    with pytest.raises(ValueError):  # and it is `bad` that is refused
        KINDS[OPS[op].arg(bad).kind](raw[bad])


def test_normalize_and_affine_per_channel():
    from incdsl.ops import affine_of
    assert run("normalize", (4, 4, 3), mean=(1, 2, 3), std=2) == ((4, 4, 3), Count())
    assert affine_of(normalize(OPS["normalize"], {"mean": (1, 2, 3), "std": 2})) == ((0.5,) * 3,
                                                                                     (-0.5, -1.0, -1.5))
    assert run("affine", (5,), scale=(1, 2, 3, 4, 5))[0] == (5,)
    with pytest.raises(ShapeError, match="scale gives 2 values for 3 channels"):
        run("affine", (4, 4, 3), scale=(1, 2))


def test_grouped_conv_channel_shuffle_drop_path_and_multiply():
    # groups=4 on 16 -> 32 channels, 3x3: each filter sees 16 / 4 = 4 channels: 3*3*4*32 + 32 = 1,184
    # params; MACs 8*8 outputs * 32 filters * 3*3*4 = 73,728 (a quarter of the ungrouped conv)
    out, c = run("conv", (8, 8, 16), filters=32, kernel=3, groups=4)
    assert out == (8, 8, 32) and c == Count(1184, 0, 73728)
    with pytest.raises(ShapeError, match="does not divide the 18 filters"):
        run("conv", (8, 8, 16), filters=18, groups=4)
    assert run("channel_shuffle", (8, 8, 12), groups=3) == ((8, 8, 12), Count())
    with pytest.raises(ShapeError, match="5 groups do not divide the 12"):
        run("channel_shuffle", (8, 8, 12), groups=5)
    assert run("drop_path", (8, 8, 12), rate=0.2) == ((8, 8, 12), Count())
    mul = lambda *shapes: infer(OPS["multiply"], {}, list(shapes))[0]
    assert mul((8, 8, 12), (12,)) == mul((12,), (8, 8, 12)) == mul((8, 8, 12), (8, 8, 12)) == (8, 8, 12)
    with pytest.raises(ShapeError, match="do not broadcast: 8x8x12 vs 6"):
        mul((8, 8, 12), (6,))


def test_every_op_has_a_worked_example_here():
    tested = {"input", "conv", "dwconv", "sepconv", "maxpool", "avgpool", "adaptive_avgpool", "gap", "gmp",
              "flatten",
              "dense", "dropout", "bn", "act", "lrn", "scale", "zeropad", "concat", "add",
              "channel_shuffle", "drop_path", "multiply", "normalize", "affine"}
    assert set(OPS) <= tested, f"new ops without tests: {set(OPS) - tested}"


# --- against Keras ------------------------------------------------------------------------------
# (incdsl op, input shape, incdsl args, a function building the same Keras layers)

def _k_conv(L, filters, kernel, strides=1, padding="same", dilation=1, bias=True, bn=False, scale=True):
    layers = [L.Conv2D(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                       use_bias=bias)]
    return layers + ([L.BatchNormalization(scale=scale)] if bn else [])


KERAS_CASES = {
    "conv same s1": ("conv", (32, 32, 3), dict(filters=16, kernel=3), lambda L: _k_conv(L, 16, 3)),
    "conv same s2 odd": ("conv", (35, 35, 3), dict(filters=8, kernel=3, stride=2),
                         lambda L: _k_conv(L, 8, 3, 2)),
    "conv valid s2": ("conv", (35, 35, 3), dict(filters=8, kernel=3, stride=2, pad="valid"),
                      lambda L: _k_conv(L, 8, 3, 2, "valid")),
    "conv 1x7 bn noscale": ("conv", (17, 17, 16),
                            dict(filters=24, kernel=(1, 7), bias=False, bn=True, bn_scale=False),
                            lambda L: _k_conv(L, 24, (1, 7), bias=False, bn=True, scale=False)),
    "conv 7x1 valid": ("conv", (17, 17, 16), dict(filters=24, kernel=(7, 1), pad="valid"),
                       lambda L: _k_conv(L, 24, (7, 1), padding="valid")),
    "conv dilated": ("conv", (12, 12, 2), dict(filters=4, kernel=3, dilation=2, pad="valid"),
                     lambda L: _k_conv(L, 4, 3, padding="valid", dilation=2)),
    "conv explicit asym": ("conv", (16, 16, 3), dict(filters=4, kernel=3, stride=2, pad=(0, 1, 0, 1)),
                           lambda L: [L.ZeroPadding2D(((0, 1), (0, 1))), L.Conv2D(4, 3, strides=2)]),
    "conv bn scale": ("conv", (8, 8, 3), dict(filters=4, kernel=3, bias=False, bn=True),
                      lambda L: _k_conv(L, 4, 3, bias=False, bn=True)),
    "dwconv mult 2": ("dwconv", (8, 8, 4), dict(kernel=3, multiplier=2),
                      lambda L: [L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)]),
    "dwconv s2 valid": ("dwconv", (9, 9, 3), dict(kernel=3, stride=2, pad="valid", bias=False),
                        lambda L: [L.DepthwiseConv2D(3, strides=2, use_bias=False)]),
    "sepconv": ("sepconv", (8, 8, 4), dict(filters=16, kernel=3, bias=False),
                lambda L: [L.SeparableConv2D(16, 3, padding="same", use_bias=False)]),
    "sepconv s2 mult 2 bn": ("sepconv", (9, 9, 4), dict(filters=8, kernel=3, stride=2, multiplier=2, bn=True),
                             lambda L: [L.SeparableConv2D(8, 3, strides=2, padding="same",
                                                          depth_multiplier=2),
                                        L.BatchNormalization()]),
    "dense": ("dense", (20,), dict(units=7), lambda L: [L.Dense(7)]),
    "dense nobias": ("dense", (20,), dict(units=7, bias=False), lambda L: [L.Dense(7, use_bias=False)]),
    "bn scale": ("bn", (5, 5, 6), dict(), lambda L: [L.BatchNormalization()]),
    "bn noscale": ("bn", (5, 5, 6), dict(scale=False), lambda L: [L.BatchNormalization(scale=False)]),
    "maxpool valid": ("maxpool", (35, 35, 2), dict(kernel=3, stride=2), lambda L: [L.MaxPooling2D(3, 2)]),
    "maxpool same": ("maxpool", (35, 35, 2), dict(kernel=3, stride=2, pad="same"),
                     lambda L: [L.MaxPooling2D(3, 2, padding="same")]),
    "avgpool s1 same": ("avgpool", (8, 8, 2), dict(kernel=3, stride=1, pad="same"),
                        lambda L: [L.AveragePooling2D(3, 1, padding="same")]),
    "avgpool 5/3": ("avgpool", (17, 17, 2), dict(kernel=5, stride=3), lambda L: [L.AveragePooling2D(5, 3)]),
    "adaptive": ("adaptive_avgpool", (14, 14, 3), dict(size=4), lambda L: [L.AdaptiveAveragePooling2D(4)]),
    "zeropad": ("zeropad", (8, 8, 3), dict(pad=(1, 2, 3, 4)), lambda L: [L.ZeroPadding2D(((1, 2), (3, 4)))]),
    "gap": ("gap", (7, 7, 9), dict(), lambda L: [L.GlobalAveragePooling2D()]),
    "gmp": ("gmp", (7, 7, 9), dict(), lambda L: [L.GlobalMaxPooling2D()]),
    "flatten": ("flatten", (4, 4, 5), dict(), lambda L: [L.Flatten()]),
}


@pytest.fixture(scope="module")
def keras():
    import keras
    return keras


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_against_keras(keras, case):
    op, shape, raw, build = KERAS_CASES[case]
    out, count = run(op, shape, **raw)
    x = keras.Input(shape)
    y = x
    for layer in build(keras.layers):
        y = layer(y)
    model = keras.Model(x, y)
    assert tuple(y.shape[1:]) == out
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    assert (trainable, frozen) == (count.trainable, count.non_trainable)
    assert model.count_params() == count.params


# --- against PyTorch: ceil mode and explicit padding of pools --------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("size, k, s, p",
                         [(112, 3, 2, 0), (56, 3, 2, 0), (14, 2, 2, 0), (5, 2, 2, 1), (6, 3, 2, 1),
                                           (7, 3, 3, 0), (28, 3, 1, 1), (17, 3, 2, 1), (10, 4, 3, 2)])
def test_ceil_mode_against_torch(size, k, s, p):
    import torch  # the refs extra; a missing torch fails loudly
    x = torch.zeros(1, 1, size, size)
    for ceil in (False, True):
        want = torch.nn.MaxPool2d(k, s, padding=p, ceil_mode=ceil)(x).shape[-1]
        assert run("maxpool", (size, size, 1), kernel=k, stride=s, pad=p, ceil=ceil)[0][:2] == (want, want)
        want = torch.nn.AvgPool2d(k, s, padding=p, ceil_mode=ceil)(x).shape[-1]
        assert run("avgpool", (size, size, 1), kernel=k, stride=s, pad=p, ceil=ceil)[0][:2] == (want, want)
