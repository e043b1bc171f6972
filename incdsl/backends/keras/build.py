"""Keras 3 backend: translate a checked Network into a `keras.Model`, layer for layer.

Pure Keras 3 (`keras.layers`, `keras.ops`), so the model builds on the TensorFlow, JAX and PyTorch
backends. It only translates: shapes come from `net.shapes`, and every Keras output shape is
checked against them as the model is built.

Naming (`keras_name`, in weights.py): node `a/b/conv_1` becomes layer `a-b-conv_1`; its batch
norm `a-b-conv_1-bn`, its activation `a-b-conv_1-act`, and explicit zero padding in front of it
`a-b-conv_1-pad`. Keras forbids '/' in layer names and Keras' PyTorch backend cannot hold a
variable whose layer name has a '.', so '-' (which IR names never contain) is the one separator
that makes a .keras file load on every backend. A dense layer keeps its activation inside (`Dense(...,
activation=)`, as keras.applications does). Each output is a layer named after its head (an `Identity` is
added when the head's node has another name; when that name is taken by the node's own conv, as in an
unnamed output ending in conv -> bn -> act, the output keeps its last layer's name). The training
model returns the heads in `net.heads` order; the inference model drops the training-only ones
and every layer only they use.

Where Keras has no exact layer (PyTorch's ceil-mode and padded pools, count_pad, adaptive pooling,
Caffe's LRN), `layers.py` supplies one, registered as `incdsl>Name`. `import incdsl` does not
import Keras; it installs a hook (register.py) that registers these classes as soon as Keras
is imported, so `import incdsl, keras; keras.models.load_model(path)` works. `custom_objects()`
returns the same classes for an explicit `custom_objects=`.

Activations are Keras' own with Keras' defaults: gelu is exact (erf, not tanh), leaky_relu has
slope 0.2 unless the spec gives one, elu alpha 1.0, hard_sigmoid is relu6(x + 3) / 6 (PyTorch's
Hardsigmoid).

A conv with both stride and dilation, which Keras' Conv2D refuses, is built as the same conv at
stride 1 over the same (explicit) padding followed by `Subsample` (part `sub`): exact, at s^2 the work.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from ...errors import SpecError, missing_file
from ...ops import ACTIVATION_TABLE, LEAKY_RELU_SLOPE, affine_of
from ...ops.groups import CONVS
from ...text import ParamText, first_line
from ...weights.arrays import init_weights, keras_name
from ...weights.torch import is_torch_file, load_torch_weights
from ..targets import strided_dilation
from .layers import (
    CUSTOM_OBJECTS,
    LRN,
    AdaptiveAvgPool2D,
    AvgPool2D,
    ChannelShuffle,
    DropPath,
    GroupedConv2D,
    MaxPool2D,
    Subsample,
    TorchBatchNormalization,
)
from .weights import all_layers, from_keras, settable_variables, to_keras

L = keras.layers


def custom_objects() -> dict:
    """incdsl's custom layers by registered name, for `keras.models.load_model(custom_objects=)`."""
    return dict(CUSTOM_OBJECTS)


# --- one function per op: (layer, input tensors, net) -> output tensor ------------------------

def _padding(pad, node, x):
    """Keras padding mode for a conv, zero-padding x first when the spec's padding is explicit."""
    if isinstance(pad, str):
        return pad, x
    t, b, l, r = pad
    if t == b == l == r == 0:
        return "valid", x
    return "valid", L.ZeroPadding2D(((t, b), (l, r)), name=keras_name(node, "pad"))(x)


def _bn_act(a: dict, node, x):
    if a["bn"]:
        norm = TorchBatchNormalization if a.get("bn_unbiased") else L.BatchNormalization
        x = norm(epsilon=a["bn_eps"], momentum=a["bn_momentum"], scale=a["bn_scale"],
                 name=keras_name(node, "bn"))(x)
    if a["act"]:
        x = L.Activation(_keras_act(a["act"]), name=keras_name(node, "act"))(x)
    return x


def _keras_act(fn: str | None) -> str | None:
    """Keras' name (keras.activations) of an activation of the table, None for none."""
    return None if fn is None else ACTIVATION_TABLE[fn].keras


def _kernel_args(a: dict, *kernels: str) -> dict:
    """Keras' initializer and L2 regularizer arguments for each kernel of a layer ("kernel",
    "depthwise", "pointwise"). The spec's weight_decay s is TF-slim's l2_regularizer(s), which adds
    s * sum(w^2) / 2 to the loss; Keras' L2(l) adds l * sum(w^2), so l = s / 2."""
    out = {}
    for k in kernels:
        if a.get("init"):  # Keras' names: kernel_initializer, depthwise_initializer, pointwise_initializer
            out[f"{k}_initializer"] = keras_initializer(a["init"])
        if a.get("weight_decay"):
            out[f"{k}_regularizer" if k != "kernel" else "kernel_regularizer"] = keras.regularizers.L2(
                a["weight_decay"] / 2
            )
    return out


def keras_initializer(init: str):
    """Keras' initializer object for an `init=` value (incdsl/ops/initializers.py), same meaning."""
    from ...ops.initializers import parse
    name, param = parse(init)
    I = keras.initializers
    if name == "truncated_normal":
        return I.TruncatedNormal(0.0, param)
    if name == "random_normal":
        return I.RandomNormal(0.0, param)
    if name == "random_uniform":
        return I.RandomUniform(-param, param)
    return I.get(name)


def _conv(layer, xs, net):
    a, name = layer.attrs, keras_name(layer)
    pad, strides, x = a["pad"], a["stride"], xs[0]
    if strided_dilation(a):
        # the same conv at stride 1 over the same padding, then every s-th output: exact, at s^2
        # times the work; the padding is written out (TF's 'same' split for the strided conv)
        pad, strides = net.pads[layer.name].real, (1, 1)
    padding, x = _padding(pad, layer, x)
    common = dict(kernel_size=a["kernel"], strides=strides, padding=padding, dilation_rate=a["dilation"],
                  use_bias=a["bias"], name=name)
    if layer.op == "conv":
        cls = GroupedConv2D if a["groups"] > 1 else L.Conv2D
        x = cls(a["filters"], groups=a["groups"], **common, **_kernel_args(a, "kernel"))(x)
    elif layer.op == "dwconv":
        x = L.DepthwiseConv2D(depth_multiplier=a["multiplier"], **common, **_kernel_args(a, "depthwise"))(x)
    else:
        x = L.SeparableConv2D(a["filters"], depth_multiplier=a["multiplier"], **common,
                              **_kernel_args(a, "depthwise", "pointwise"))(x)
    if strides != a["stride"]:
        x = Subsample(a["stride"], name=keras_name(layer, "sub"))(x)
    return _bn_act(a, layer, x)


def _act(layer, xs, net):
    a, name = layer.attrs, keras_name(layer)
    if a["fn"] == "leaky_relu" and a["slope"] is not None and a["slope"] != LEAKY_RELU_SLOPE:
        return L.LeakyReLU(negative_slope=a["slope"], name=name)(xs[0])
    return L.Activation(_keras_act(a["fn"]), name=name)(xs[0])


def _multiply(layer, xs, net):
    """A vector of C values scales the channels of an HxWxC map: reshaped to 1x1xC, then broadcast."""
    if len(xs) == 1:
        return L.Identity(name=keras_name(layer))(xs[0])
    xs = [L.Reshape((1, 1, x.shape[-1]), name=keras_name(layer, f"expand{i + 1}"))(x) if len(x.shape) == 2
          and len(net.shapes[layer.name]) == 3 else x for i, x in enumerate(xs)]
    return L.Multiply(name=keras_name(layer))(xs)


def _pool(layer, xs, net):
    a, name, x = layer.attrs, keras_name(layer), xs[0]
    (kh, kw), (sh, sw), pads = a["kernel"], a["stride"], net.pads[layer.name]
    t, b, l, r = pads.real
    eb, er = pads.over_bottom, pads.over_right  # ceil mode: windows past the padded input
    is_max = layer.op == "maxpool"
    count_pad = a.get("count_pad", False)
    if a["pad"] == "same" and (is_max or (not count_pad and (t + b) % 2 == 0 and (l + r) % 2 == 0)):
        # Keras' own: padding never counts. Otherwise TF's 'same' padding is made explicit (the
        # extra row/column at the bottom/right): averaging with zeros counted (count_pad), or an
        # uneven split, which Keras' torch backend averages wrongly (keras-team/keras#18452: torch
        # pads both sides alike)
        cls = L.MaxPooling2D if is_max else L.AveragePooling2D
        return cls((kh, kw), (sh, sw), padding="same", name=name)(x)
    if t == b == l == r == eb == er == 0:
        cls = L.MaxPooling2D if is_max else L.AveragePooling2D
        return cls((kh, kw), (sh, sw), padding="valid", name=name)(x)
    if is_max:
        return MaxPool2D((kh, kw), (sh, sw), padding=(t, b + eb, l, r + er), name=name)(x)
    if count_pad and eb == er == 0:  # every window lies in the padded input: plain Keras is exact
        x = L.ZeroPadding2D(((t, b), (l, r)), name=keras_name(layer, "pad"))(x)
        return L.AveragePooling2D((kh, kw), (sh, sw), padding="valid", name=name)(x)
    return AvgPool2D((kh, kw), (sh, sw), padding=(t, b, l, r), extra=(eb, er), count_pad=count_pad,
                     name=name)(x)


def _merge(cls):
    def build(layer, xs, net):
        if len(xs) == 1:
            return L.Identity(name=keras_name(layer))(xs[0])
        return cls(name=keras_name(layer))(list(xs))
    return build


def _one(make):
    """An op that is exactly one Keras layer: make(attrs) -> layer class and kwargs."""
    def build(layer, xs, net):
        cls, kwargs = make(layer.attrs)
        return cls(name=keras_name(layer), **kwargs)(xs[0])
    return build


BUILDERS = {
    **dict.fromkeys(sorted(CONVS), _conv),
    "maxpool": _pool, "avgpool": _pool,
    "adaptive_avgpool": _one(lambda a: (AdaptiveAvgPool2D, {"output_size": a["size"]})),
    "gap": _one(lambda a: (L.GlobalAveragePooling2D, {})),
    "gmp": _one(lambda a: (L.GlobalMaxPooling2D, {})),
    "flatten": _one(lambda a: (L.Flatten, {})),
    "dense": _one(lambda a: (L.Dense,
                             {"units": a["units"], "use_bias": a["bias"], "activation": _keras_act(a["act"]),
                                       **_kernel_args(a, "kernel")})),
    "dropout": _one(lambda a: (L.Dropout, {"rate": a["rate"]})),
    "bn": _one(lambda a: (TorchBatchNormalization if a.get("unbiased") else L.BatchNormalization,
                          {"epsilon": a["eps"], "momentum": a["momentum"], "scale": a["scale"]})),
    "act": _act,
    "channel_shuffle": _one(lambda a: (ChannelShuffle, {"groups": a["groups"]})),
    "drop_path": _one(lambda a: (DropPath, {"rate": a["rate"]})),
    "lrn": _one(lambda a: (LRN,
                           {"size": a["size"], "alpha": a["alpha"], "beta": a["beta"], "bias": a["bias"]})),
    "scale": _one(lambda a: (L.Rescaling, {"scale": a["factor"], "offset": 0.0})),
    "affine": _one(lambda a: (L.Rescaling, dict(zip(("scale", "offset"), map(list, affine_of(a)))))),
    "normalize": _one(lambda a: (L.Rescaling, dict(zip(("scale", "offset"), map(list, affine_of(a)))))),
    "zeropad": _one(lambda a: (L.ZeroPadding2D,
                               {"padding": ((a["pad"][0], a["pad"][1]), (a["pad"][2], a["pad"][3]))})),
    "concat": _merge(L.Concatenate),
    "add": _merge(L.Add),
    "multiply": _multiply,
}


def build_model(net, inference: bool = False, seed: int | None = None, weights=None, *,
                placeholder: bool = False) -> keras.Model:
    """The Keras model of `net`: a functional `keras.Model` named after the network, taking NHWC
    images (batch, H, W, C) as `net.input_shape` says, with one output per head (the training
    model, aux heads included, by default; only the inference heads with `inference=True`).
    Layers are named after IR nodes (`incdsl.weights.arrays.keras_name`), so weights move by name.

    `seed` sets the weights from `incdsl.weights.arrays.init_weights(net, seed)` (reproducible without
    Keras); `weights` (a weights dict, layer name -> arrays in Keras layouts) sets them explicitly;
    with neither, Keras' own random initializers are left in place, unless `placeholder` says that
    the caller sets every weight (`model.weights`) before using the model: then, on JAX, the weights
    are zeros until it does (no initial values drawn; on the other backends Keras draws them).

    Raises `incdsl.errors.SpecError` when Keras refuses a layer (its ValueError, at the layer's
    spec place) or a weights array is missing, extra or misshapen; RuntimeError if a Keras
    layer's shape disagrees with `net.shapes` (a bug: the backend and the op's rule in incdsl/ops/rules.py
    must agree)."""
    if weights is None and seed is not None:
        weights = init_weights(net, seed)
    if (weights is None and not placeholder) or keras.backend.backend() != "jax":
        model = _functional(net, inference)
    else:
        # Keras draws every weight's initial values as the layer is built, and on JAX each
        # distinct weight shape compiles its own XLA random-number program (~70 for GoogLeNet:
        # ~60 s of CPU) for values `to_keras` overwrites at once. Built in a StatelessScope, the
        # variables wait; those `to_keras` sets are then made as numpy zeros, the others (a
        # dropout's seed state) by their own initializers, as the scope ends (Keras' deferred
        # initialization, which also places them under an active keras.distribution).
        with keras.StatelessScope():
            model = _functional(net, inference)
            for variable in settable_variables(model, net) if weights is not None else model.weights:
                variable._initializer = HostZeros()
    if weights is not None:
        to_keras(model, net, weights)
    return model


class HostZeros(keras.initializers.Initializer):
    """Zeros made by numpy on the host. keras.initializers.Zeros calls keras.ops.zeros, which on
    JAX compiles one XLA program per distinct weight shape (56 for Inception v3: ~2 s of CPU)
    for values that are overwritten at once (build_model, train/inference_load.py)."""

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, keras.backend.standardize_dtype(dtype or "float32"))


def _functional(net, inference: bool) -> keras.Model:
    """The functional model of `net` (see `build_model`), its weights as Keras' initializers make them."""
    heads = [h for h in net.heads if not (inference and h.train_only)]
    keep = net.inference if inference else net.layers  # elaboration already dropped dead ends
    tensors = {}
    for name, layer in net.layers.items():
        if name not in keep:
            continue
        if layer.op == "input":
            x = keras.Input(shape=net.shapes[name], name=keras_name(name))
        else:
            try:
                x = BUILDERS[layer.op](layer, [tensors[i] for i in layer.inputs], net)
            except ValueError as e:  # e.g. Keras refuses stride > 1 together with dilation > 1
                raise SpecError(f"Keras cannot build this {layer.op}: {e}", layer.span) from None
        if tuple(x.shape[1:]) != tuple(net.shapes[name]):
            raise RuntimeError(f"Keras gives {tuple(x.shape[1:])} for '{name}' where the shape pass "
                               f"says {net.shapes[name]}: the backend and incdsl/ops/rules.py disagree")
        tensors[name] = x
    inputs = [t for n, t in tensors.items() if net.layers[n].op == "input"]
    outputs = [_named_output(net, h, tensors[h.node], tensors) for h in heads]
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs,
                       outputs[0] if len(outputs) == 1 else outputs, name=net.name)


def _named_output(net, head, x, tensors):
    if x._keras_history[0].name == head.name:
        return x
    taken = {keras_name(n, part) for n in tensors for part in ("", "bn", "act", "pad", "sub")}
    if head.name in taken:  # e.g. an unnamed output `conv_1` ending in conv_1-act
        return x
    return L.Identity(name=keras_name(head.name))(x)


# --- weights files ----------------------------------------------------------------------------

def load_weights_file(model, net, path: str | Path) -> str:
    """Load weights saved from the same spec (.keras by layer name, .weights.h5 by structure), or
    hand any other file (a keras.applications .h5) to the keras.applications importer. Returns how
    the weights were read."""
    path = Path(path)
    if not path.is_file():
        raise missing_file("weights file", path)
    from ...untrusted import check_weights_input
    from ...weights.arrays import weights_limit
    check_weights_input(path, weights_limit(net))  # zip bombs, HDF5 external storage/links, virtual datasets
    why = None
    if is_torch_file(path):
        to_keras(model, net, load_torch_weights(net, path))
        return "the PyTorch importer"
    if path.suffix == ".keras":
        try:
            saved = keras.models.load_model(path, compile=False)
        except Exception as e:  # not a Keras archive, or one Keras cannot read
            raise SpecError(f"cannot read {path} as a Keras model: {first_line(e)}") from None
        names = set(all_layers(saved))
        if any(keras_name(n) in names for n in net.layers if n != "input"):
            to_keras(model, net, from_keras(saved, net))
            return "the same spec's layer names"
        why = "its layer names are not this spec's"
    elif path.name.endswith(".weights.h5"):
        # Keras 3 files name their layers by class (conv2d, conv2d_1, ...) whoever saved them, so
        # only loading tells our own file from a keras.applications one: ours first, then theirs
        import warnings
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.load_weights(path)
            skipped = [
                w for w in caught if "Skipping" in str(w.message) or "could not be loaded" in str(w.message)]
            if not skipped:
                _note_unused_classifier(net, path)
                return "a weights file of the same model"
            # Keras loaded what matched and skipped the rest: not this model's own file
            raise ValueError(first_line(Exception(str(skipped[0].message))))
        except Exception as e:  # Keras matches .weights.h5 files by structure, not by name
            own = SpecError(f"cannot load weights from {path} into network {net.name}: {first_line(e)}",
                            hint=ParamText("a .weights.h5 file loads into the model it was saved from: same "
                                           "spec, parameters and {inference}"))
        from . import apps as keras_apps
        if not keras_apps.has_counterpart(net):
            raise own
        keras_apps.load_applications_weights(model, net, path)
        return "the keras.applications importer"
    else:
        why = "it is not a .keras or .weights.h5 file saved by incdsl"
    try:
        from . import apps as keras_apps
    except ImportError:
        keras_apps = None
    if keras_apps is not None and hasattr(keras_apps, "load_applications_weights"):
        keras_apps.load_applications_weights(model, net, path)
        return "the keras.applications importer"
    raise SpecError(f"cannot load weights from {path} into network {net.name}: {why}",
                    hint="pass a .keras or .weights.h5 file saved from this spec with the same parameters")


def _note_unused_classifier(net, path: Path) -> None:
    """A keras.applications file with its classifier, loaded into a headless (top=false) spec:
    Keras loads the layers the model has and leaves the rest unread, so say what was left out."""
    from . import apps as keras_apps
    from .app_files import keras3_classifier_shape, note_classifier_unused
    if keras_apps.has_counterpart(net) and not net.params.get("top", True):
        shape = keras3_classifier_shape(path)
        if shape is not None:
            note_classifier_unused(path, shape[-1] if shape else None)
