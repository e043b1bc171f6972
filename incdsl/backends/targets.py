"""What each compile target does with a layer it cannot take as it is: said by `incdsl check`, so
that nothing surprises at compile time. Front end only (no Keras or onnx imported here)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import Span
from ..ops.groups import CONVS
from ..text import ParamText

# the backends as a Python caller names them (the command line: `--to keras`, `--to onnx --via tf2onnx`)
BACKENDS = {"keras": "backends.keras.export", "onnx": "backends.onnx.export",
            "onnx_tf2onnx": 'backends.onnx.export(via="tf2onnx")'}


@dataclass(frozen=True)
class TargetNote:
    """One thing a compile target does differently from the spec, for `incdsl check` to say:
    the layer's name, its spec place (None if the compiler made it) and the sentence (a ParamText
    naming the backends as Python calls them; `incdsl check` words them as `--to` flags)."""
    layer: str
    span: Span | None
    message: str


def strided_dilation(attrs: dict) -> bool:
    """stride > 1 together with dilation > 1: Keras' Conv2D, DepthwiseConv2D and SeparableConv2D
    refuse it on every Keras backend ("strides > 1 not supported in conjunction with
    dilation_rate > 1"); ONNX's Conv and PyTorch's Conv2d take it."""
    return attrs.get("stride", (1, 1)) != (1, 1) and attrs.get("dilation", (1, 1)) != (1, 1)


def target_notes(net) -> list[TargetNote]:
    """One note per layer that some target builds differently from the spec's one layer; today
    the strided dilated convolutions Keras refuses (see `strided_dilation`). Takes a checked
    `incdsl.network.Network`; returns the notes in layer order (empty when every target builds
    the spec as written)."""
    notes = []
    for name, layer in net.layers.items():
        if layer.op in CONVS and strided_dilation(layer.attrs):
            (sh, sw), (dh, dw) = layer.attrs["stride"], layer.attrs["dilation"]
            s = f"{sh}" if sh == sw else f"{sh}x{sw}"
            d = f"{dh}" if dh == dw else f"{dh}x{dw}"
            notes.append(TargetNote(name, layer.span, ParamText(
                "{op} '{name}' has stride {s} with dilation {d}, which Keras' layers refuse: {keras} and "
                "{onnx_tf2onnx} compute it at stride 1 and keep one row in {sh} and one column in {sw} "
                "({macs}x this "
                "layer's MACs, the same outputs); {onnx} (direct) builds it as it is", words=BACKENDS,
                op=layer.op, name=name, s=s, d=d, sh=sh, sw=sw, macs=sh * sw)))
    return notes
