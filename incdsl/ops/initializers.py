"""Kernel initializers of the language (`init=` on conv, sepconv, dwconv, dense), with Keras' meaning.

A value is a word (`he_normal`) or a call (`truncated_normal(0.1)`), kept as the text that says it
(a `str`, so reports and JSON show it as written). `draw` gives numpy arrays with Keras 3's
formulas (keras/src/initializers/random_initializers.py), for `incdsl.weights.arrays.init_weights`
(reproducible from a seed without Keras); `keras_initializer` in the Keras backend makes Keras'
own object from the same text. No Keras import here.

- glorot_uniform (Keras' default, and TF-slim's conv2d default xavier_initializer()), glorot_normal,
  he_normal, he_uniform, lecun_normal, lecun_uniform: variance scaling with fans from the kernel
  shape (receptive field x in, x out); the *_normal ones draw a normal truncated at 2 standard
  deviations, its stddev divided by 0.8796 so the variance comes out as stated (Keras).
- truncated_normal(stddev): mean 0, redrawn beyond 2 stddev (TF-slim's trunc_normal, tf's
  truncated_normal_initializer); random_normal(stddev); random_uniform(limit): [-limit, limit].
- zeros, ones.
"""
from __future__ import annotations

import math
import re

# name -> (scale, mode, distribution) for variance scaling, or the parameter a call takes
SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"), "glorot_normal": (1.0, "fan_avg", "truncated"),
    "he_normal": (2.0, "fan_in", "truncated"), "he_uniform": (2.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated"), "lecun_uniform": (1.0, "fan_in", "uniform"),
}
CALLS = {"truncated_normal": "stddev", "random_normal": "stddev", "random_uniform": "limit"}
CONSTANTS = ("zeros", "ones")
NAMES = tuple(SCALING) + CONSTANTS + tuple(CALLS)
_CALL = re.compile(r"^([a-z_]+)\((.*)\)$")


def make(name: str, args: list) -> str:
    """The value of a call such as `truncated_normal(0.1)`. Raises ValueError for an unknown name,
    a wrong number of arguments or a parameter that is not a finite positive number."""
    if name not in CALLS:
        if name in SCALING or name in CONSTANTS:
            raise ValueError(f"{name} takes no arguments: write init={name}")
        raise ValueError(f"unknown initializer '{name}'")
    if len(args) != 1:
        raise ValueError(f"{name}() takes one argument ({CALLS[name]}), got {len(args)}")
    v = args[0]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}'s {CALLS[name]} must be a finite number above 0, got {v!r}")
    return f"{name}({float(v):g})"


def check(v) -> str:
    """Normalize an `init=` value (a word or make()'s text); ValueError says what is wrong."""
    if not isinstance(v, str):
        raise ValueError(f"must be an initializer ({', '.join(NAMES)}), got {v!r}")
    name, param = parse(v)
    if param is None and name in CALLS:
        raise ValueError(f"{name} needs its {CALLS[name]}: e.g. {name}(0.1)")
    return str(v)


def parse(v: str) -> tuple[str, float | None]:
    """Split an initializer's text into (name, parameter): `"he_normal"` -> ("he_normal", None),
    `"truncated_normal(0.1)"` -> ("truncated_normal", 0.1). Raises ValueError for an unknown
    name, an unreadable number, or a parameter `make` refuses (e.g. a stddev <= 0)."""
    m = _CALL.match(v)
    if m:
        name = m.group(1)
        try:
            param = float(m.group(2))
        except ValueError:
            raise ValueError(f"cannot read the initializer '{v}'") from None
        make(name, [param])  # the same checks as a call in a spec
        return name, param
    if v not in NAMES:
        raise ValueError(f"unknown initializer '{v}'")
    return v, None


def fans(shape: tuple) -> tuple[int, int]:
    """Keras' compute_fans: the last two axes are (in, out), the others the receptive field."""
    if len(shape) < 2:
        return (shape[0], shape[0]) if shape else (1, 1)
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated(rng, shape: tuple, stddev: float):
    import numpy as np
    w = rng.standard_normal(shape, dtype=np.float32)
    bad = np.abs(w) > 2
    while bad.any():  # redraw beyond 2 stddev, as tf.random.truncated_normal does
        w[bad] = rng.standard_normal(int(bad.sum()), dtype=np.float32)
        bad = np.abs(w) > 2
    return w * np.float32(stddev)


def draw(rng, shape: tuple, init: str | None):
    """A float32 kernel (numpy array) of `shape` drawn from `rng` (numpy Generator) as `init` says
    (None: glorot_uniform, Keras' default)."""
    import numpy as np  # lazily: the front end checks `init=` values without numpy
    name, param = parse(init or "glorot_uniform")
    if name == "zeros":
        return np.zeros(shape, np.float32)
    if name == "ones":
        return np.ones(shape, np.float32)
    if name == "truncated_normal":
        return _truncated(rng, shape, param)
    if name == "random_normal":
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(param)
    if name == "random_uniform":
        return (rng.random(shape, dtype=np.float32) * 2 - 1) * np.float32(param)
    scale, mode, dist = SCALING[name]
    fan_in, fan_out = fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    if name == "glorot_uniform":  # sqrt(6 / (fan_in + fan_out)) as Keras writes it, to the last bit
        limit = np.float32(math.sqrt(6.0 / (fan_in + fan_out)))
    variance = scale / max(1.0, n)
    if dist == "truncated":
        return _truncated(rng, shape, math.sqrt(variance) / 0.87962566103423978)
    if name != "glorot_uniform":
        limit = np.float32(math.sqrt(3.0 * variance))
    w = rng.random(shape, dtype=np.float32)  # float32 directly: fast on Inception v3's 24M weights
    w *= 2 * limit
    w -= limit
    return w
