"""Which layers the inference graph keeps: those that feed an output that is not training-only."""
from __future__ import annotations

from ..graph import Graph


def inference_layers(g: Graph) -> set[str]:
    keep: set[str] = set()
    stack = [o.node for o in g.outputs if not o.train_only]
    while stack:
        n = stack.pop()
        if n not in keep:
            keep.add(n)
            stack.extend(g.layers[n].inputs)
    return keep
