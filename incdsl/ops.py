"""The op table: every layer's arguments, output shape, parameters and MACs, in one place.

Each rule is a few plain lines, like stax's shape functions. Shapes are NHWC without the batch:
`(h, w, c)` for feature maps, `(n,)` for flat vectors.

Counting conventions (the README states them too):
- params are split as Keras splits them: trainable (kernels, biases, batch-norm gamma/beta) and
  non-trainable (batch-norm moving mean and variance), so total == keras `count_params()`;
- MACs are multiply-accumulates of conv, depthwise/separable conv and dense layers only; biases,
  batch norm, activations, pooling, LRN, adds, scaling and concatenation count zero.
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Callable, NamedTuple

REQUIRED = object()
MAX_DIM = 1 << 20  # any single size above this is treated as a mistake

ACTIVATIONS = ("relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax",
               "silu", "gelu", "elu", "leaky_relu")
ACTIVATION_NAMES = {"swish": "silu"}  # other names of the same function (Ramachandran et al. 2017)
# leaky_relu's negative slope when none is given: Keras' default (keras.layers.LeakyReLU,
# keras.activations.leaky_relu); torch.nn.LeakyReLU's is 0.01, TF-slim's tf.nn.leaky_relu 0.2.
LEAKY_RELU_SLOPE = 0.2

Shape = tuple[int, ...]


class Count(NamedTuple):
    """A layer's (or a sum of layers') counts: `trainable` and `non_trainable` params and `macs` for one image.

    Params split as Keras splits them (non-trainable: batch-norm moving mean and variance, so the
    total equals keras `count_params()`); MACs are multiply-accumulates of conv, depthwise/separable
    conv and dense layers only. Counts add with `+`.
    """
    trainable: int = 0
    non_trainable: int = 0
    macs: int = 0

    @property
    def params(self) -> int:
        """All params: trainable plus non-trainable (keras `Model.count_params()`)."""
        return self.trainable + self.non_trainable

    def __add__(self, other):  # type: ignore[override]
        return Count(self.trainable + other.trainable, self.non_trainable + other.non_trainable,
                     self.macs + other.macs)


ZERO = Count()


class ShapeError(Exception):
    """Raised by a shape rule; the shape pass adds the node's span and notes."""

    def __init__(self, message: str, hint: str | None = None, culprit: int | None = None, detail: str | None = None,
                 too_small: bool = False):
        super().__init__(message)
        self.message, self.hint, self.culprit, self.detail = message, hint, culprit, detail
        self.too_small = too_small  # the input is too small for a window: a larger one would fit


class Symbol(str):
    """A bare word in an argument (`same`, `relu`) that is not a bound name."""


# --- argument kinds: value -> normalized value, or ValueError with what is wrong ---------------

def _int(v, lo=1, hi=MAX_DIM):
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            raise ValueError(f"must be an integer, got {v!r}")
        raise ValueError(f"must be an integer, got {_show(v)}")
    if v < lo:
        raise ValueError(f"must be at least {lo}, got {v}")
    if v > hi:
        raise ValueError(f"{v:,} is absurdly large (the limit is {hi:,})")
    return v


def _pair(v, lo=1):
    if isinstance(v, tuple):
        if len(v) != 2:
            raise ValueError(f"must be one size or two (HxW), got {len(v)}")
        return (_int(v[0], lo), _int(v[1], lo))
    n = _int(v, lo)
    return (n, n)


def _pad(v):
    if isinstance(v, Symbol) or isinstance(v, str):
        if v in ("same", "valid"):
            return str(v)
        raise ValueError(f"must be same, valid, a number or a tuple, got {v}")
    if isinstance(v, tuple):
        if len(v) == 2:
            ph, pw = (_int(x, 0) for x in v)
            return (ph, ph, pw, pw)
        if len(v) == 4:
            return tuple(_int(x, 0) for x in v)
        raise ValueError("a padding tuple is (h, w) or (top, bottom, left, right)")
    p = _int(v, 0)
    return (p, p, p, p)


def _act(v):
    if v is None or v in ("none", "linear"):
        return None
    if isinstance(v, str) and v in ACTIVATIONS:
        return str(v)
    if isinstance(v, str) and v in ACTIVATION_NAMES:
        return ACTIVATION_NAMES[str(v)]
    raise ValueError(f"must be none or one of {', '.join(ACTIVATIONS + tuple(ACTIVATION_NAMES))}, got {_show(v)}")


def _bool(v):
    if isinstance(v, bool):
        return v
    raise ValueError(f"must be true or false, got {_show(v)}")


POSITIVE_MIN = 1e-12  # the smallest value a "positive" argument (an epsilon) may take


def _float(v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a number, got {_show(v)}")
    v = float(v)
    if lo is not None and v < lo:
        if hi is not None:
            raise ValueError(f"must be between {lo:g} and {hi:g}, got {v:g}")
        raise ValueError(f"must be greater than 0, got {v:g}" if lo == POSITIVE_MIN
                         else f"must be at least {lo:g}, got {v:g}")
    if hi is not None and v > hi:
        raise ValueError(f"must be between {lo:g} and {hi:g}, got {v:g}" if lo is not None
                         else f"must be at most {hi:g}, got {v:g}")
    return v


def _decay(v):
    v = _float(v)
    if not 0 <= v < float("inf"):
        raise ValueError(f"must be a finite number, 0 or more, got {v}")
    return v


def _init(v):
    from .initializers import NAMES, check
    if isinstance(v, Symbol) and v not in NAMES:
        raise ValueError(f"unknown initializer '{v}' (known: {', '.join(NAMES)})")
    return check(v)


def _slope(v) -> float:
    """leaky_relu's negative slope: any number >= 0, as keras.layers.LeakyReLU accepts (it refuses
    a negative one; torch.nn.LeakyReLU takes any). A slope above 1 is unusual but well defined."""
    v = _float(v)
    if v < 0:
        raise ValueError(f"must be at least 0 (Keras' LeakyReLU refuses a negative slope), got {v:g}")
    return v


def _show(v) -> str:
    if isinstance(v, Symbol):
        return f"the word '{v}'"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    if v is None:
        return "none"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def _floats(v, lo=None):
    return tuple(_float(x, lo) for x in (v if isinstance(v, tuple) else (v,)))


KINDS: dict[str, Callable] = {
    "floats": _floats,  # one number, or a tuple: one per channel
    "positives": lambda v: _floats(v, 1e-12),
    "count": _int,
    "size": _pair,
    "size0": lambda v: _pair(v, 0),
    "pad": _pad,
    "act": _act,
    "bool": _bool,
    "positive": lambda v: _float(v, POSITIVE_MIN, None),
    "rate": lambda v: _float(v, 0.0, 0.999999),
    "any_float": _float,
    "slope": lambda v: _slope(v),
    "decay": _decay,
    "init": _init,
}


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of an op: its `name`, its `kind` (a key of KINDS that checks and converts the
    value), its `default` (REQUIRED when it must be given) and a one-line `doc`.
    """
    name: str
    kind: str
    default: object = REQUIRED
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Op:
    """One row of the op table: the op's `name`, its `args` in positional order, its `shape` rule
    ((attrs, input shapes) -> (output shape, derivation text or None); shapes NHWC, batch left out),
    its `count` rule ((attrs, input shapes, output shape) -> `Count`), how many `inputs` it takes
    (None: one or more, in order) and a one-line `doc`.
    """
    name: str
    args: tuple[Arg, ...]
    shape: Callable  # (attrs, in_shapes) -> (out_shape, derivation or None)
    count: Callable  # (attrs, in_shapes, out_shape) -> Count
    inputs: int | None = 1  # None: one or more, in order
    doc: str = ""

    def arg(self, name: str) -> Arg | None:
        """The argument called `name`, or None when the op has no such argument."""
        return next((a for a in self.args if a.name == name), None)


# --- shape rules --------------------------------------------------------------------------

def _window(size: int, k: int, s: int, d: int, lo_hi, ceil: bool):
    """Output length of a sliding window, with the arithmetic behind it for error messages."""
    ke = d * (k - 1) + 1
    if lo_hi == "same":
        out = -(-size // s)
        return out, f"ceil({size} / {s}) = {out} with pad=same"
    if lo_hi == "valid":
        lo = hi = 0
        how = "pad=valid"
    else:
        lo, hi = lo_hi
        how = f"padding {lo}+{hi}"
    span = size + lo + hi - ke
    padded = f"{size} + {lo + hi}" if lo + hi else f"{size}"
    if ceil:
        out = -(-span // s) + 1
        if out > 0 and (out - 1) * s >= size + lo:  # the last window must start inside the input
            out -= 1
        why = f"ceil(({padded} - {ke}) / {s}) + 1 = {out} with {how}, ceil mode"
    else:
        out = span // s + 1 if span >= 0 else 0
        frac = f"({padded} - {ke}) / {s}" if s > 1 else f"{padded} - {ke}"
        if span % s:
            frac = f"floor({frac})"
        why = f"{frac} + 1 = {out} with {how}"
    return out, why


def _spatial(attrs, shape, filters=None, kernel=None, dilation=(1, 1)):
    h, w, c = _feature_map(shape)
    kh, kw = kernel or attrs["kernel"]
    sh, sw = attrs["stride"]
    dh, dw = dilation
    pad = attrs["pad"]
    ph = pad if isinstance(pad, str) else pad[0:2]
    pw = pad if isinstance(pad, str) else pad[2:4]
    ceil = attrs.get("ceil", False)
    if ceil and pad == "same":
        raise ShapeError("ceil mode means nothing with pad=same (its output is already ceil(in / stride))",
                         hint="drop ceil=true, or give explicit padding")
    oh, why_h = _window(h, kh, sh, dh, ph, ceil)
    ow, why_w = _window(w, kw, sw, dw, pw, ceil)
    why = why_h if why_h == why_w else f"height {why_h}; width {why_w}"
    if oh < 1 or ow < 1:
        window = f"{dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}"
        raise ShapeError(f"output would be {max(oh, 0)}x{max(ow, 0)}: the {window} window does not fit the {h}x{w} input",
                         hint="use pad=same, a smaller kernel, or a larger input", detail=why, too_small=True)
    return (oh, ow, c if filters is None else filters), why


def _feature_map(shape):
    if len(shape) != 3:
        raise ShapeError(f"needs an HxWxC feature map, got a flat vector of {shape[0]}",
                         hint="spatial layers must come before gap/flatten")
    return shape


def _flat(shape):
    if len(shape) != 1:
        raise ShapeError(f"needs a flat vector, got a {_fmt(shape)} feature map",
                         hint="insert gap (global average pooling) or flatten before it")
    return shape[0]


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape)


def _same(attrs, shapes):
    return shapes[0], None


def _conv_shape(attrs, shapes):
    groups = attrs.get("groups", 1)
    if groups > 1:
        cin = _feature_map(shapes[0])[2]
        for what, n in (("input channels", cin), ("filters", attrs["filters"])):
            if n % groups:
                raise ShapeError(f"groups={groups} does not divide the {n} {what}",
                                 hint="both the input channels and the filters must be multiples of groups")
    return _spatial(attrs, shapes[0], attrs["filters"], dilation=attrs["dilation"])


def _shuffle_shape(attrs, shapes):
    c, g = _feature_map(shapes[0])[2], attrs["groups"]
    if c % g:
        raise ShapeError(f"{g} groups do not divide the {c} input channels",
                         hint="channel_shuffle(g) needs a multiple of g channels")
    return shapes[0], None


def _act_shape(attrs, shapes):
    if attrs["slope"] is not None and attrs["fn"] != "leaky_relu":
        raise ShapeError("takes no slope: only leaky_relu has one", hint=f"drop the slope, or use leaky_relu({attrs['slope']:g})")
    return shapes[0], None


def _dw_shape(attrs, shapes):
    c = _feature_map(shapes[0])[2]
    return _spatial(attrs, shapes[0], c * attrs["multiplier"], dilation=attrs["dilation"])


def _pool_shape(attrs, shapes):
    pad = attrs["pad"]
    if not isinstance(pad, str):
        # a pad as large as the window puts whole windows in the padding: max pooling would output
        # -inf (-3.4e38 in float32), average pooling 0/0; onnxruntime refuses such pads, PyTorch too
        kh, kw = attrs["kernel"]
        for side, p, k in zip(("top", "bottom", "left", "right"), pad, (kh, kh, kw, kw)):
            if p >= k:
                raise ShapeError(f"{side} padding {p} is not smaller than the window ({k}): "
                                 f"some windows would hold padding only",
                                 hint=f"pool padding must be less than the window (at most {k - 1} here)")
    return _spatial(attrs, shapes[0])


def _adaptive_shape(attrs, shapes):
    h, w, c = _feature_map(shapes[0])
    oh, ow = attrs["size"]  # larger than the input too: PyTorch's bins then overlap
    return (oh, ow, c), None


def _affine_shape(attrs, shapes):
    c = shapes[0][-1]
    for key in ("mean", "std", "scale", "shift"):
        if key in attrs and len(attrs[key]) not in (1, c):
            raise ShapeError(f"{key} gives {len(attrs[key])} values for {c} channels",
                             hint="give one value, or one per channel")
    return shapes[0], None


def affine_of(attrs) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(scale, shift) per channel of an `affine` or `normalize` layer: y = x * scale + shift
    (normalize: scale = 1 / std, shift = -mean / std). Tuples of one value apply to every channel."""
    if "mean" in attrs:
        n = max(len(attrs["mean"]), len(attrs["std"]))
        std = attrs["std"] * (n // len(attrs["std"]))
        mean = attrs["mean"] * (n // len(attrs["mean"]))
        return tuple(1.0 / s for s in std), tuple(-m / s for m, s in zip(mean, std))
    return attrs["scale"], attrs["shift"]


def _zeropad_shape(attrs, shapes):
    h, w, c = _feature_map(shapes[0])
    t, b, l, r = attrs["pad"]
    return (h + t + b, w + l + r, c), None


def _gap_shape(attrs, shapes):
    return (_feature_map(shapes[0])[2],), None


def _flatten_shape(attrs, shapes):
    n = 1
    for d in shapes[0]:
        n *= d
    return (n,), None


def _dense_shape(attrs, shapes):
    _flat(shapes[0])
    return (attrs["units"],), None


def _concat_shape(attrs, shapes):
    first = shapes[0]
    for i, s in enumerate(shapes[1:], 1):
        if len(s) != len(first) or s[:-1] != first[:-1]:
            what = "spatial size" if len(s) == len(first) == 3 else "shape"
            raise ShapeError(f"concat inputs disagree on {what}: {_fmt(first[:-1])} vs {_fmt(s[:-1])}", culprit=i,
                             hint="give every branch the same strides and padding, or pad=same")
    return first[:-1] + (sum(s[-1] for s in shapes),), None


def _multiply_shape(attrs, shapes):
    """Elementwise product; a gate of C values scales the channels of an HxWxC map (the
    squeeze-and-excitation gate, Hu et al. 2018), given as a vector of C (`gap -> dense(C)`) or as a
    1x1xC map (`adaptive_avgpool(1) -> conv(C, 1)`, torchvision.ops.SqueezeExcitation's form), as
    Keras' Multiply, torch and ONNX's Mul broadcast an (N, C, 1, 1) tensor."""
    first = max(shapes, key=lambda s: (len(s), math.prod(s)))  # the map the gates scale
    for i, s in enumerate(shapes):
        gate = len(first) == 3 and s[-1] == first[-1] and (len(s) == 1 or (len(s) == 3 and s[:2] == (1, 1)))
        if s != first and not gate:
            raise ShapeError(f"multiply inputs do not broadcast: {_fmt(first)} vs {_fmt(s)}",
                             culprit=i if i else shapes.index(first),
                             hint=f"a gate scales a map's channels: give it the map's {first[-1]} channels, "
                             f"as {first[-1]} values (gap -> dense({first[-1]})) or as a 1x1x{first[-1]} map "
                             f"(adaptive_avgpool(1) -> conv({first[-1]}, 1))")
    return first, None


def _add_shape(attrs, shapes):
    first = shapes[0]
    for i, s in enumerate(shapes[1:], 1):
        if s != first:
            raise ShapeError(f"add inputs disagree on shape: {_fmt(first)} vs {_fmt(s)}", culprit=i,
                             hint="a residual branch must end with as many channels as its input, at the same size")
    return first, None


# --- count rules --------------------------------------------------------------------------

def _none(attrs, shapes, out):
    return ZERO


def _bn(attrs, channels: int, prefix: str = "bn_") -> Count:
    if not attrs.get("bn", True):
        return ZERO
    scale = attrs[prefix + "scale"] if prefix + "scale" in attrs else attrs.get("scale", True)
    return Count((2 if scale else 1) * channels, 2 * channels, 0)


def _conv_count(attrs, shapes, out):
    kh, kw = attrs["kernel"]
    cin, (oh, ow, cout) = shapes[0][2] // attrs.get("groups", 1), out  # each filter sees cin / groups channels
    weights = kh * kw * cin * cout + (cout if attrs["bias"] else 0)
    return Count(weights, 0, oh * ow * cout * kh * kw * cin) + _bn(attrs, cout)


def _dw_count(attrs, shapes, out):
    kh, kw = attrs["kernel"]
    oh, ow, cout = out
    weights = kh * kw * cout + (cout if attrs["bias"] else 0)
    return Count(weights, 0, oh * ow * cout * kh * kw) + _bn(attrs, cout)


def _sep_count(attrs, shapes, out):
    kh, kw = attrs["kernel"]
    cin, (oh, ow, cout) = shapes[0][2], out
    mid = cin * attrs["multiplier"]
    weights = kh * kw * mid + mid * cout + (cout if attrs["bias"] else 0)
    return Count(weights, 0, oh * ow * (mid * kh * kw + mid * cout)) + _bn(attrs, cout)


def _dense_count(attrs, shapes, out):
    cin, units = shapes[0][0], attrs["units"]
    return Count(cin * units + (units if attrs["bias"] else 0), 0, cin * units)


def _bn_count(attrs, shapes, out):
    return _bn({"bn": True, "scale": attrs["scale"]}, out[-1], prefix="")


# --- the table ----------------------------------------------------------------------------

_BN_ARGS = (
    Arg("bn", "bool", False, "batch norm after the convolution"),
    Arg("bn_scale", "bool", True, "batch norm learns a scale (gamma); Keras' Inception v3 has none"),
    Arg("bn_eps", "positive", 1e-3, "batch norm epsilon"),
    Arg("bn_momentum", "rate", 0.99, "batch norm moving-average momentum (Keras convention)"),
    Arg("act", "act", None, "activation after batch norm"),
)
# Training-only: they change how a network trains, not what it computes (ONNX ignores them).
_TRAIN_ARGS = (
    Arg("weight_decay", "decay", 0.0, "L2 penalty on the kernels: TF-slim's l2_regularizer(s), adding "
        "s * sum(w^2) / 2 to the loss (Keras L2(s / 2)); Caffe's and torch SGD's weight_decay"),
    Arg("init", "init", None, "kernel initializer (incdsl/initializers.py); none: glorot_uniform, Keras' default"),
)
KEYWORD_ONLY = frozenset(a.name for a in _TRAIN_ARGS)  # never positional, left out of signature hints
_CONV_TAIL = (
    Arg("stride", "size", 1, "step of the window: s or (sh, sw)"), Arg("pad", "pad", "same", "same, valid, p, (ph, pw) or (top, bottom, left, right)"),
    Arg("dilation", "size", 1, "spacing of the kernel taps (atrous convolution): d or (dh, dw)"),
    Arg("bias", "bool", True, "learn an additive bias per output channel"),
) + _BN_ARGS + _TRAIN_ARGS
_POOL_ARGS = (
    Arg("kernel", "size", REQUIRED, "window size: k or (kh, kw)"), Arg("stride", "size", None, "defaults to the kernel size"),
    Arg("pad", "pad", "valid", "same, valid, p, (ph, pw) or (top, bottom, left, right)"), Arg("ceil", "bool", False, "Caffe/PyTorch ceil mode"),
)
# A fact about the PyTorch model a spec reproduces, read only by `--convention ptflops` (ptflops
# counts a torch.nn pooling module by its hook and again by the functional it calls; a bare
# torch.nn.functional call once): torchvision's Inception v3 blocks pool with F.avg_pool2d.
_FUNCTIONAL = Arg("functional", "bool", False,
                  "the PyTorch model pools here with torch.nn.functional, not a torch.nn module "
                  "(only --convention ptflops reads it)")

OPS: dict[str, Op] = {op.name: op for op in (
    Op("input", (Arg("height", "count", REQUIRED, "image height in pixels"),
                 Arg("width", "count", REQUIRED, "image width in pixels"),
                 Arg("channels", "count", REQUIRED, "image channels (3 for RGB)")),
       lambda a, s: ((a["height"], a["width"], a["channels"]), None), _none, inputs=0,
       doc="the network's image input (NHWC, batch left out)"),
    Op("conv", (Arg("filters", "count", REQUIRED, "number of output channels"),
               Arg("kernel", "size", 1, "kernel size: k or (kh, kw), e.g. 3 or 1x7")) + _CONV_TAIL
       + (Arg("groups", "count", 1, "grouped convolution: channels in `groups` independent groups (ResNeXt)"),),
       _conv_shape, _conv_count,
       doc="2-D convolution, optionally followed by batch norm and an activation"),
    Op("dwconv", (Arg("kernel", "size", 3, "kernel size: k or (kh, kw)"),
                 Arg("multiplier", "count", 1, "output channels per input channel (depth multiplier)")) + _CONV_TAIL, _dw_shape, _dw_count,
       doc="depthwise convolution"),
    Op("sepconv", (Arg("filters", "count", REQUIRED, "number of output channels of the pointwise step"),
                  Arg("kernel", "size", 3, "depthwise kernel size: k or (kh, kw)"),
                  Arg("multiplier", "count", 1, "depthwise output channels per input channel")) + _CONV_TAIL,
       lambda a, s: _spatial(a, s[0], a["filters"], dilation=a["dilation"]), _sep_count,
       doc="separable convolution: depthwise then pointwise (Keras SeparableConv2D)"),
    Op("maxpool", _POOL_ARGS + (_FUNCTIONAL,), _pool_shape, _none, doc="max pooling; padding never wins the max"),
    Op("avgpool", _POOL_ARGS + (Arg("count_pad", "bool", False, "padding counts in the average (PyTorch's default)"),
                         _FUNCTIONAL),
       _pool_shape, _none, doc="average pooling"),
    Op("adaptive_avgpool", (Arg("size", "size", REQUIRED, "output size: s or (h, w)"), _FUNCTIONAL), _adaptive_shape, _none,
       doc="average pooling to a fixed output size (PyTorch AdaptiveAvgPool2d)"),
    Op("gap", (_FUNCTIONAL,), _gap_shape, _none, doc="global average pooling to a flat vector"),
    Op("gmp", (), _gap_shape, _none, doc="global max pooling to a flat vector"),
    Op("flatten", (), _flatten_shape, _none,
       doc="feature map to a flat vector, NHWC order (Keras Flatten; a torch model flattens NCHW)"),
    Op("dense", (Arg("units", "count", REQUIRED, "number of outputs"),
                Arg("bias", "bool", True, "learn an additive bias per output"),
                Arg("act", "act", None, "activation after the product")) + _TRAIN_ARGS,
       _dense_shape, _dense_count, doc="fully connected layer on a flat vector"),
    Op("dropout", (Arg("rate", "rate", REQUIRED, "fraction of inputs zeroed in training (0 <= rate < 1)"),), _same, _none,
       doc="dropout in training (Keras Dropout); the identity at inference and in the ONNX export"),
    Op("bn", (Arg("eps", "positive", 1e-3, "epsilon added to the variance"),
             Arg("scale", "bool", True, "learn a scale (gamma)"),
             Arg("momentum", "rate", 0.99, "moving-average momentum (Keras convention)")),
       _same, _bn_count, doc="batch normalization over channels"),
    Op("act", (Arg("fn", "act", REQUIRED, "the activation: relu, sigmoid, softmax, ..."), Arg("slope", "slope", None, "leaky_relu's negative slope (default 0.2, Keras')")),
       _act_shape, _none,
       doc="activation; `relu`, `softmax`, ... alone are short for act(relu), act(softmax), ..."),
    Op("lrn", (Arg("size", "count", 5, "number of neighbouring channels summed"),
              Arg("alpha", "any_float", 1e-4, "scale of the sum of squares (divided by size)"),
              Arg("beta", "any_float", 0.75, "exponent of the normalizer"),
              Arg("bias", "any_float", 1.0, "added to the scaled sum (k)")), _same, _none,
       doc="local response normalization across channels, Caffe/PyTorch convention (alpha / size)"),
    Op("scale", (Arg("factor", "any_float", REQUIRED, "the constant multiplier"),), _same, _none, doc="multiply by a constant (Inception-ResNet)"),
    Op("normalize", (Arg("mean", "floats", 0.0, "per-channel mean subtracted: one number or one per channel"),
                     Arg("std", "positives", 1.0, "per-channel divisor: one number or one per channel")), _affine_shape, _none,
       doc="(x - mean) / std per channel (torchvision's Normalize; ImageNet mean and std)"),
    Op("affine", (Arg("scale", "floats", 1.0, "per-channel factor: one number or one per channel"),
                  Arg("shift", "floats", 0.0, "per-channel offset added after the factor")), _affine_shape, _none,
       doc="x * scale + shift per channel (torchvision's transform_input)"),
    Op("zeropad", (Arg("pad", "pad", REQUIRED, "p, (ph, pw) or (top, bottom, left, right) zeros"),), _zeropad_shape, _none, doc="explicit zero padding"),
    Op("channel_shuffle", (Arg("groups", "count", REQUIRED, "number of channel groups g"),), _shuffle_shape, _none,
       doc="ShuffleNet's channel shuffle: (g, c/g) channels transposed to (c/g, g) (torch.nn.ChannelShuffle)"),
    Op("drop_path", (Arg("rate", "rate", REQUIRED, "probability of dropping a sample's branch in training"),), _same, _none,
       doc="stochastic depth: in training, drops a sample's whole branch with probability rate and scales "
           "the rest by 1/(1 - rate) (timm DropPath); the identity at inference"),
    Op("concat", (), _concat_shape, _none, inputs=None, doc="concatenate along channels"),
    Op("multiply", (), _multiply_shape, _none, inputs=None,
       doc="elementwise product; a vector scales the channels of a feature map (squeeze-and-excitation)"),
    Op("add", (), _add_shape, _none, inputs=None, doc="elementwise sum"),
)}

# Words that stand for an op with preset arguments.
ALIASES: dict[str, tuple[str, dict]] = {name: ("act", {"fn": name}) for name in ACTIVATIONS}
ALIASES.update({name: ("act", {"fn": fn}) for name, fn in ACTIVATION_NAMES.items()})


def _normalized_defaults(op: Op) -> dict:
    return {a.name: (a.default if a.default is None or a.default is REQUIRED else KINDS[a.kind](a.default))
            for a in op.args}


# Every op's built-in defaults, checked once: elaboration then only normalizes what a spec set.
DEFAULTS = {name: _normalized_defaults(op) for name, op in OPS.items()}
_ARGS = {name: {a.name: a for a in op.args} for name, op in OPS.items()}


class ArgError(ValueError):
    """A bad argument value: `arg` names the argument, the message says what is wrong with it
    (`must be at least 1, got 0`)."""

    def __init__(self, arg: str, message: str):
        super().__init__(message)
        self.arg = arg


def normalize(op: Op, raw: dict) -> dict:
    """Check and canonicalize an op's arguments (raw values already evaluated): defaults filled
    in, sizes as tuples, `stride=None` of a pool read as its kernel. Raises `ArgError` naming the
    first bad or missing argument."""
    attrs = dict(DEFAULTS[op.name])
    args = _ARGS[op.name]
    for name, v in raw.items():
        arg = args[name]
        try:
            attrs[name] = v if v is None and arg.default is None else KINDS[arg.kind](v)
        except ValueError as e:
            raise ArgError(name, str(e)) from None
    for name, v in attrs.items():
        if v is REQUIRED:
            raise ArgError(name, f"{op.name} needs '{name}'")
    if "stride" in attrs and attrs["stride"] is None:
        attrs["stride"] = attrs["kernel"]
    return attrs


def infer(op: Op, attrs: dict, in_shapes: list[Shape]):
    """(output shape, derivation, Count) for one layer."""
    out, why = op.shape(attrs, in_shapes)
    return out, why, op.count(attrs, in_shapes, out)
