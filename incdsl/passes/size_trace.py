"""Where a too-small map lost its size: the notes of a "window does not fit" error.

A window that does not fit its input (`avgpool(7)` on a 6x6 map) is rarely the layer at fault:
the size went earlier, a little at each stride-2 layer. The usual cause is a pool left at its
default padding (`valid`, floor rounding: 112 -> 55) where the paper's network pads (`same`:
112 -> 56; Caffe's ceil mode agrees). So the error shows the layers that shrank the map on the
way to the failing layer, each with its arithmetic, and the sizes the same network would have
with `pad=same` pools: the first layer where the two part is where to look.
"""
from __future__ import annotations

from ..errors import Note
from ..ir.graph import Graph
from ..ops import OPS, ShapeError

POOLS = ("maxpool", "avgpool")
MAX_STEPS = 4  # shrinking layers listed with their arithmetic, the last ones before the failure (one screen)


def _hw(shape) -> str:
    return f"{shape[0]}x{shape[1]}"


def _path_to(g: Graph, node: str) -> list[str]:
    """The layers from the input to `node` along first inputs (the trunk, through module calls)."""
    path = [node]
    while g.layers[path[-1]].inputs:
        path.append(g.layers[path[-1]].inputs[0])
    return path[::-1]


def _same_pools(g: Graph) -> dict[str, dict]:
    """The pools that pad `valid` without ceil mode, with the attributes they would have as pad=same."""
    return {n: {**l.attrs, "pad": "same", "ceil": False} for n, l in g.layers.items()
            if l.op in POOLS and l.attrs.get("pad") == "valid" and not l.attrs.get("ceil")
            and l.attrs.get("stride", (1, 1)) != (1, 1)}


def _shapes_with(g: Graph, changed: dict[str, dict], upto: str) -> dict | None:
    """Every layer's shape up to and including `upto` with `changed` attributes, or None where a
    layer before it does not fit either."""
    shapes = {}
    for name, layer in g.layers.items():
        try:
            shapes[name] = OPS[layer.op].rule(changed.get(name, layer.attrs),
                                              [shapes[i] for i in layer.inputs]).out
        except (ShapeError, KeyError):
            return shapes if name == upto else None
        if name == upto:
            return shapes
    return shapes


def size_notes(g: Graph, failing: str, shapes: dict, whys: dict) -> tuple[list[Note], str | None]:
    """Notes for a layer (`failing`) whose window does not fit its input: the shrinking layers on
    its trunk with their arithmetic (`whys`, from shape inference), and the comparison with
    `pad=same` pools (first layer where the sizes part, and the size `failing` would get). Returns
    the notes and a hint (None when the pools are not the cause: the default hint stands)."""
    path = _path_to(g, g.layers[failing].inputs[0]) if g.layers[failing].inputs else []
    steps = [(prev, n) for prev, n in zip(path, path[1:])
             if len(shapes[n]) == 3 and shapes[n][:2] != shapes[prev][:2]]
    notes = []
    if steps:
        shown = steps[-MAX_STEPS:]
        more = f" (the last {len(shown)} steps below)" if len(steps) > len(shown) else ""
        route = " -> ".join([_hw(shapes[steps[0][0]])] + [_hw(shapes[n]) for _, n in steps])
        notes.append(Note(f"where the size went: {route}{more}"))
        for prev, n in shown:
            why = f": {whys[n]}" if n in whys else ""
            notes.append(Note(f"{n} ({g.layers[n].op}) {_hw(shapes[prev])} -> {_hw(shapes[n])}{why}",
                              g.layers[n].span))
    # the failing layer keeps its own padding: made `same` it would always "fit", which says nothing
    # about the pools before it (a GoogLeNet at 100x100 is too small whatever its pools do)
    changed = {n: a for n, a in _same_pools(g).items() if n != failing}
    if not changed:
        return notes, None
    other = _shapes_with(g, changed, failing)
    if other is None:
        return notes, None
    first = next((n for n in path if n in other and other[n][:2] != shapes[n][:2]), None)
    if first is None:
        return notes, None
    fits = failing in other
    inp = g.layers[failing].inputs[0]
    notes.append(
        Note(
            f"with pad=same pools this network would differ first at {first}: {_hw(other[first])} "
            f"instead of {_hw(shapes[first])}, and this {g.layers[failing].op} would get {_hw(other[inp])}"
            + (" and fit" if fits else ""),
            g.layers[first].span,
        )
    )
    if not fits:
        return notes, None
    pools = sorted(n for n in changed if n in path)
    return notes, (
        f"the pools shrink the map ({', '.join(pools[:4])}{', ...' if len(pools) > 4 else ''} pad valid, "
                   f"rounding down): give them pad=same (or ceil=true, as Caffe's GoogLeNet); "
                   f"a larger input or a smaller window here would only hide the cause")
