"""The Keras importer's converters: one function per Keras layer class, mapping a layer's config and
variables to the incdsl op it is (`Translation`), or None for a layer that passes its input on.
`CONVERT` maps each class name to its converter, as TVM's Keras frontend's `_convert_map`;
tests/importers/test_importer_dispatch.py checks that every class the Keras backend builds is there.
Weights come out in Keras' layouts, which are incdsl's (NHWC, HWIO kernels).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import SpecError
from ..ir import window
from ..ops import ACTIVATION_TABLE

# Keras' activation names (keras.activations) -> the language's, from the activation table
KERAS_ACTIVATIONS = {a.keras: a.name for a in ACTIVATION_TABLE.values()}


@dataclass(frozen=True)
class Translation:
    """What one Keras layer becomes: an incdsl `op` with raw `attrs` (checked later by the op
    table), its `weights` (name -> float32 array, Keras layouts) and, for keras.applications'
    CustomScaleLayer (x + r * scale), the `scale` factor of the branch it adds (a `scale` layer
    then goes in front of the `add`)."""
    op: str
    attrs: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    scale: float | None = None


@dataclass(frozen=True)
class KerasLayer:
    """One layer of the model as the converters read it: its class name `cls`, its `config`, the
    built Keras `layer` (None for the InputLayer), the imported nodes of its inputs `ins`, `what`
    (name and class, for messages), the model file `source` and the `keras` module."""
    cls: str
    config: dict
    layer: object
    ins: list
    what: str
    source: str
    keras: object

    def bad(self, why: str) -> SpecError:
        """The SpecError for this layer: the file, the layer and `why` it cannot be imported."""
        return SpecError(f"{self.source}: layer {self.what}: {why}")

    def var(self, v) -> np.ndarray:
        """A Keras variable as a float32 numpy array."""
        return np.asarray(self.keras.ops.convert_to_numpy(v), np.float32)

    @property
    def act(self):
        """The config's activation as Keras names it ("linear" when it has none)."""
        return self.config.get("activation", "linear")

    def fn(self):
        """The config's activation as the language names it: None for none; a name Keras has and
        the table lacks passes through, for the op table to refuse with its list."""
        act = self.act
        if act in (None, "linear"):
            return None
        return KERAS_ACTIVATIONS.get(act, act) if isinstance(act, str) else act


def translate(k: KerasLayer) -> Translation | None:
    """The `Translation` of one Keras layer, or None for a pass-through layer (Identity, a merge of
    one input). Raises SpecError for a layer no incdsl op is, or one whose options none has."""
    if k.cls != "InputLayer":
        if k.config.get("data_format", "channels_last") != "channels_last":
            raise k.bad("channels_first layers cannot be imported (incdsl is NHWC)")
        if k.act not in (None, "linear") and k.cls not in ("Activation", "Dense") and not isinstance(k.act,
                                                                                                     str):
            raise k.bad(f"activation {k.act!r} has no incdsl equivalent")
    convert = CONVERT.get(k.cls)
    if convert is None:
        raise SpecError(f"{k.source}: layer {k.what} has no incdsl op",
                        hint="incdsl's ops are listed in specs/README.md; import a model built from them")
    return convert(k)


def _conv(k: KerasLayer) -> Translation:
    c = k.config
    if c.get("groups", 1) != 1:
        raise k.bad(f"grouped convolution (groups={c['groups']}) has no incdsl op")
    common = {"kernel": tuple(c["kernel_size"]), "stride": tuple(c["strides"]), "pad": c["padding"],
              "dilation": tuple(c["dilation_rate"]), "bias": c["use_bias"], "act": k.fn()}
    if k.cls == "Conv2D":
        w = {"kernel": k.var(k.layer.kernel)}
        op, attrs = "conv", {"filters": c["filters"], **common}
    elif k.cls == "DepthwiseConv2D":
        w = {"depthwise_kernel": k.var(k.layer.kernel)}
        op, attrs = "dwconv", {"multiplier": c["depth_multiplier"], **common}
    else:
        w = {"depthwise_kernel": k.var(k.layer.depthwise_kernel),
             "pointwise_kernel": k.var(k.layer.pointwise_kernel)}
        op, attrs = "sepconv", {"filters": c["filters"], "multiplier": c["depth_multiplier"], **common}
    if c["use_bias"]:
        w["bias"] = k.var(k.layer.bias)
    return Translation(op, attrs, w)


def _batch_norm(k: KerasLayer) -> Translation:
    """BatchNormalization, and incdsl's TorchBatchNormalization (bn_unbiased)."""
    c, layer = k.config, k.layer
    if c["axis"] not in (-1, 3, [3], [-1]) or not c.get("center", True) or c.get("renorm"):
        raise k.bad("only batch norm over channels with a beta (center=True) maps to incdsl's bn")
    w = {"beta": k.var(layer.beta), "moving_mean": k.var(layer.moving_mean),
         "moving_variance": k.var(layer.moving_variance)}
    if c["scale"]:
        w["gamma"] = k.var(layer.gamma)
    return Translation("bn", {"eps": c["epsilon"], "scale": c["scale"], "momentum": c["momentum"],
                              "unbiased": k.cls == "TorchBatchNormalization"}, w)


def _activation(k: KerasLayer) -> Translation:
    if not isinstance(k.act, str):
        raise k.bad(f"activation {k.act!r} has no incdsl equivalent")
    return Translation("act", {"fn": KERAS_ACTIVATIONS.get(k.act, k.act)})


def _relu(k: KerasLayer) -> Translation:
    c = k.config
    if c.get("negative_slope", 0) or c.get("threshold", 0) or c.get("max_value") not in (None, 6, 6.0):
        raise k.bad("only plain relu and relu6 map to incdsl")
    return Translation("act", {"fn": "relu6" if c.get("max_value") else "relu"})


def _leaky_relu(k: KerasLayer) -> Translation:
    """Keras 3 calls the slope negative_slope, Keras 2 alpha."""
    slope = k.config.get("negative_slope", k.config.get("alpha", 0.3))
    return Translation("act", {"fn": "leaky_relu", "slope": float(slope)})


def _dense(k: KerasLayer) -> Translation:
    c = k.config
    w = {"kernel": k.var(k.layer.kernel)}
    if c["use_bias"]:
        w["bias"] = k.var(k.layer.bias)
    return Translation("dense", {"units": c["units"], "bias": c["use_bias"], "act": k.fn()}, w)


def _keras_pool(k: KerasLayer) -> Translation:
    c = k.config
    return Translation("maxpool" if k.cls.startswith("Max") else "avgpool",
                       {"kernel": tuple(c["pool_size"]), "stride": tuple(c["strides"] or c["pool_size"]),
                        "pad": c["padding"]})


def _global_pool(k: KerasLayer) -> Translation:
    if k.config.get("keepdims"):
        raise k.bad("keepdims=True has no incdsl op (gap gives a flat vector)")
    return Translation("gap" if "Average" in k.cls else "gmp")


def _merge(k: KerasLayer) -> Translation | None:
    """Concatenate and Add; a merge of one input passes it on."""
    if k.cls == "Concatenate" and k.config["axis"] not in (-1, 3):
        raise k.bad(f"concatenation along axis {k.config['axis']}; incdsl concatenates channels")
    if len(k.ins) == 1:
        return None
    return Translation("concat" if k.cls == "Concatenate" else "add")


def _reshape(k: KerasLayer) -> None:
    """A vector reshaped to 1x1xC, as the Keras backend writes a squeeze-and-excitation gate before
    `multiply` (which broadcasts a vector over a map itself): the same value."""
    if len(k.layer.input.shape) == 2 and tuple(k.config["target_shape"]) == (1, 1, k.layer.input.shape[-1]):
        return None
    raise k.bad(f"a reshape to {tuple(k.config['target_shape'])} has no incdsl op (only a vector to 1x1xC)")


def _zero_padding(k: KerasLayer) -> Translation:
    (t, b), (l, r) = k.config["padding"]
    return Translation("zeropad", {"pad": (t, b, l, r)})


def _rescaling(k: KerasLayer) -> Translation:
    c = k.config
    if c.get("offset", 0) != 0 or not isinstance(c["scale"], (int, float)):
        raise k.bad("rescaling with an offset or per-channel scale has no incdsl op")
    return Translation("scale", {"factor": float(c["scale"])})


def _own_pool(k: KerasLayer) -> Translation:
    """incdsl's own MaxPool2D and AvgPool2D: explicit padding (and PyTorch's divisor)."""
    c = k.config
    t, b, l, r = c["padding"]
    eb, er = c.get("extra", (0, 0))
    attrs = {"kernel": tuple(c["pool_size"]), "stride": tuple(c["strides"]), "pad": (t, b + eb, l, r + er)}
    if k.cls == "MaxPool2D":
        size, out = tuple(k.layer.input.shape[1:3]), tuple(k.layer.output.shape[1:3])
        return Translation("maxpool", ceil_mode(attrs, size, out))
    if eb or er:
        raise k.bad("ceil-mode average pooling cannot be imported yet")
    return Translation("avgpool", {**attrs, "count_pad": c["count_pad"]})


def ceil_mode(attrs: dict, size: tuple, out: tuple) -> dict:
    """incdsl's Keras backend writes a ceil-mode max pool as extra bottom/right padding
    (backends/keras/build.py `_pool`): read it back as `ceil=true` where that is what it was.
    `size` and `out` are the pool's input and output (H, W)."""
    (kh, kw), (sh, sw) = attrs["kernel"], attrs["stride"]
    t, b, l, r = attrs["pad"]
    (h, w), (oh, ow) = size, out
    eb, er = window.overhang(h, kh, sh, 1, t, t, oh), window.overhang(w, kw, sw, 1, l, l, ow)
    if (eb or er) and b - eb == t and r - er == l:
        pad = (t, t, l, l) if (t or l) else "valid"
        return {**attrs, "pad": pad, "ceil": True}
    return attrs


# Keras layer class name -> converter (KerasLayer) -> Translation, or None for a pass-through layer
CONVERT: dict[str, Callable[[KerasLayer], Translation | None]] = {
    "InputLayer": lambda k: Translation("input"),
    "Conv2D": _conv, "DepthwiseConv2D": _conv, "SeparableConv2D": _conv,
    "BatchNormalization": _batch_norm, "TorchBatchNormalization": _batch_norm,
    "Activation": _activation, "ReLU": _relu, "LeakyReLU": _leaky_relu,
    "Softmax": lambda k: Translation("act", {"fn": "softmax"}),
    "Multiply": lambda k: Translation("multiply") if len(k.ins) > 1 else None,
    "Dense": _dense,
    "MaxPooling2D": _keras_pool, "AveragePooling2D": _keras_pool,
    "GlobalAveragePooling2D": _global_pool, "GlobalMaxPooling2D": _global_pool,
    "Flatten": lambda k: Translation("flatten"),
    "Dropout": lambda k: Translation("dropout", {"rate": k.config["rate"]}),
    "Concatenate": _merge, "Add": _merge,
    "ZeroPadding2D": _zero_padding, "Reshape": _reshape,
    "Rescaling": _rescaling,
    "Identity": lambda k: None,
    # keras.applications Inception-ResNet-v2: x + r * scale, a scale layer then an add
    "CustomScaleLayer": lambda k: Translation("add", scale=float(k.config["scale"])),
    "LRN": lambda k: Translation("lrn", {name: k.config[name] for name in ("size", "alpha", "beta", "bias")}),
    "AdaptiveAvgPool2D": lambda k: Translation("adaptive_avgpool", {"size": tuple(k.config["output_size"])}),
    "MaxPool2D": _own_pool, "AvgPool2D": _own_pool,
}
