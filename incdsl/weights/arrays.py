"""Weights as plain numpy: the interchange format of the Keras and ONNX backends.

A weights dict maps a node name to its arrays, keyed per op (NHWC kernels, Keras layouts):
  conv:    kernel (kh, kw, cin, cout), bias (cout) if bias
  dwconv:  depthwise_kernel (kh, kw, cin, mult), bias (cin*mult) if bias
  sepconv: depthwise_kernel (kh, kw, cin, mult), pointwise_kernel (1, 1, cin*mult, cout), bias
  dense:   kernel (cin, units), bias (units) if bias
and wherever a node has batch norm (bn=true, or op bn): gamma (only if it scales), beta,
moving_mean, moving_variance.

`init_weights` needs numpy alone, so the ONNX emitter reproduces a seeded Keras model exactly
without TensorFlow. Reading and writing Keras models: incdsl/backends/keras/weights.py.
"""
from __future__ import annotations

import zlib
from math import prod

import numpy as np

from ..ops import BN_KEYS, OPS, apply, initializers  # noqa: F401 (BN_KEYS: a batch norm's weights, in Keras' names and order)
from ..untrusted import SLACK

Weights = dict[str, dict[str, np.ndarray]]

# Keras forbids '/' in layer names and its PyTorch backend '.' in variable paths; IR names never
# contain '-', so it maps back unambiguously and the same .keras file loads on every backend.
SEP = "-"


def keras_name(node, part: str = "") -> str:
    """The Keras layer name of an IR node (a `Layer` or its name), or of one of its parts
    ("bn", "act", "pad"): `keras_name("a/b/conv_1", "bn") == "a-b-conv_1-bn"`."""
    name = (node if isinstance(node, str) else node.name).replace("/", SEP)
    return f"{name}{SEP}{part}" if part else name


def weight_shapes(net, layer: str) -> dict[str, tuple]:
    """The arrays node `layer` owns and their shapes in Keras layouts (empty for ops without
    weights): for a conv, {"kernel": (kh, kw, cin/groups, filters), "bias": (filters,)} as Keras'
    Conv2D keeps them, plus gamma/beta/moving_mean/moving_variance (channels,) for its batch norm
    (see the module docstring for every op). The op's rule (incdsl/ops/rules.py) says them, from
    `net.shapes`; raises KeyError for an unknown layer name."""
    lay = net.layers[layer]
    return dict(apply(OPS[lay.op], lay.attrs, [net.shapes[i] for i in lay.inputs]).weights)


# Keras' initial values of the weights that are not kernels (keras.layers.BatchNormalization's
# gamma_initializer="ones", moving_variance_initializer="ones"; bias and beta "zeros").
ONES = frozenset({"gamma", "moving_variance"})
ZEROS = frozenset({"bias", "beta", "moving_mean"})


def init_weights(net, seed: int = 0, layers=None) -> Weights:
    """Deterministic initial weights for every layer of `net` (training heads included), or only
    for those in `layers` (a collection of layer names; the ONNX export draws the inference
    layers alone, which Inception v3's aux head makes 12% fewer numbers): a layer's values are
    the same either way.

    Each node draws from its own generator seeded by (seed, crc32 of its name), so a node's
    weights depend on its name and shapes only, not on the rest of the network. Kernels are
    drawn as the layer's `init=` says (incdsl/ops/initializers.py; glorot-uniform, Keras' default,
    without one), biases and beta zero, gamma one, moving mean 0 and var 1. Raises ValueError for
    a weight name without a rule here (an op added without saying how its weights start).
    """
    out: Weights = {}
    for name in net.layers:
        if layers is not None and name not in layers:
            continue
        shapes = weight_shapes(net, name)
        if not shapes:
            continue
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
        arrays = {}
        for key, shape in shapes.items():
            if key.endswith("kernel"):
                arrays[key] = initializers.draw(rng, shape, net.layers[name].attrs.get("init"))
            elif key in ONES or key in ZEROS:
                arrays[key] = (np.ones if key in ONES else np.zeros)(shape, np.float32)
            else:  # a new op's weight: say how it starts here rather than start it silently at zero
                raise ValueError(f"init_weights has no initial value for weight '{key}' of "
                                 f"{net.layers[name].op} layer '{name}'")
        out[name] = arrays
    return out


def weights_limit(net) -> int:
    """The most bytes a weights file of `net` may hold: 8 bytes for each of its parameters (batch
    norms' moving statistics and training heads included) plus `untrusted.SLACK`."""
    params = sum(prod(s) for n in net.layers for s in weight_shapes(net, n).values())
    return 8 * params + SLACK
