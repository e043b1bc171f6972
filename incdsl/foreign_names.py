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
    return f"'{name}' is what {source} calls it; this language calls it {ours[0]}=, which this op does not take"


def argument_hint(name: str, known) -> str | None:
    """The hint for an unknown argument: another library's name first, else a close spelling."""
    from .errors import did_you_mean
    return foreign_hint(name, known) or did_you_mean(name, known)
