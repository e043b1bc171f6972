"""The weights dict (incdsl/weights/arrays.py) to and from a Keras model, by the layer-naming contract."""
from __future__ import annotations

import keras
import numpy as np

from ...errors import SpecError
from ...text import SCALAR, shape_text
from ...weights.arrays import Weights, keras_name, weight_shapes


def _layer_variables(layer) -> dict:
    """A Keras layer's variables under the weights dict's keys: Keras' own variable names (kernel,
    bias, depthwise_kernel, pointwise_kernel, gamma, beta, moving_mean, moving_variance), which the
    op rules use too, so a new op's layer needs no entry here."""
    depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)  # Keras 3 calls its kernel plain "kernel"
    return {("depthwise_kernel" if depthwise and v.name == "kernel" else v.name): v for v in layer.weights}


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


def all_layers(model) -> dict:
    """Layers by name, looking inside nested models too: `incdsl train` saves the network inside a
    wrapper that adds the pixel preprocessing."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.update(all_layers(layer))
        out.setdefault(layer.name, layer)
    return out


def settable_variables(model, net) -> list:
    """The variables `to_keras` sets: those of every node of `net` that has weights and a layer in
    `model` (its main layer and its batch norm)."""
    layers = all_layers(model)
    out = []
    for name in net.layers:
        variables = _node_variables(layers, name) if weight_shapes(net, name) else None
        out.extend((variables or {}).values())
    return out


def from_keras(model, net) -> Weights:
    """The weights dict of every weighted node of `net` that `model` has a layer for, read from
    the model as it is (so `to_keras` can tell a model of another spec or variant)."""
    layers = all_layers(model)
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
    layers = all_layers(model)
    for name in net.layers:
        shapes = weight_shapes(net, name)
        variables = _node_variables(layers, name) if shapes else None
        if variables is None:
            continue
        span = net.layers[name].span
        if set(variables) != set(shapes):
            raise SpecError(
                f"the Keras layers of '{name}' hold {', '.join(sorted(variables))}; the spec says "
                            f"{', '.join(sorted(shapes))}", span,
                            hint="was the model built from another spec?")
        given = weights.get(name)
        if given is None:
            raise SpecError(f"the weights have nothing for layer '{name}'", span)
        if set(given) != set(shapes):
            raise SpecError(f"the weights of '{name}' hold {', '.join(sorted(given))}; "
                            f"it needs {', '.join(sorted(shapes))}", span)
        for key, shape in shapes.items():
            arr = np.asarray(given[key])
            if arr.shape != shape:
                raise SpecError(f"the weights' {key} of '{name}' is {shape_text(arr.shape, SCALAR)}; "
                                f"the layer needs {shape_text(shape, SCALAR)}",
                                span, hint="were they saved from another variant (width, classes)?")
            variables[key].assign(arr.astype(np.float32))
