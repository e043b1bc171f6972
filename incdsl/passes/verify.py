"""The IR verifier: the invariants the graph and what the passes add must hold, checked on the
record (passes/record.py) after each pass when the pipeline runs with `verify` (the tests do;
INCDSL_VERIFY=1 turns it on anywhere).

A broken invariant is the compiler's bug, never the spec's: `IRError` names the pass after which it
broke, so the fault is found where it was made rather than in a backend three steps later. Not run
on every build: it re-normalizes every layer's arguments, which would cost a sweep of thousands
of variants more than the build itself.
"""
from __future__ import annotations

import re

from ..ir.graph import Graph, Layer, ancestors
from ..ir.window import resolve
from ..ops import OPS, REQUIRED, Count, normalize
from .outputs import inference_layers

_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


class IRError(Exception):
    """An invariant of the IR does not hold after pass `pass_name` ("elaborate" for the graph
    elaboration emitted): an internal error, not a fault of the spec."""

    def __init__(self, pass_name: str, problem: str):
        super().__init__(f"internal error: after pass '{pass_name}': {problem}")
        self.pass_name = pass_name
        self.problem = problem


def verify_graph(g: Graph) -> None:
    """The graph's own invariants; raises ValueError naming the first that fails: every id
    well-formed (`a/b_1/conv_2`: identifiers joined by '/') and the layer's own name; every op known,
    with each of its arguments present and normalized (`ops.normalize` leaves them as they are);
    inputs an ordered tuple (concat and add depend on the order) of layers defined before, as many
    as the op takes; outputs with distinct names reading existing layers; module calls with names of
    their own, returning existing layers."""
    if not isinstance(g, Graph):
        raise ValueError(f"the graph is a {type(g).__name__}, not a Graph")
    seen: set[str] = set()
    for name, layer in g.layers.items():
        if not isinstance(layer, Layer) or layer.name != name:
            raise ValueError(f"layers['{name}'] is {layer!r}, not the layer of that name")
        if not _ID.fullmatch(name):
            raise ValueError(f"layer id '{name}' is not identifiers joined by '/'")
        op = OPS.get(layer.op)
        if op is None:
            raise ValueError(f"layer '{name}' has an unknown op '{layer.op}'")
        _check_attrs(name, op, layer.attrs)
        if type(layer.inputs) is not tuple:
            raise ValueError(f"layer '{name}' has inputs {layer.inputs!r}, not an ordered tuple")
        n = len(layer.inputs)
        if (op.inputs is None and n < 1) or (op.inputs is not None and n != op.inputs):
            wanted = "one or more" if op.inputs is None else str(op.inputs)
            raise ValueError(f"layer '{name}' ({layer.op}) has {n} inputs, not {wanted}")
        for src in layer.inputs:
            if src not in seen:
                where = "comes after it" if src in g.layers else "does not exist"
                raise ValueError(f"layer '{name}' reads '{src}', which {where}")
        seen.add(name)
    names: set[str] = set()
    for o in g.outputs:
        if o.node not in g.layers:
            raise ValueError(f"output '{o.name}' reads '{o.node}', which does not exist")
        if o.name in names:
            raise ValueError(f"two outputs are called '{o.name}'")
        names.add(o.name)
    if not names:
        raise ValueError("the graph has no output")
    calls: set[str] = set()
    for b in g.blocks:
        if b.output not in g.layers:
            raise ValueError(f"module call '{b.name}' returns '{b.output}', which does not exist")
        if b.name in g.layers or b.name in calls:  # a call's name is the prefix of its layers' ids
            raise ValueError(f"module call '{b.name}' shares its name with another layer or call")
        calls.add(b.name)


def _check_attrs(name: str, op, attrs: dict) -> None:
    expected = [a.name for a in op.args]
    if sorted(attrs) != sorted(expected):
        missing = sorted(set(expected) - set(attrs))
        extra = sorted(set(attrs) - set(expected))
        raise ValueError(
            f"layer '{name}' ({op.name}) has "
            + "; ".join(
                ([f"no {', '.join(missing)}"] if missing else [])
                + ([f"unknown {', '.join(extra)}"] if extra else [])
            )
        )
    for k, v in attrs.items():
        if v is REQUIRED:
            raise ValueError(f"layer '{name}' ({op.name}) has no value for '{k}'")
    try:
        again = normalize(op, attrs)
    except ValueError as e:
        raise ValueError(f"layer '{name}' ({op.name}) has a bad argument: {e}") from None
    if again != attrs:
        bad = next(k for k in attrs if again[k] != attrs[k])
        raise ValueError(
            f"layer '{name}' ({op.name}) has '{bad}' = {attrs[bad]!r}, not normalized ({again[bad]!r})")


def _elaborated(rec) -> None:
    """The graph elaboration emitted; once prune has made `graph` (the same layers or fewer, and
    the same objects), that one is checked instead."""
    if rec.graph is None:
        verify_graph(rec.elaborated)


def _graph(rec) -> None:
    """The graph the passes made: valid as any graph, and every layer of it reaches an output."""
    verify_graph(rec.graph)
    g = rec.graph
    used = ancestors(g.layers, [o.node for o in g.outputs])
    if len(used) != len(g.layers):
        raise ValueError(f"layer '{next(n for n in g.layers if n not in used)}' reaches no output")
    if any(n in g.layers for n in g.unused):
        raise ValueError("a layer named unused is still in the graph")


def _per_layer(what: str, values: dict, layers: dict) -> None:
    if values.keys() != layers.keys():
        odd = next(iter((values.keys() - layers.keys()) or (layers.keys() - values.keys())))
        state = "no layer" if odd in values else f"no {what}"
        raise ValueError(f"'{odd}' has {state}: {what} and layers disagree")


def _rule(rec, name: str):
    """Layer `name`'s rule re-applied to the shapes its inputs hold now (None when an input has
    no shape, which `_per_layer` reports)."""
    layer = rec.graph.layers[name]
    if any(i not in rec.shapes for i in layer.inputs):
        return None
    return OPS[layer.op].rule(layer.attrs, [rec.shapes[i] for i in layer.inputs])


def _shapes(rec) -> None:
    """Every layer has a shape of positive ints, and it is what its op's rule gives for the shapes
    of its inputs: a pass that changed a shape, an attribute or an input order after the shape
    pass is caught here."""
    _per_layer("shape", rec.shapes, rec.graph.layers)
    for n, s in rec.shapes.items():
        if type(s) is not tuple or not s or not all(type(d) is int and d >= 1 for d in s):
            raise ValueError(f"layer '{n}' has shape {s!r}, not a tuple of positive ints")
        rule = _rule(rec, n)
        if rule is not None and rule.out != s:
            raise ValueError(f"layer '{n}' has shape {s}, but its rule gives {rule.out} for its inputs")


def _counts(rec) -> None:
    """Every layer's count is the one derived from its rule's weight shapes and MACs."""
    _per_layer("count", rec.counts, rec.graph.layers)
    for n, c in rec.counts.items():
        if not isinstance(c, Count) or not all(type(x) is int and x >= 0 for x in c):
            raise ValueError(f"layer '{n}' has count {c!r}, not a Count of non-negative ints")
        rule = _rule(rec, n)
        if rule is not None and rule.count != c:
            raise ValueError(
                f"layer '{n}' has count {tuple(c)}, but its rule's weights give {tuple(rule.count)}")


def _derivations(rec) -> None:
    for n, why in rec.derivations.items():
        if n not in rec.graph.layers or not isinstance(why, str):
            raise ValueError(f"derivation of '{n}' is {why!r}: not text about a layer of the graph")


def _inference(rec) -> None:
    g = rec.graph
    if not isinstance(rec.inference, frozenset):
        raise ValueError(f"the inference set is a {type(rec.inference).__name__}, not a frozenset")
    if not rec.inference <= g.layers.keys():
        raise ValueError("the inference set names layers that are not in the graph")
    for o in g.outputs:
        if not o.train_only and o.node not in rec.inference:
            raise ValueError(
                f"output '{o.name}' is not training-only but '{o.node}' is not kept for inference")
    kept = inference_layers(g)
    if rec.inference != kept:
        odd = sorted(rec.inference ^ kept)[0]
        raise ValueError(f"the inference set {'keeps' if odd in rec.inference else 'drops'} '{odd}', "
                         f"which the inference outputs {'do not read' if odd in rec.inference else 'read'}")


def _pads(rec) -> None:
    """Every windowed layer has pads, and the floor rule over its input padded by them (ceil
    overhang included) gives the output the shape pass inferred: what an ONNX or Keras runtime
    with those pads computes."""
    g = rec.graph
    windowed = {n for n, lay in g.layers.items() if "kernel" in lay.attrs}
    if rec.pads.keys() != windowed:
        odd = next(iter(rec.pads.keys() ^ windowed))
        raise ValueError(f"'{odd}' " + ("has pads but no window" if odd in rec.pads
                                        else "has a window but no pads"))
    for n, p in rec.pads.items():
        a = g.layers[n].attrs
        if isinstance(a["pad"], tuple) and p.real != a["pad"]:
            raise ValueError(f"layer '{n}' has pads {p.real}, but its pad argument says {a['pad']}")
        if a["pad"] == "same" and p != resolve(a["pad"], a["kernel"], a["stride"], a.get("dilation", (1, 1)),
                                               rec.shapes[g.layers[n].inputs[0]], rec.shapes[n]):
            raise ValueError(f"layer '{n}' has pads {p.real}, not TF's same split (the odd pixel at the end)")
        size, out = rec.shapes[g.layers[n].inputs[0]][:2], rec.shapes[n][:2]
        dilation = a.get("dilation", (1, 1))
        for axis, lo, hi in ((0, p.top, p.bottom + p.over_bottom), (1, p.left, p.right + p.over_right)):
            if min(lo, hi) < 0:
                raise ValueError(f"layer '{n}' has negative pads {p}")
            extent = dilation[axis] * (a["kernel"][axis] - 1) + 1
            if (size[axis] + lo + hi - extent) // a["stride"][axis] + 1 != out[axis]:
                raise ValueError(f"layer '{n}': pads {p} do not give the inferred output {out}")


# field of the record -> its check; a field without one (a pass added later) is checked to be set
CHECKS = {"elaborated": _elaborated, "graph": _graph, "shapes": _shapes, "counts": _counts,
          "derivations": _derivations, "inference": _inference, "pads": _pads}


def verify_after(rec, pass_name: str, facts, added: tuple[str, ...] = ()) -> None:
    """Check the invariants of every field named in `facts` (what elaboration and the passes so
    far established, in that order: the graphs' own invariants first) on `rec`, the `Record` the
    pipeline has built after pass `pass_name`; and that the pass set the fields it `added`.
    Raises `IRError` naming the pass."""
    for fact in added:
        if getattr(rec, fact, None) is None:
            raise IRError(pass_name, f"the pass promised '{fact}' but did not set it")
    try:
        for fact in facts:
            check = CHECKS.get(fact)
            if check is not None:
                check(rec)
            elif getattr(rec, fact, None) is None:
                raise ValueError(f"'{fact}' is gone")
    except ValueError as e:
        raise IRError(pass_name, str(e)) from None
