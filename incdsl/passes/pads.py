"""Resolve pads: each conv's and pool's explicit padding plus its ceil-mode overhang, worked out once
(incdsl/ir/window.py) so that the backends translate them and never redo the arithmetic."""
from __future__ import annotations

from ..ir import window
from ..ir.graph import Graph
from ..ir.window import Pads
from ..ops import Shape


def resolve_pads(graph: Graph, shapes: dict[str, Shape]) -> dict[str, Pads]:
    """Needs: the graph and infer-shapes' `shapes`; adds the record's `pads` (`Network.pads`),
    layer name -> `Pads` (pixels: top, bottom, left, right and ceil overhang) for every layer with
    a window (conv, dwconv, sepconv, maxpool, avgpool); leaves the graph untouched."""
    resolve, one = window.resolve, (1, 1)
    return {name: resolve(a["pad"], a["kernel"], a["stride"], a.get("dilation", one), shapes[layer.inputs[0]],
                          shapes[name])
            for name, layer in graph.layers.items() if "kernel" in (a := layer.attrs)}
