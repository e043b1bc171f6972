"""Layer names: every node of the graph gets a hierarchical id (`inception3a/b2/conv_1`).

A layer the spec names keeps its name under its scope's path; an unnamed one is called after its op
and a counter per (path, op): `conv_1`, `conv_2`, ...; branches of a concat or add are `b1`, `b2`, ...
Module calls take names too (the prefix of the layers of their bodies), so a layer and a call never
share one. incdsl import (importers/render.py) simulates these rules to name the spec it writes.
"""
from __future__ import annotations

from ..errors import Note, Span, SpecError
from ..ir.graph import Graph
from ..ops import ALIASES, OPS


class Names:
    """The names taken in one elaboration: the graph's layers and the module calls (`blocks`: a
    call's name -> its span, for duplicate-name errors), and the counters of unnamed ones."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.counters: dict[tuple, int] = {}
        self.blocks: dict[str, Span] = {}

    def fresh(self, path: tuple, base: str) -> int:
        """The next number for an unnamed `base` (an op, a module or `b` for a branch) under `path`."""
        key = (path, base)
        n = self.counters.get(key, 0) + 1
        self.counters[key] = n
        return n

    def id(self, path: tuple, name: str | None, base: str, span: Span) -> str:
        """The id of a new node: `path/name` when the spec names it (SpecError at `span` if taken),
        else the first free `path/base_N`."""
        if name is not None:
            node = "/".join(path + (name,))
            self.check_free(node, span)
            return node
        while True:
            node = "/".join(path + (f"{base}_{self.fresh(path, base)}",))
            if not self.taken(node):
                return node

    def taken(self, node: str) -> bool:
        """Is `node` the id of a layer or the name of a module call already?"""
        return node in self.graph.layers or node in self.blocks

    def check_free(self, node: str, span: Span, shown: str | None = None):
        """SpecError at `span` (with a note at the first use) if `node` is taken; the message
        names it as `shown` (default: the whole id)."""
        if self.taken(node):
            g = self.graph
            first = g.layers[node].span if node in g.layers else self.blocks[node]
            raise SpecError(f"the name '{shown or node}' is already taken", span,
                            notes=[Note("first used here", first)] if first else [],
                            hint="give this one another name")


def check_not_op(name: str, span: Span):
    """A value named after an op would hide the bare op (`gap`, `relu`) from every later chain:
    SpecError at `span`. (A module call may share its module's name: `reduction_a =
    reduction_a(...)`; the call with parentheses still reaches the module.)"""
    if name in OPS or name in ALIASES or name == "identity":
        raise SpecError(f"'{name}' is an op; a value of that name would hide it", span,
                        hint=f"call it something else, e.g. '{name}_out'")


def output_name(end: str, g: Graph) -> str:
    """The implicit output's name: its node, or, when the last statement is a module call
    (`r2 = blk(8)`, node `r2/relu_1`), the call's name `r2`: Keras and ONNX names cannot hold '/'
    (keras.layers.Layer refuses it), and the call is what the spec names."""
    name = end.split("/", 1)[0]
    return name if name not in {o.name for o in g.outputs} else end.replace("/", "_")
