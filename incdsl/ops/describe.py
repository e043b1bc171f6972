"""One text per layer, used everywhere a layer is named by what it does: `incdsl summary`'s op
column, the Graphviz labels and the HTML viewer ('conv 3x3/2 valid bn relu')."""
from __future__ import annotations

from ..text import pad_text, shape_text
from .table import OPS


def describe(layer) -> str:
    """A short, human description of one layer (an `incdsl.ir.graph.Layer`): the op (or, for `act`,
    its function), kernel and stride, size, padding other than the op's default, dilation, ceil,
    rate, groups, slope, factor, LRN size, then its batch norm and activation:
    'conv 3x3/2 valid bn relu', 'maxpool 3x3/2 ceil', 'dense softmax'."""
    a, op = layer.attrs, layer.op
    parts = [op if op != "act" else a["fn"]]
    if "kernel" in a:
        k = shape_text(a["kernel"])
        s = a.get("stride")
        parts.append(k + (f"/{s[0] if s[0] == s[1] else shape_text(s)}" if s and s != (1, 1) else ""))
    if op == "adaptive_avgpool":
        parts.append(shape_text(a["size"]))
    pad_arg = OPS[op].arg("pad")
    if pad_arg is not None and a["pad"] != pad_arg.default:
        parts.append(pad_text(a["pad"]))
    if a.get("dilation", (1, 1)) != (1, 1):
        parts.append(f"dil {shape_text(a['dilation'])}")
    if a.get("ceil"):
        parts.append("ceil")
    if op in ("dropout", "drop_path"):
        parts.append(f"{a['rate']:g}")
    if a.get("groups", 1) != 1:
        parts.append(f"groups {a['groups']}")
    if op == "act" and a.get("slope") is not None:
        parts.append(f"slope {a['slope']:g}")
    if op == "scale":
        parts.append(f"{a['factor']:g}")
    if op == "lrn":
        parts.append(str(a["size"]))
    if a.get("bn"):
        parts.append("bn")
    if a.get("act") and op != "act":
        parts.append(a["act"])
    return " ".join(parts)
