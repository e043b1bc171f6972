"""Labels and attribute text for the Graphviz drawings (incdsl/backends/dot.py): colours per op
family, compact numbers, HTML-like labels and DOT quoting."""
from __future__ import annotations

import html
import re

from ..ops import ALIASES, OPS, describe
from ..ops.groups import CONVS

FONT = "Helvetica"

# Fill colours per op family (light, so black text stays readable; the families a reader scans for).
FAMILY_COLOURS = {
    "conv": "#cfe2f3",    # conv, dwconv, sepconv
    "pool": "#fde3c3",    # maxpool, avgpool, adaptive_avgpool, gap, gmp
    "dense": "#d5ecd0",
    "merge": "#fff2a8",   # concat, add, scale
    "norm": "#e6d8f0",    # bn, lrn
    "io": "#d9d9d9",      # input
    "other": "#ffffff",   # dropout, flatten, act, zeropad
}
FAMILIES = {
    **{op: "conv" for op in sorted(CONVS)},
    "maxpool": "pool", "avgpool": "pool", "adaptive_avgpool": "pool", "gap": "pool", "gmp": "pool",
    "dense": "dense", "concat": "merge", "add": "merge", "multiply": "merge", "scale": "merge",
    "bn": "norm", "lrn": "norm", "input": "io",
}
BOX_COLOUR = "#b7cbe8"                                  # a collapsed module call
CLUSTER_COLOURS = ("#f3f6fb", "#e8eef7", "#dde6f2")     # by nesting level, so nested calls stand out
TRAIN_COLOUR = "#8a8a8a"


# --- labels -----------------------------------------------------------------------------------

def si(n: int) -> str:
    """163696 -> '164K', 1591044096 -> '1.59G': three significant figures, for labels."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.3g}{unit}" if v < 1000 else f"{v:.0f}{unit}"
    return str(n)


def op_text(layer) -> str:
    """The op as `incdsl summary` writes it: 'conv 3x3/2 valid bn relu', 'conv 1x1' only when the
    conv has neither batch norm nor an activation, 'maxpool 3x3/2 ceil', 'dense softmax'."""
    return describe(layer)


def _size(v) -> str:
    return f"{v[0]}x{v[1]}"


def given_name(name: str) -> str | None:
    """The layer's own name when the spec gave one (`conv1`), None for generated ones (`conv_2`, `b3`)."""
    last = name.rsplit("/", 1)[-1]
    m = re.fullmatch(r"(.+)_\d+", last)
    if (m and (m.group(1) in OPS or m.group(1) in ALIASES)) or last in OPS:
        return None
    return last


def html_label(lines: list[tuple[str, str]]) -> str:
    """An HTML-like label from (style, text) lines; style is 'b' (bold), 'small' or ''."""
    out = []
    for style, text in lines:
        if not text:
            continue  # Graphviz rejects an empty <font></font>
        t = html.escape(text)
        if style == "b":
            t = f"<b>{t}</b>"
        elif style == "small":
            t = f'<font point-size="9" color="#555555">{t}</font>'
        out.append(t)
    return "<" + "<br/>".join(out) + ">"


def quoted(s: str) -> str:
    """A DOT quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _pairs(kw: dict) -> list[str]:
    """`key="value"` items, HTML-like labels (`<...>`) unquoted; None values left out."""
    return [f"{k}={v}" if isinstance(v, str) and v.startswith("<") else f"{k}={quoted(str(v))}"
            for k, v in kw.items() if v is not None]


def attr_list(**kw) -> str:
    """An attribute list, for a node or an edge."""
    return "[" + ", ".join(_pairs(kw)) + "]"


def attr_statements(**kw) -> str:
    """Attribute statements, for a cluster (so that parsers see them as the cluster's own)."""
    return " ".join(p + ";" for p in _pairs(kw))


