"""The op table: every op's arguments in positional order, its rule (incdsl/ops/rules.py: output
shape, weight shapes, MACs) and a one-line doc; `normalize` checks a layer's arguments against it
and `infer` applies its rule."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import rules
from .kinds import ACTIVATION_NAMES, ACTIVATIONS, KINDS, REQUIRED, Arg, ArgError
from .result import Count, Rule, Shape


@dataclass(frozen=True, slots=True)
class Op:
    """One row of the op table: the op's `name`, its `args` in positional order, its `rule`
    ((attrs, input shapes) -> `Rule`: output shape, weights' names and shapes in Keras layouts, MACs
    and derivation text; shapes NHWC, batch left out; raises `ShapeError`), how many `inputs` it
    takes (None: one or more, in order) and a one-line `doc`.
    """
    name: str
    args: tuple[Arg, ...]
    rule: Callable[[dict, list], Rule]
    inputs: int | None = 1  # None: one or more, in order
    doc: str = ""

    def arg(self, name: str) -> Arg | None:
        """The argument called `name`, or None when the op has no such argument."""
        return next((a for a in self.args if a.name == name), None)


_BN_ARGS = (
    Arg("bn", "bool", False, "batch norm after the convolution"),
    Arg("bn_scale", "bool", True, "batch norm learns a scale (gamma); Keras' Inception v3 has none"),
    Arg("bn_eps", "positive", 1e-3, "batch norm epsilon"),
    Arg("bn_momentum", "rate", 0.99, "batch norm moving-average momentum (Keras convention)"),
    Arg("bn_unbiased", "bool", False, "in training the moving variance takes the unbiased batch variance "
        "(n / (n - 1)), as torch.nn.BatchNorm2d; Keras takes the biased one. Inference is the same"),
    Arg("act", "act", None, "activation after batch norm"),
)
# Training-only: they change how a network trains, not what it computes (ONNX ignores them).
_TRAIN_ARGS = (
    Arg("weight_decay", "decay", 0.0, "L2 penalty on the kernels: TF-slim's l2_regularizer(s), adding "
        "s * sum(w^2) / 2 to the loss (Keras L2(s / 2)); Caffe's and torch SGD's weight_decay"),
    Arg("init", "init", None,
        "kernel initializer (incdsl/ops/initializers.py); none: glorot_uniform, Keras' default"),
)
# never positional, left out of signature hints: the training arguments, torch's variance rule and
# TF-slim's small-input kernel rule (rarely written, and the hint must stay on one screen line)
KEYWORD_ONLY = frozenset(a.name for a in _TRAIN_ARGS) | {"bn_unbiased", "fit"}
_CONV_TAIL = (
    Arg("stride", "size", 1, "step of the window: s or (sh, sw)"),
    Arg("pad", "pad", "same", "same, valid, p, (ph, pw) or (top, bottom, left, right)"),
    Arg("dilation", "size", 1, "spacing of the kernel taps (atrous convolution): d or (dh, dw)"),
    Arg("bias", "bool", True, "learn an additive bias per output channel"),
) + _BN_ARGS + _TRAIN_ARGS
_POOL_ARGS = (
    Arg("kernel", "size", REQUIRED, "window size: k or (kh, kw)"),
    Arg("stride", "size", None, "defaults to the kernel size"),
    Arg("pad", "pad", "valid", "same, valid, p, (ph, pw) or (top, bottom, left, right)"),
    Arg("ceil", "bool", False, "Caffe/PyTorch ceil mode"),
)
# A fact about the PyTorch model a spec reproduces, read only by `--convention ptflops` (ptflops
# counts a torch.nn pooling module by its hook and again by the functional it calls; a bare
# torch.nn.functional call once): torchvision's Inception v3 blocks pool with F.avg_pool2d.
_FUNCTIONAL = Arg("functional", "bool", False,
                  "the PyTorch model pools here with torch.nn.functional, not a torch.nn module "
                  "(only --convention ptflops reads it)")

# A fact about the backbone a spec reproduces, read only by `summary`'s taps (summary_extras.taps):
# timm's feature_info names its own feature maps, and for Inception-v4 the stride-4 one is Mixed3a,
# not the last map at that stride (timm/models/inception_v4.py: feature_info module 'features.3').
_TAP = Arg("tap", "bool", False, "this block's output is the backbone's feature tap at its stride "
           "(timm's features_only), not the last map at that stride")

OPS: dict[str, Op] = {op.name: op for op in (
    Op("input", (Arg("height", "count", REQUIRED, "image height in pixels"),
                 Arg("width", "count", REQUIRED, "image width in pixels"),
                 Arg("channels", "count", REQUIRED, "image channels (3 for RGB)")),
       rules.input_, inputs=0,
       doc="the network's image input (NHWC, batch left out)"),
    Op("conv", (Arg("filters", "count", REQUIRED, "number of output channels"),
               Arg("kernel", "size", 1, "kernel size: k or (kh, kw), e.g. 3 or 1x7")) + _CONV_TAIL
       + (Arg("groups", "count", 1, "grouped convolution: channels in `groups` independent groups (ResNeXt)"),
          Arg("fit", "fit", None, "none; shrink: each kernel side larger than the input map shrinks to it "
              "(TF-slim's _reduced_kernel_size_for_small_input); map: the kernel is the input map's HxW")),
       rules.conv,
       doc="2-D convolution, optionally followed by batch norm and an activation"),
    Op("dwconv", (Arg("kernel", "size", 3, "kernel size: k or (kh, kw)"),
                 Arg("multiplier", "count", 1,
                     "output channels per input channel (depth multiplier)")) + _CONV_TAIL, rules.dwconv,
       doc="depthwise convolution"),
    Op("sepconv", (Arg("filters", "count", REQUIRED, "number of output channels of the pointwise step"),
                  Arg("kernel", "size", 3, "depthwise kernel size: k or (kh, kw)"),
                  Arg("multiplier", "count", 1, "depthwise output channels per input channel")) + _CONV_TAIL,
       rules.sepconv,
       doc="separable convolution: depthwise then pointwise (Keras SeparableConv2D)"),
    Op("maxpool", _POOL_ARGS + (_FUNCTIONAL,), rules.pool, doc="max pooling; padding never wins the max"),
    Op("avgpool",
       _POOL_ARGS + (Arg("count_pad", "bool", False, "padding counts in the average (PyTorch's default)"),
                         _FUNCTIONAL),
       rules.pool, doc="average pooling"),
    Op("adaptive_avgpool", (Arg("size", "size", REQUIRED, "output size: s or (h, w)"), _FUNCTIONAL),
       rules.adaptive,
       doc="average pooling to a fixed output size (PyTorch AdaptiveAvgPool2d)"),
    Op("gap", (_FUNCTIONAL,), rules.global_pool, doc="global average pooling to a flat vector"),
    Op("gmp", (), rules.global_pool, doc="global max pooling to a flat vector"),
    Op("flatten", (), rules.flatten,
       doc="feature map to a flat vector, NHWC order (Keras Flatten; a torch model flattens NCHW)"),
    Op("dense", (Arg("units", "count", REQUIRED, "number of outputs"),
                Arg("bias", "bool", True, "learn an additive bias per output"),
                Arg("act", "act", None, "activation after the product")) + _TRAIN_ARGS,
       rules.dense, doc="fully connected layer on a flat vector"),
    Op("dropout", (Arg("rate", "rate", REQUIRED, "fraction of inputs zeroed in training (0 <= rate < 1)"),),
       rules.same,
       doc="dropout in training (Keras Dropout); the identity at inference and in the ONNX export"),
    Op("bn", (Arg("eps", "positive", 1e-3, "epsilon added to the variance"),
             Arg("scale", "bool", True, "learn a scale (gamma)"),
             Arg("momentum", "rate", 0.99, "moving-average momentum (Keras convention)"),
             Arg("unbiased", "bool", False,
                 "the moving variance takes the unbiased batch variance, as torch")),
       rules.bn, doc="batch normalization over channels"),
    Op("act",
       (Arg("fn", "act", REQUIRED, "the activation: relu, sigmoid, softmax, ..."),
        Arg("slope", "slope", None, "leaky_relu's negative slope (default 0.2, Keras')")),
       rules.act,
       doc="activation; `relu`, `softmax`, ... alone are short for act(relu), act(softmax), ..."),
    Op("lrn", (Arg("size", "count", 5, "number of neighbouring channels summed"),
              Arg("alpha", "any_float", 1e-4, "scale of the sum of squares (divided by size)"),
              Arg("beta", "any_float", 0.75, "exponent of the normalizer"),
              Arg("bias", "any_float", 1.0, "added to the scaled sum (k)")), rules.same,
       doc="local response normalization across channels, Caffe/PyTorch convention (alpha / size)"),
    Op("scale", (Arg("factor", "any_float", REQUIRED, "the constant multiplier"),), rules.same,
       doc="multiply by a constant (Inception-ResNet)"),
    Op("normalize", (Arg("mean", "floats", 0.0, "per-channel mean subtracted: one number or one per channel"),
                     Arg("std", "positives", 1.0, "per-channel divisor: one number or one per channel")),
       rules.affine,
       doc="(x - mean) / std per channel (torchvision's Normalize; ImageNet mean and std)"),
    Op("affine", (Arg("scale", "floats", 1.0, "per-channel factor: one number or one per channel"),
                  Arg("shift", "floats", 0.0, "per-channel offset added after the factor")), rules.affine,
       doc="x * scale + shift per channel (torchvision's transform_input)"),
    Op("zeropad", (Arg("pad", "pad", REQUIRED, "p, (ph, pw) or (top, bottom, left, right) zeros"),),
       rules.zeropad, doc="explicit zero padding"),
    Op("channel_shuffle", (Arg("groups", "count", REQUIRED, "number of channel groups g"),),
       rules.channel_shuffle,
       doc="ShuffleNet's channel shuffle: (g, c/g) channels transposed to (c/g, g) "
           "(torch.nn.ChannelShuffle)"),
    Op("drop_path", (Arg("rate", "rate", REQUIRED, "probability of dropping a sample's branch in training"),),
       rules.same,
       doc="stochastic depth: in training, drops a sample's whole branch with probability rate and scales "
           "the rest by 1/(1 - rate) (timm DropPath); the identity at inference"),
    Op("concat", (_TAP,), rules.concat, inputs=None, doc="concatenate along channels"),
    Op("multiply", (_TAP,), rules.multiply, inputs=None,
       doc="elementwise product; a vector scales the channels of a feature map (squeeze-and-excitation)"),
    Op("add", (_TAP,), rules.add, inputs=None, doc="elementwise sum"),
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


def apply(op: Op, attrs: dict, in_shapes: list[Shape]) -> Rule:
    """The op's `Rule` for one layer (normalized `attrs`, input shapes NHWC without the batch):
    output shape, weight shapes, MACs, derivation. Raises `ShapeError` when the inputs do not fit."""
    return op.rule(attrs, in_shapes)


def infer(op: Op, attrs: dict, in_shapes: list[Shape]) -> tuple[Shape, str | None, Count]:
    """(output shape, derivation or None, `Count` derived from the weight shapes) for one layer.
    Raises `ShapeError` when the inputs do not fit."""
    r = op.rule(attrs, in_shapes)
    return r.out, r.why, r.count
