"""Drop the layers that reach no output: a tap nobody reads, a branch a spec left dangling."""
from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, ancestors


def prune(g: Graph) -> Graph:
    """`g` less every layer no output reads, directly or through other layers, and the module
    calls whose output went with them; `g` itself is left as it is (and returned when every
    layer is used). The dropped names go to the new graph's `unused` (in definition order) and
    their places to `unused_spans`: the layer's own span, or, for a layer inside a module body,
    the outermost module call that wrote it, in the network's file (`incdsl check` warns there)."""
    needed = ancestors(g.layers, [o.node for o in g.outputs])
    if len(needed) == len(g.layers):
        return g
    dropped = [n for n in g.layers if n not in needed]
    calls = sorted(g.blocks, key=lambda b: -len(b.name))  # the outermost call wins below
    spans = dict(g.unused_spans)
    for n in dropped:
        outer = [b for b in calls if n.startswith(b.name + "/")]
        spans[n] = outer[-1].span if outer else g.layers[n].span
    # a graph pruned again (a copy with other outputs) keeps the first names
    return replace(g, layers={n: l for n, l in g.layers.items() if n in needed},
                   blocks=[b for b in g.blocks if b.output in needed], unused=g.unused + dropped,
                   unused_spans=spans)
