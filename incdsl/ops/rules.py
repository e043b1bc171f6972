"""One rule per op: (normalized arguments, input shapes) -> `Rule` (output shape, weight shapes in
Keras' names and layouts, MACs, derivation), a few plain lines each, like jax stax's layers.
Shapes are NHWC without the batch: `(h, w, c)` for feature maps, `(n,)` for flat vectors. The
window arithmetic lives in incdsl/ir/window.py; the params are derived from the weights (result.py).
"""
from __future__ import annotations

import math

from ..ir import window
from ..text import shape_text
from .result import BN_KEYS, Rule, ShapeError


def feature_map(shape):
    """`shape` when it is an (h, w, c) feature map; ShapeError for a flat vector."""
    if len(shape) != 3:
        raise ShapeError(f"needs an HxWxC feature map, got a flat vector of {shape[0]}",
                         hint="spatial layers must come before gap/flatten")
    return shape


def _flat(shape) -> int:
    if len(shape) != 1:
        raise ShapeError(f"needs a flat vector, got a {shape_text(shape)} feature map",
                         hint="insert gap (global average pooling) or flatten before it")
    return shape[0]


def _spatial(a, h: int, w: int, channels: int, dilation=(1, 1)):
    """((oh, ow, channels), derivation) of a sliding window over an h x w feature map."""
    (kh, kw), (sh, sw), (dh, dw), pad = a["kernel"], a["stride"], dilation, a["pad"]
    ceil = a.get("ceil")  # pools have it; convolutions do not
    if ceil and pad == "same":
        raise ShapeError("ceil mode means nothing with pad=same (its output is already ceil(in / stride))",
                         hint="drop ceil=true, or give explicit padding")
    oh, why_h = window.output_length(h, kh, sh, dh, pad if isinstance(pad, str) else pad[:2], ceil)
    ow, why_w = window.output_length(w, kw, sw, dw, pad if isinstance(pad, str) else pad[2:], ceil)
    why = why_h if why_h == why_w else f"height {why_h}; width {why_w}"
    if oh < 1 or ow < 1:
        size = f"{window.extent(kh, dh)}x{window.extent(kw, dw)}"
        raise ShapeError(
            f"output would be {max(oh, 0)}x{max(ow, 0)}: the {size} window does not fit the {h}x{w} input",
                         hint="use pad=same, a smaller kernel, or a larger input", detail=why, too_small=True)
    return (oh, ow, channels), why


# --- weights in Keras' names and layouts ----------------------------------------------------

def _bn(scale: bool, channels: int) -> dict:
    """keras.layers.BatchNormalization's arrays: gamma only when it scales."""
    return dict.fromkeys(BN_KEYS if scale else BN_KEYS[1:], (channels,))


def _with_bias_bn(weights: dict, a, channels: int) -> dict:
    """`weights` (a conv's or dense's kernels) plus its bias (when `bias`) and its own batch
    norm's arrays (when `bn`), in Keras' order."""
    if a["bias"]:
        weights["bias"] = (channels,)
    if a.get("bn"):
        weights.update(_bn(a["bn_scale"], channels))
    return weights


# --- the rules: (attrs, input shapes) -> Rule -------------------------------------------------

def same(a, ins) -> Rule:
    """The input's shape, no weights: dropout, lrn, scale, drop_path."""
    return Rule(ins[0])


def input_(a, ins) -> Rule:
    """The network's image: (height, width, channels)."""
    return Rule((a["height"], a["width"], a["channels"]))


def fitted_kernel(a, shape) -> tuple[int, int]:
    """A conv's kernel (kh, kw) on an input map `shape` (h, w, c) under its `fit` argument: as
    written (none); each side at most the map's (shrink: TF-slim's
    `_reduced_kernel_size_for_small_input`, nets/inception_v3.py's aux head); or the map's h x w
    (map: TF-slim's `aux.get_shape()[1:3]`, nets/inception_v4.py and inception_resnet_v2.py)."""
    (kh, kw), fit = a["kernel"], a.get("fit")
    if fit == "shrink":
        return min(kh, shape[0]), min(kw, shape[1])
    if fit == "map":
        return shape[0], shape[1]
    return kh, kw


def conv(a, ins) -> Rule:
    """keras.layers.Conv2D (groups: each filter sees cin / groups channels). A `fit` kernel is
    taken at the input's size (the shapes pass writes it back into the layer for the backends)."""
    h, w, cin = feature_map(ins[0])
    if a["fit"]:
        a = {**a, "kernel": fitted_kernel(a, ins[0])}
    groups = a["groups"]
    for what, n in (("input channels", cin), ("filters", a["filters"])):
        if n % groups:
            raise ShapeError(f"groups={groups} does not divide the {n} {what}",
                             hint="both the input channels and the filters must be multiples of groups")
    out, why = _spatial(a, h, w, a["filters"], a["dilation"])
    (kh, kw), (oh, ow, cout), cg = a["kernel"], out, cin // groups
    weights = _with_bias_bn({"kernel": (kh, kw, cg, cout)}, a, cout)
    return Rule(out, weights, oh * ow * cout * kh * kw * cg, why)


def dwconv(a, ins) -> Rule:
    """keras.layers.DepthwiseConv2D: `multiplier` filters per input channel."""
    h, w, cin = feature_map(ins[0])
    out, why = _spatial(a, h, w, cin * a["multiplier"], a["dilation"])
    (kh, kw), (oh, ow, cout) = a["kernel"], out
    weights = _with_bias_bn({"depthwise_kernel": (kh, kw, cin, a["multiplier"])}, a, cout)
    return Rule(out, weights, oh * ow * cout * kh * kw, why)


def sepconv(a, ins) -> Rule:
    """keras.layers.SeparableConv2D: depthwise (cin * multiplier channels), then a 1x1 conv."""
    h, w, cin = feature_map(ins[0])
    out, why = _spatial(a, h, w, a["filters"], a["dilation"])
    (kh, kw), (oh, ow, cout), mid = a["kernel"], out, cin * a["multiplier"]
    weights = _with_bias_bn({"depthwise_kernel": (kh, kw, cin, a["multiplier"]),
                             "pointwise_kernel": (1, 1, mid, cout)}, a, cout)
    return Rule(out, weights, oh * ow * (mid * kh * kw + mid * cout), why)


def pool(a, ins) -> Rule:
    """maxpool and avgpool: a window with no weights."""
    pad = a["pad"]
    if not isinstance(pad, str):
        # a pad as large as the window puts whole windows in the padding: max pooling would output
        # -inf (-3.4e38 in float32), average pooling 0/0; onnxruntime refuses such pads, PyTorch too
        kh, kw = a["kernel"]
        for side, p, k in zip(("top", "bottom", "left", "right"), pad, (kh, kh, kw, kw)):
            if p >= k:
                raise ShapeError(f"{side} padding {p} is not smaller than the window ({k}): "
                                 f"some windows would hold padding only",
                                 hint=f"pool padding must be less than the window (at most {k - 1} here)")
    h, w, c = feature_map(ins[0])
    out, why = _spatial(a, h, w, c)
    return Rule(out, why=why)


def adaptive(a, ins) -> Rule:
    """torch.nn.AdaptiveAvgPool2d; larger than the input too (PyTorch's bins then overlap)."""
    h, w, c = feature_map(ins[0])
    return Rule((*a["size"], c))


def global_pool(a, ins) -> Rule:
    """gap and gmp: a feature map to its (c,) channels."""
    return Rule((feature_map(ins[0])[2],))


def flatten(a, ins) -> Rule:
    """keras.layers.Flatten: every element in one vector."""
    return Rule((math.prod(ins[0]),))


def dense(a, ins) -> Rule:
    """keras.layers.Dense on a flat vector."""
    cin, units = _flat(ins[0]), a["units"]
    return Rule((units,), _with_bias_bn({"kernel": (cin, units)}, a, units), cin * units)


def bn(a, ins) -> Rule:
    """keras.layers.BatchNormalization over the last axis (channels)."""
    return Rule(ins[0], _bn(a["scale"], ins[0][-1]))


def act(a, ins) -> Rule:
    """An activation; only leaky_relu takes a slope."""
    if a["slope"] is not None and a["fn"] != "leaky_relu":
        raise ShapeError("takes no slope: only leaky_relu has one",
                         hint=f"drop the slope, or use leaky_relu({a['slope']:g})")
    return Rule(ins[0])


def channel_shuffle(a, ins) -> Rule:
    """ShuffleNet's shuffle: the channels must split into `groups`."""
    c, g = feature_map(ins[0])[2], a["groups"]
    if c % g:
        raise ShapeError(f"{g} groups do not divide the {c} input channels",
                         hint="channel_shuffle(g) needs a multiple of g channels")
    return Rule(ins[0])


def affine(a, ins) -> Rule:
    """normalize and affine: one value, or one per channel."""
    c = ins[0][-1]
    for key in ("mean", "std", "scale", "shift"):
        if key in a and len(a[key]) not in (1, c):
            raise ShapeError(f"{key} gives {len(a[key])} values for {c} channels",
                             hint="give one value, or one per channel")
    return Rule(ins[0])


def affine_of(attrs) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(scale, shift) per channel of an `affine` or `normalize` layer: y = x * scale + shift
    (normalize: scale = 1 / std, shift = -mean / std). Tuples of one value apply to every channel."""
    if "mean" in attrs:
        n = max(len(attrs["mean"]), len(attrs["std"]))
        std = attrs["std"] * (n // len(attrs["std"]))
        mean = attrs["mean"] * (n // len(attrs["mean"]))
        return tuple(1.0 / s for s in std), tuple(-m / s for m, s in zip(mean, std))
    return attrs["scale"], attrs["shift"]


def zeropad(a, ins) -> Rule:
    """keras.layers.ZeroPadding2D: (top, bottom, left, right) zeros."""
    h, w, c = feature_map(ins[0])
    t, b, l, r = a["pad"]
    return Rule((h + t + b, w + l + r, c))


def concat(a, ins) -> Rule:
    """keras.layers.Concatenate along channels: every other axis must agree."""
    first = ins[0]
    for i, s in enumerate(ins[1:], 1):
        if len(s) != len(first):  # a map and a flat vector: their whole shapes say it
            raise ShapeError(f"concat inputs disagree on shape: {shape_text(first)} vs {shape_text(s)}",
                             culprit=i, hint="concatenate feature maps with maps, flat vectors with vectors")
        if s[:-1] != first[:-1]:
            raise ShapeError(
                f"concat inputs disagree on spatial size: {shape_text(first[:-1])} vs {shape_text(s[:-1])}",
                culprit=i, hint="give every branch the same strides and padding, or pad=same")
    return Rule(first[:-1] + (sum(s[-1] for s in ins),))


def multiply(a, ins) -> Rule:
    """Elementwise product; a gate of C values scales the channels of an HxWxC map (the
    squeeze-and-excitation gate, Hu et al. 2018), given as a vector of C (`gap -> dense(C)`) or as a
    1x1xC map (`adaptive_avgpool(1) -> conv(C, 1)`, torchvision.ops.SqueezeExcitation's form), as
    Keras' Multiply, torch and ONNX's Mul broadcast an (N, C, 1, 1) tensor."""
    first = max(ins, key=lambda s: (len(s), math.prod(s)))  # the map the gates scale
    for i, s in enumerate(ins):
        gate = len(first) == 3 and s[-1] == first[-1] and (len(s) == 1 or (len(s) == 3 and s[:2] == (1, 1)))
        if s != first and not gate:
            raise ShapeError(f"multiply inputs do not broadcast: {shape_text(first)} vs {shape_text(s)}",
                             culprit=i if i else ins.index(first),
                             hint=f"a gate scales a map's channels: give it the map's {first[-1]} channels, "
                             f"as {first[-1]} values (gap -> dense({first[-1]})) or as a 1x1x{first[-1]} map "
                             f"(adaptive_avgpool(1) -> conv({first[-1]}, 1))")
    return Rule(first)


def add(a, ins) -> Rule:
    """keras.layers.Add: every input the same shape."""
    first = ins[0]
    for i, s in enumerate(ins[1:], 1):
        if s != first:
            raise ShapeError(
                f"add inputs disagree on shape: {shape_text(first)} vs {shape_text(s)}",
                culprit=i,
                hint="a residual branch must end with as many channels as its input, at the same size",
            )
    return Rule(first)
