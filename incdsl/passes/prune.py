"""Drop the layers that reach no output: a tap nobody reads, a branch a spec left dangling."""
from __future__ import annotations

from ..graph import Graph, ancestors


def prune(g: Graph) -> None:
    """Remove from `g` every layer no output reads, directly or through other layers, and the
    module calls whose output went with them. Their names go to `g.unused` (in definition order)
    and their places to `g.unused_spans`: the layer's own span, or, for a layer inside a module
    body, the outermost module call that wrote it, in the network's file (`incdsl check` warns
    there). Leaves `g` as it is when every layer is used."""
    needed = ancestors(g.layers, [o.node for o in g.outputs])
    if len(needed) == len(g.layers):
        return
    dropped = [n for n in g.layers if n not in needed]
    g.unused = g.unused + dropped  # a graph pruned again (a copy with other outputs) keeps the first names
    calls = sorted(g.blocks, key=lambda b: -len(b.name))  # the outermost call wins below
    for n in dropped:
        outer = [b for b in calls if n.startswith(b.name + "/")]
        g.unused_spans[n] = outer[-1].span if outer else g.layers[n].span
    g.layers = {n: l for n, l in g.layers.items() if n in needed}
    g.blocks = [b for b in g.blocks if b.output in needed]
