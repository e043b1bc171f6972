"""Shape inference: every layer's output shape, or a SpecError at the layer at fault."""
from __future__ import annotations

from ..errors import Note, SpecError
from ..graph import Graph
from ..ops import MAX_DIM, OPS, Count, Shape, ShapeError, infer


def infer_shapes(g: Graph) -> tuple[dict[str, Shape], dict[str, Count], dict[str, str]]:
    """Returns (shapes, counts, derivations); shape and count rules live together in ops.py."""
    shapes: dict[str, Shape] = {}
    counts: dict[str, Count] = {}
    whys: dict[str, str] = {}
    for name, layer in g.layers.items():
        ins = [shapes[i] for i in layer.inputs]
        try:
            out, why, cnt = infer(OPS[layer.op], layer.attrs, ins)
        except ShapeError as e:
            raise _explain(g, layer, e, shapes, whys) from None
        if any(d > MAX_DIM * MAX_DIM for d in out):
            raise SpecError(f"{layer.op} output {fmt(out)} is absurdly large", layer.span)
        shapes[name], counts[name] = out, cnt
        if why is not None:
            whys[name] = why
    return shapes, counts, whys


def fmt(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def _explain(g: Graph, layer, e: ShapeError, shapes, whys) -> SpecError:
    if e.culprit is None:
        ins = ", ".join(fmt(shapes[i]) if len(shapes[i]) > 1 else f"a vector of {shapes[i][0]}" for i in layer.inputs)
        return SpecError(f"{layer.op} {e.message}", layer.span, hint=e.hint,
                         label=f"input is {ins}" if ins else None,
                         notes=[Note(e.detail)] if e.detail else [])
    # concat/add: point at the branch that disagrees, and show where each got its size
    bad = layer.inputs[e.culprit]
    first = layer.inputs[0]
    origin_bad, origin_first = _origin(g, bad, shapes, whys), _origin(g, first, shapes, whys)
    notes = [Note(f"branch 1 gives {fmt(shapes[first])}", g.layers[first].span)]
    for branch, origin in ((e.culprit + 1, origin_bad), (1, origin_first)):
        if origin is not None:
            notes.append(Note(f"branch {branch} gets {fmt(shapes[origin][:2])} from {whys[origin]}",
                              g.layers[origin].span))
    span = g.layers[origin_bad].span if origin_bad else g.layers[bad].span
    return SpecError(e.message, span, notes=notes, hint=e.hint,
                     label=f"branch {e.culprit + 1} gives {fmt(shapes[bad])}")


def _origin(g: Graph, node: str, shapes, whys) -> str | None:
    """The nearest layer up the branch that changed the spatial size."""
    while g.layers[node].inputs:
        src = g.layers[node].inputs[0]
        if node in whys and shapes[node][:2] != shapes[src][:2]:
            return node
        node = src
    return None
