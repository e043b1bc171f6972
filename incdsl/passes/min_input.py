"""The smallest input a network accepts: the shape rules of ops.py run over the graph at other
input sizes (no re-elaboration), for the note under a "window does not fit" error."""
from __future__ import annotations

from ..ir.graph import Graph
from ..ops import OPS, ShapeError, infer

SCAN = 512       # sides tried one by one: exact even where fitting is not monotonic in the size
LIMIT = 1 << 16  # beyond the scan, bisection up to this side


def fits(g: Graph, h: int, w: int) -> bool:
    """Does every layer's shape rule accept an h x w input (channels as the spec says)?"""
    shapes = {}
    for name, layer in g.layers.items():
        if layer.op == "input":
            shapes[name] = (h, w, layer.attrs["channels"])
            continue
        try:
            shapes[name] = infer(OPS[layer.op], layer.attrs, [shapes[i] for i in layer.inputs])[0]
        except ShapeError:
            return False
    return True


def smallest_input(g: Graph) -> int | None:
    """The smallest side s such that an s x s input passes every shape rule, or None when none up
    to LIMIT does. Sides up to SCAN are tried in order; beyond, fitting is taken to be monotonic
    (a larger input never makes a window stop fitting) and the side is bisected."""
    for s in range(1, SCAN + 1):
        if fits(g, s, s):
            return s
    lo, hi = SCAN, SCAN * 2
    while not fits(g, hi, hi):
        lo, hi = hi, hi * 2
        if hi > LIMIT:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(g, mid, mid) else (mid, hi)
    return hi
