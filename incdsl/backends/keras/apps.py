"""Import keras.applications weights (InceptionV3, InceptionResNetV2, Xception) into our models.

`load_applications_weights(model, net, path)` reads a weights file of the keras.applications model
that `net`'s spec reproduces (the `.h5` files keras.applications downloads, or a `.weights.h5`
saved from such a model), and sets every weighted layer of `model`, our Keras model of `net`.

How layers are matched: keras.applications names most of its layers automatically (`conv2d_57`),
and neither Keras' `model.layers` order nor creation order is ours, so names and list positions
cannot be used. Instead both graphs are put in the same canonical order: a depth-first walk back
from the output that visits a layer's inputs in their order (a concatenation's order is part of
the network), except that the inputs of a sum are visited shallowest first, because a sum does not
care and the codes list residual shortcuts on either side. The weighted layers in that order (conv,
separable conv, batch norm, dense; a conv node of ours stands for its conv and its batch norm) are
then paired one by one; kinds and every array's shape must agree, else nothing is loaded.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import SpecError, missing_file
from ...text import ParamText, first_line
from ...weights.arrays import weight_shapes
from .app_files import (
    explain_mismatch,
    keras3_classifier_shape,
    load_without_classifier,
    note_classifier_unused,
)
from .weights import from_keras, to_keras

# network name of our spec -> keras.applications constructor
APPLICATIONS = {
    "inception_v3": "InceptionV3",
    "inception_resnet_v2": "InceptionResNetV2",
    "xception": "Xception",
}

# Keras layer class -> the kind our nodes use for it
_KINDS = {"Conv2D": "conv", "SeparableConv2D": "sepconv", "DepthwiseConv2D": "dwconv",
          "BatchNormalization": "bn", "Dense": "dense"}

# Keras variable name -> our weights key, per kind
_VARS = {
    "conv": {"kernel": "kernel", "bias": "bias"},
    "dwconv": {"kernel": "depthwise_kernel", "depthwise_kernel": "depthwise_kernel", "bias": "bias"},
    "sepconv": {"depthwise_kernel": "depthwise_kernel", "pointwise_kernel": "pointwise_kernel",
                "bias": "bias"},
    "dense": {"kernel": "kernel", "bias": "bias"},
    "bn": {"gamma": "gamma", "beta": "beta", "moving_mean": "moving_mean",
           "moving_variance": "moving_variance"},
}


def has_counterpart(net) -> bool:
    """True when `net` is one of the specs that reproduce a keras.applications model exactly."""
    return net.name in APPLICATIONS


def reference_model(net, top: bool | None = None):
    """The keras.applications model that `net` reproduces (weights=None), built once per process for
    each input shape, class count, top and pooling: building Inception-ResNet-v2 takes seconds, and
    loading a weights file replaces every weight it holds. The spec's `top` and `pooling` are
    keras' `include_top` and `pooling`; `top` overrides the spec's (to diagnose a file)."""
    app = APPLICATIONS.get(net.name)
    if app is None:
        raise SpecError(f"network {net.name} has no keras.applications counterpart",
                        hint=f"keras.applications weights fit the specs of {', '.join(sorted(APPLICATIONS))}")
    if top is None:
        top = bool(net.params.get("top", True))
    pooling = net.params.get("pooling")
    return _build_reference(app, tuple(net.input_shape), int(net.params.get("classes", 1000)), top,
                            None if pooling is None else str(pooling))


@lru_cache(maxsize=4)
def _build_reference(app: str, input_shape: tuple, classes: int, top: bool = True,
                     pooling: str | None = None):
    import keras

    return getattr(keras.applications, app)(weights=None, include_top=top, input_shape=input_shape,
                                            classes=classes, pooling=None if top else pooling)


def load_applications_weights(model, net, path) -> None:
    """Load a keras.applications weights file for `net` into `model` (built from `net`, training
    or inference model): the legacy `.h5` files keras.applications ships (`*_notop.h5` into a spec
    with top=false), or Keras 3's `.weights.h5` saved from such a model. Training-only heads,
    which keras.applications lacks, keep their weights."""
    path = Path(path)
    if not path.is_file():
        raise missing_file("weights file", path)
    try:
        ref = reference_model(net)
    except ValueError as e:  # keras refuses the input size or class count
        raise SpecError(f"cannot build keras.applications.{APPLICATIONS[net.name]} for network "
                        f"{net.name} with {dict(net.params)}: {e}") from None
    top = bool(net.params.get("top", True))
    try:
        ref.load_weights(path)
    except Exception as e:  # not an h5 file, or the weights of another model or variant
        classes = 0 if top else load_without_classifier(ref, path)
        if classes:
            note_classifier_unused(path, classes)
        else:
            if top:
                _explain_top(net, path)
            explained = explain_mismatch(net, ref, APPLICATIONS[net.name], path)
            if explained is not None:
                raise explained from None
            raise SpecError(
                f"cannot read {path} as keras.applications.{APPLICATIONS[net.name]} weights: {first_line(e)}",
                hint="the file must hold that model's weights for the same classes (and width=1.0)",
            ) from None
    else:
        if not top and keras3_classifier_shape(path) is not None:  # Keras 3 loads it, skipping the Dense
            note_classifier_unused(path, keras3_classifier_shape(path)[-1])
    # keras.applications has no auxiliary heads: ours keep whatever weights they hold
    weights = from_keras(model, net)
    weights.update(applications_weights(ref, net))
    to_keras(model, net, weights)


def _explain_top(net, path) -> None:
    """A file that fails to load: if it loads into the reference with the other include_top, say
    so, naming the first layer that differs (the classifier)."""
    top = bool(net.params.get("top", True))
    try:
        reference_model(net, top=not top).load_weights(path)
    except Exception:
        return
    if top:
        dense = next(h.node for h in net.heads if not h.train_only)  # the classifier, `predictions`
        want = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in weight_shapes(net, dense).items())
        raise SpecError(
            f"{path} holds keras.applications.{APPLICATIONS[net.name]} without its top (a *_notop "
                        f"file): it has no weights for layer '{dense}', which expects {want}",
                        net.layers[dense].span, hint=ParamText("load it into the headless network: {set} "
                                                               "top=false (and pooling=avg, max or none)"))
    raise SpecError(
        f"{path} holds keras.applications.{APPLICATIONS[net.name]} with its top (layer 'predictions'), "
                    f"which network {net.name} with top=false does not have",
                    hint=ParamText("use the *_notop weights file, or {set} top=true"))


def applications_weights(ref, net) -> dict[str, dict[str, np.ndarray]]:
    """The weights dict of `net` taken from the keras.applications model `ref`, layer by layer."""
    import keras

    theirs = [(layer, _KINDS[type(layer).__name__]) for layer in _keras_walk(ref)
              if type(layer).__name__ in _KINDS]
    ours = []  # (node, kind) in the same canonical order, a conv with batch norm giving two entries
    for node in _ir_walk(net):
        lay = net.layers[node]
        if not weight_shapes(net, node):
            continue
        if lay.op == "bn":
            ours.append((node, "bn"))
            continue
        ours.append((node, lay.op))
        if lay.attrs.get("bn"):
            ours.append((node, "bn"))
    if len(ours) != len(theirs):
        raise SpecError(f"network {net.name} has {len(ours)} weighted layers (counting batch norms); "
                        f"keras.applications.{ref.name} has {len(theirs)}")
    weights: dict[str, dict[str, np.ndarray]] = {}
    for (node, kind), (layer, their_kind) in zip(ours, theirs):
        if kind != their_kind:
            raise SpecError(f"layer '{node}' ({kind}) meets keras layer {layer.name} ({their_kind}): "
                            f"network {net.name} is not built like keras.applications.{ref.name}",
                            net.layers[node].span)
        arrays = weights.setdefault(node, {})
        for var in layer.weights:
            key = _VARS[kind].get(var.path.split("/")[-1])
            if key is None:
                raise SpecError(f"keras layer {layer.name} has an unexpected variable {var.path}")
            arrays[key] = np.asarray(keras.ops.convert_to_numpy(var))
    for node, arrays in weights.items():  # check the shapes here, to name both layers
        want = weight_shapes(net, node)
        for key, arr in arrays.items():
            if key not in want or tuple(arr.shape) != tuple(want[key]):
                raise SpecError(f"keras.applications.{ref.name} gives {key} {tuple(arr.shape)} for layer "
                                f"'{node}', which needs {want.get(key)}", net.layers[node].span)
    return weights


# --- canonical orders -------------------------------------------------------------------------

def _postorder(outputs, inputs_of, depth):
    """Depth-first post-order from `outputs`: inputs in order, a sum's inputs shallowest first."""
    order, seen = [], set()
    stack = [(o, False) for o in reversed(outputs)]
    while stack:
        item, expanded = stack.pop()
        if expanded:
            order.append(item)
            continue
        if item in seen:
            continue
        seen.add(item)
        stack.append((item, True))
        ins, is_sum = inputs_of(item)
        if is_sum:
            ins = sorted(ins, key=lambda i: depth[i])  # stable: ties keep their order
        for i in reversed(ins):
            if i not in seen:
                stack.append((i, False))
    return order


def _ir_walk(net) -> list[str]:
    """Our inference graph's nodes in canonical order."""
    def inputs_of(n):
        lay = net.layers[n]
        return list(lay.inputs), lay.op == "add"

    depth = {}
    for n, lay in net.layers.items():  # topological order
        d = max((depth[i] for i in lay.inputs), default=0)
        depth[n] = d + (1 if weight_shapes(net, n) else 0)
    heads = [h.node for h in net.heads if not h.train_only]
    return _postorder(heads, inputs_of, depth)


def _keras_walk(model) -> list:
    """The layers of a keras functional model in canonical order."""
    def parents(layer):
        node = layer._inbound_nodes[0]
        return [t._keras_history.operation for t in node.input_tensors]

    def inputs_of(layer):
        cls = type(layer).__name__
        # CustomScaleLayer is Inception-ResNet-v2's `x + scale * up`
        return parents(layer) if layer._inbound_nodes else [], cls in ("Add", "CustomScaleLayer")

    depth = {}
    for layer in model.layers:  # keras keeps them in topological order
        ins = parents(layer) if layer._inbound_nodes and type(layer).__name__ != "InputLayer" else []
        d = max((depth.get(i, 0) for i in ins), default=0)
        depth[layer] = d + (1 if type(layer).__name__ in _KINDS else 0)
    outs = [t._keras_history.operation for t in model.outputs]
    return _postorder(outs, inputs_of, depth)
