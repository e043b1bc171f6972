"""Argument names people bring from Keras, TF-slim and PyTorch, and what this language calls them,
so that an unknown argument gets the right suggestion rather than the nearest spelling
(`kernel_regularizer` is not a misspelt `kernel`)."""
from __future__ import annotations

# name elsewhere -> (the name here: the first of these an op takes, where the other name comes from)
FOREIGN: dict[str, tuple[str | tuple[str, ...], str]] = {
    "kernel_regularizer": ("weight_decay", "Keras"),
    "weights_regularizer": ("weight_decay", "TF-slim"),
    "kernel_initializer": ("init", "Keras"),
    "weights_initializer": ("init", "TF-slim"),
    "stddev": ("init", "TF-slim's trunc_normal_initializer"),
    "kernel_size": ("kernel", "Keras and PyTorch"),
    "strides": ("stride", "Keras"),
    "padding": ("pad", "Keras and PyTorch"),
    "dilation_rate": ("dilation", "Keras"),
    "rate": ("dilation", "TF-slim's conv2d"),
    "use_bias": ("bias", "Keras"),
    "activation": ("act", "Keras"),
    "activation_fn": ("act", "TF-slim"),
    "num_outputs": ("filters", "TF-slim"),
    "out_channels": ("filters", "PyTorch"),
    "depth_multiplier": ("multiplier", "Keras"),
    "pool_size": ("kernel", "Keras"),
    "ceil_mode": ("ceil", "PyTorch"),
    "count_include_pad": ("count_pad", "PyTorch"),
    "negative_slope": ("slope", "Keras and PyTorch"),
    "alpha": ("slope", "Keras 2's LeakyReLU"),
    "epsilon": (("bn_eps", "eps"), "Keras"),
    "eps": (("bn_eps",), "PyTorch"),
    "momentum": (("bn_momentum",), "Keras"),
    "normalizer_fn": ("bn", "TF-slim"),
}


# The weighted layers' regularization and initialization arguments (issue 10): named whatever the op
# is, so the hint reads the same on every op that has weights.
WEIGHT_ARGS = frozenset({"weight_decay", "init"})


def foreign_hint(name: str, known) -> str | None:
    """"'kernel_regularizer' is what Keras calls it; here it is weight_decay=" when `name` is another
    library's name for an argument, else None. `known`: the arguments the op takes."""
    hit = FOREIGN.get(name)
    if hit is None:
        return None
    ours, source = hit
    ours = (ours,) if isinstance(ours, str) else ours
    here = next((o for o in ours if o in known or o in WEIGHT_ARGS), None)
    if here is not None:
        return f"'{name}' is what {source} calls it; here it is {here}="
    return (
        f"'{name}' is what {source} calls it; this language calls it {ours[0]}=, which this op does not take"
    )


def argument_hint(name: str, known) -> str | None:
    """The hint for an unknown argument: another library's name first, else a close spelling."""
    from ..errors import did_you_mean
    return foreign_hint(name, known) or did_you_mean(name, known)


# Layer names people bring from Keras and PyTorch (lower-cased: `Conv2D`, `Conv2d` and `conv2d`
# are one entry) -> (how it is written here, where the other name comes from)
FOREIGN_OPS: dict[str, tuple[str, str]] = {
    "conv2d": ("conv(filters, kernel)", "Keras' Conv2D and PyTorch's Conv2d"),
    "separableconv2d": ("sepconv(filters, kernel)", "Keras' SeparableConv2D"),
    "depthwiseconv2d": ("dwconv(kernel)", "Keras' DepthwiseConv2D"),
    "maxpooling2d": ("maxpool(kernel, stride)", "Keras' MaxPooling2D"),
    "maxpool2d": ("maxpool(kernel, stride)", "PyTorch's MaxPool2d"),
    "averagepooling2d": ("avgpool(kernel, stride)", "Keras' AveragePooling2D"),
    "avgpool2d": ("avgpool(kernel, stride)", "PyTorch's AvgPool2d"),
    "adaptiveavgpool2d": ("adaptive_avgpool(size)", "PyTorch's AdaptiveAvgPool2d"),
    "globalaveragepooling2d": ("gap", "Keras' GlobalAveragePooling2D"),
    "globalmaxpooling2d": ("gmp", "Keras' GlobalMaxPooling2D"),
    "batchnormalization": ("bn", "Keras' BatchNormalization"),
    "batchnorm2d": ("bn", "PyTorch's BatchNorm2d"),
    "linear": ("dense(units)", "PyTorch's Linear"),
    "zeropadding2d": ("zeropad(pad)", "Keras' ZeroPadding2D"),
    "concatenate": ("a block: concat { ... }, one branch per line", "Keras' Concatenate"),
    "cat": ("a block: concat { ... }, one branch per line", "torch.cat"),
    "stochastic_depth": ("drop_path(rate)", "torchvision's stochastic_depth"),
    "stochasticdepth": ("drop_path(rate)", "torchvision's StochasticDepth"),
    "droppath": ("drop_path(rate)", "timm's DropPath"),
    "channelshuffle": ("channel_shuffle(groups)", "PyTorch's ChannelShuffle"),
    "shuffle": ("channel_shuffle(groups)", "ShuffleNet's channel shuffle"),
    "leakyrelu": ("leaky_relu(slope)", "Keras' LeakyReLU and PyTorch's LeakyReLU"),
    "activation": ("act(fn)", "Keras' Activation"),
}
# Keras' and PyTorch's names that differ from ours only in case (`Dense`, `Dropout`, `ReLU`,
# `Add`, `Multiply`) are found by did_you_mean's case-insensitive match.


def op_hint(name: str, known) -> str | None:
    """The hint for an unknown layer name: another library's name for one of our ops (`Conv2D`,
    `stochastic_depth`, `shuffle`), else a close spelling, case-insensitive. `known`: the names
    visible there (ops, modules, named values)."""
    from ..errors import did_you_mean
    hit = FOREIGN_OPS.get(name.lower())
    if hit is not None:
        ours, source = hit
        return f"'{name}' is {source}; here it is {ours}"
    return did_you_mean(name, known)
