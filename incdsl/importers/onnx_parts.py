"""Small readers of an ONNX graph's pieces for `model_onnx`: attributes, module scopes from node
names, TF "same" pads, float32 values in their shortest decimal, output names and activation ops."""
from __future__ import annotations

import re

import numpy as np

from ..ops import ACTIVATION_TABLE
from .flat import spec_name

# ONNX activation ops that are incdsl `act` layers, by their `fn` (the activation table's onnx_op)
ACTS = {a.onnx_op: a.name for a in ACTIVATION_TABLE.values() if a.onnx_op}
# the attributes each of those ops must carry (the table's onnx_attrs), and ONNX's defaults for them
# (onnx.defs: HardSigmoid alpha 0.2 beta 0.5, Elu alpha 1.0, Gelu approximate "none")
ACT_ATTRS = {a.onnx_op: dict(a.onnx_attrs) for a in ACTIVATION_TABLE.values() if a.onnx_op}
ONNX_ACT_DEFAULTS = {"HardSigmoid": {"alpha": 0.2, "beta": 0.5}, "Elu": {"alpha": 1.0},
                     "Gelu": {"approximate": "none"}}


def show_names(graph) -> None:
    """Give every node, tensor and initializer of an ONNX `graph` its name with control characters as
    pictures (source.visible_name), in place and consistently, before anything is read or named in a
    message: a line feed in a node name cannot forge an `error:` line."""
    from ..source import visible_name as shown

    def visible_name(name) -> str:  # protobuf gives bytes for a name that is not UTF-8
        return shown(name.decode("utf-8", "replace") if isinstance(name, bytes) else name)

    for node in graph.node:
        node.name = visible_name(node.name)
        node.input[:] = [visible_name(n) for n in node.input]
        node.output[:] = [visible_name(n) for n in node.output]
    for seq in (graph.input, graph.output, graph.initializer, graph.value_info):
        for item in seq:
            item.name = visible_name(item.name)


def node_attrs(node) -> dict:
    """An ONNX node's attributes as a dict of plain Python values (onnx.helper)."""
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def scope_of(name: str) -> tuple[str, ...]:
    """`/Mixed_5b/branch1x1/conv/Conv` -> ("Mixed_5b", "branch1x1", "conv")."""
    parts = [p for p in name.split("/") if p]
    return tuple(parts[:-1]) if len(parts) > 1 else ()


def short_float(x) -> float:
    """The shortest decimal that is the same float32 (ONNX stores float32: 1e-5, not 9.99999974e-06)."""
    f32 = np.float32(x)
    for digits in range(6, 18):
        text = f"{float(f32):.{digits}g}"
        if np.float32(float(text)) == f32:
            return float(text)
    return float(f32)


def head_name(name: str, k: int, op: str, taken: set[str]) -> str:
    """The graph's output name where it is an identifier (`output` -> `output_out`, flat.spec_name);
    an exporter's number (torch's `29`) becomes `logits` for a first output a dense layer gives,
    else `output_k`."""
    if re.fullmatch(r"[A-Za-z_]\w*", name):
        return spec_name(name, taken)
    return spec_name("logits" if k == 0 and op == "dense" else f"output_{k + 1}", taken)
