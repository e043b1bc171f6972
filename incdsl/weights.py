"""Weights as plain numpy: the interchange format of the Keras and ONNX backends.

A weights dict maps a node name to its arrays, keyed per op (NHWC kernels, Keras layouts):
  conv:    kernel (kh, kw, cin, cout), bias (cout) if bias
  dwconv:  depthwise_kernel (kh, kw, cin, mult), bias (cin*mult) if bias
  sepconv: depthwise_kernel (kh, kw, cin, mult), pointwise_kernel (1, 1, cin*mult, cout), bias
  dense:   kernel (cin, units), bias (units) if bias
and wherever a node has batch norm (bn=true, or op bn): gamma (only if it scales), beta,
moving_mean, moving_variance.

`init_weights` needs numpy alone, so the ONNX emitter reproduces a seeded Keras model exactly
without TensorFlow. `from_keras`/`to_keras` import Keras lazily.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from .errors import SpecError

Weights = dict[str, dict[str, np.ndarray]]

# Keras forbids '/' in layer names and its PyTorch backend '.' in variable paths; IR names never
# contain '-', so it maps back unambiguously and the same .keras file loads on every backend.
SEP = "-"


def keras_name(node, part: str = "") -> str:
    """The Keras layer name of an IR node (a `Layer` or its name), or of one of its parts
    ("bn", "act", "pad"): `keras_name("a/b/conv_1", "bn") == "a-b-conv_1-bn"`."""
    name = (node if isinstance(node, str) else node.name).replace("/", SEP)
    return f"{name}{SEP}{part}" if part else name
_BN_KEYS = ("gamma", "beta", "moving_mean", "moving_variance")


def _bn_shapes(scale: bool, channels: int) -> dict[str, tuple]:
    keys = _BN_KEYS if scale else _BN_KEYS[1:]
    return {k: (channels,) for k in keys}


def weight_shapes(net, layer: str) -> dict[str, tuple]:
    """The arrays node `layer` owns and their shapes (empty for ops without weights)."""
    lay = net.layers[layer]
    a, op = lay.attrs, lay.op
    cout = net.shapes[layer][-1]
    cin = net.shapes[lay.inputs[0]][-1] if lay.inputs else 0
    if op == "conv":
        out = {"kernel": (*a["kernel"], cin, cout)}
    elif op == "dwconv":
        out = {"depthwise_kernel": (*a["kernel"], cin, a["multiplier"])}
    elif op == "sepconv":
        mid = cin * a["multiplier"]
        out = {"depthwise_kernel": (*a["kernel"], cin, a["multiplier"]), "pointwise_kernel": (1, 1, mid, cout)}
    elif op == "dense":
        out = {"kernel": (cin, cout)}
    elif op == "bn":
        return _bn_shapes(a["scale"], cout)
    else:
        return {}
    if a["bias"]:
        out["bias"] = (cout,)
    if a.get("bn"):
        out.update(_bn_shapes(a["bn_scale"], cout))
    return out


def _glorot_uniform(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    # Keras' compute_fans: the last two axes are (in, out), the others the receptive field.
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.float32(math.sqrt(6.0 / (fan_in + fan_out)))
    # drawn in float32 directly: half the time of float64-then-cast on Inception v3's 24M weights
    w = rng.random(shape, dtype=np.float32)
    w *= 2 * limit
    w -= limit
    return w


def init_weights(net, seed: int = 0) -> Weights:
    """Deterministic initial weights for every layer of `net` (training heads included).

    Each node draws from its own generator seeded by (seed, crc32 of its name), so a node's
    weights depend on its name and shapes only, not on the rest of the network. Kernels are
    glorot-uniform (Keras' default), biases and beta zero, gamma one, moving mean 0 and var 1.
    """
    out: Weights = {}
    for name in net.layers:
        shapes = weight_shapes(net, name)
        if not shapes:
            continue
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
        arrays = {}
        for key, shape in shapes.items():
            if key.endswith("kernel"):
                arrays[key] = _glorot_uniform(rng, shape)
            elif key in ("gamma", "moving_variance"):
                arrays[key] = np.ones(shape, np.float32)
            else:
                arrays[key] = np.zeros(shape, np.float32)
        out[name] = arrays
    return out


# --- Keras side ---------------------------------------------------------------------------------
def _layer_variables(layer) -> dict:
    """A Keras layer's variables under the weights dict's keys (absent ones left out)."""
    import keras
    L = keras.layers
    if isinstance(layer, L.DepthwiseConv2D):  # Keras 3 calls its depthwise kernel plain "kernel"
        found = {"depthwise_kernel": layer.kernel, "bias": layer.bias}
    elif isinstance(layer, L.SeparableConv2D):
        found = {"depthwise_kernel": layer.depthwise_kernel, "pointwise_kernel": layer.pointwise_kernel,
                 "bias": layer.bias}
    elif isinstance(layer, (L.Conv2D, L.Dense)):
        found = {"kernel": layer.kernel, "bias": layer.bias}
    elif isinstance(layer, L.BatchNormalization):
        found = {"gamma": layer.gamma, "beta": layer.beta, "moving_mean": layer.moving_mean,
                 "moving_variance": layer.moving_variance}
    else:
        found = {}
    return {k: v for k, v in found.items() if v is not None}


def _node_variables(layers: dict, node: str) -> dict | None:
    """The variables of a node's Keras layers (its main layer and its batch norm), or None if the
    model has no layer for the node."""
    main = layers.get(keras_name(node))
    if main is None:
        return None
    found = _layer_variables(main)
    bn = layers.get(keras_name(node, "bn"))
    if bn is not None:
        found.update(_layer_variables(bn))
    return found


def from_keras(model, net) -> Weights:
    """The weights dict of every weighted node of `net` that `model` has a layer for, read from
    the model as it is (so `to_keras` can tell a model of another spec or variant)."""
    import keras
    layers = {layer.name: layer for layer in model.layers}
    out: Weights = {}
    for name in net.layers:
        if not weight_shapes(net, name):
            continue
        found = _node_variables(layers, name)
        if found:
            out[name] = {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in found.items()}
    return out


def to_keras(model, net, weights: Weights) -> None:
    """Set every weighted layer of `model` from `weights`; a missing, extra or misshapen array is a
    SpecError. Nodes of `net` the model leaves out (training heads of an inference model) are skipped."""
    unknown = [n for n in weights if n not in net.layers]
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise SpecError(f"the weights name layers that network {net.name} does not have: "
                        f"{', '.join(unknown[:3])}{more}", hint="were they saved from another spec?")
    layers = {layer.name: layer for layer in model.layers}
    for name in net.layers:
        shapes = weight_shapes(net, name)
        variables = _node_variables(layers, name) if shapes else None
        if variables is None:
            continue
        span = net.layers[name].span
        if set(variables) != set(shapes):
            raise SpecError(f"the Keras layers of '{name}' hold {', '.join(sorted(variables))}; the spec says "
                            f"{', '.join(sorted(shapes))}", span, hint="was the model built from another spec?")
        given = weights.get(name)
        if given is None:
            raise SpecError(f"the weights have nothing for layer '{name}'", span)
        if set(given) != set(shapes):
            raise SpecError(f"the weights of '{name}' hold {', '.join(sorted(given))}; "
                            f"it needs {', '.join(sorted(shapes))}", span)
        for key, shape in shapes.items():
            arr = np.asarray(given[key])
            if arr.shape != shape:
                raise SpecError(f"the weights' {key} of '{name}' is {_fmt(arr.shape)}; the layer needs {_fmt(shape)}",
                                span, hint="were they saved from another variant (width, classes)?")
            variables[key].assign(arr.astype(np.float32))


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape) or "a scalar"
