"""The flat imported graph: what the Keras and ONNX readers produce and the spec writer reads.

One `Node` per incdsl layer, in topological order, with the op's normalized arguments (ops.py),
NHWC weights in the interchange format of incdsl/weights/arrays.py, and what the source called it. The
readers translate the source's layers one for one; `fuse` then folds the chains a person writes
as one layer: conv -> batch norm -> activation becomes `conv(..., bn=true, act=relu)`, zero
padding in front of a conv becomes its `pad`, dense -> activation becomes `dense(..., act=)`.
Shapes are inferred with the op table as nodes are added, so a source whose layer disagrees with
incdsl's rule is caught at that layer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from ..ops import ALIASES, OPS, Shape, ShapeError, infer, normalize
from ..ops.groups import CONVS, WEIGHTED
from ..text import shape_text


@dataclass
class Node:
    """One imported layer as an incdsl op: its normalized arguments, its inputs by name and its weights (NHWC,
    Keras layouts)."""
    name: str                      # unique id: the source's name for it
    op: str                        # an incdsl op
    attrs: dict                    # normalized arguments
    inputs: list[str]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    path: tuple[str, ...] = ()     # the source name split into scopes; () for an automatic name
    want: str | None = None        # the exact IR name to give back (models incdsl compiled)
    what: str = ""                 # how the source calls it, for messages: "conv2d_5 (Conv2D)"


# the grammar's keywords (grammar.lark) and the values an argument can name: never a layer's name
KEYWORDS = frozenset({"module", "network", "use", "defaults", "variant", "let", "input", "output",
                      "train_output",
                      "if", "elif", "else", "repeat", "as", "in", "identity", "true", "false", "none", "and",
                      "or", "not",
                      "concat", "add", "multiply"})


def reserved(name: str) -> bool:
    """True for a word a spec cannot use as a value's name: a keyword, an op or an op alias."""
    return name in KEYWORDS or name in OPS or name in ALIASES


def spec_name(name: str, taken: set[str] | frozenset = frozenset()) -> str:
    """A name the spec can write for the source's `name`, deterministically: other characters
    become `_`, a leading digit gets `n_`, a keyword or op gets `_out` (`dense` -> `dense_out`,
    `output` -> `output_out`), and a name in `taken` gets `_2`, `_3`, ..."""
    out = re.sub(r"\W", "_", name) or "value"
    if out[0].isdigit():
        out = f"n_{out}"
    if reserved(out):
        out = f"{out}_out"
    base, k = out, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    return out


@dataclass(frozen=True)
class Head:
    """One output of the imported model: the node it reads, whether it is training-only, its loss weight."""
    name: str
    node: str
    train_only: bool = False
    loss_weight: float = 1.0


class Flat:
    """The imported network. `add` checks and shapes each node as it comes (NHWC, batch left out)."""

    def __init__(self, name: str, source: str):
        self.name, self.source = name, source
        self.nodes: dict[str, Node] = {}
        self.shapes: dict[str, Shape] = {}
        self.heads: list[Head] = []
        self.params: dict = {}       # network parameters to declare (models incdsl compiled)

    def add(self, node: Node, shape: Shape | None = None) -> Node:
        """Add `node` (raw arguments in node.attrs are normalized here). `shape`: what the source
        says the output is; a disagreement with incdsl's shape rule is an error at this node."""
        if node.name in self.nodes:
            raise SpecError(f"{self.source}: two layers are called '{node.name}'")
        try:
            node.attrs = normalize(OPS[node.op], node.attrs)
            out, _, _ = infer(OPS[node.op], node.attrs, [self.shapes[i] for i in node.inputs])
        except (ValueError, ShapeError) as e:
            raise SpecError(f"{self.source}: layer {node.what or node.name} maps to {node.op} but "
                            f"{getattr(e, 'message', e)}") from None
        if shape is not None and tuple(shape) != tuple(out):
            raise SpecError(
                f"{self.source}: layer {node.what or node.name} gives {shape_text(shape)}; as incdsl's "
                            f"{node.op} it would give {shape_text(out)}",
                            hint="its semantics differ from the op's (padding or rounding rule)")
        self.nodes[node.name] = node
        self.shapes[node.name] = tuple(out)
        return node

    def consumers(self) -> dict[str, list[str]]:
        """Each node's readers by name (heads as '<output NAME>'), to find forks and joins."""
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            for i in node.inputs:
                out[i].append(node.name)
        for h in self.heads:
            out[h.node].append(f"<output {h.name}>")
        return out

    def drop(self, name: str, into: str, users: dict[str, list[str]] | None = None) -> None:
        """Remove node `name`, whose consumers now read `into` (fusion, pass-through layers).
        `users` (from `consumers()`), when given, is kept up to date and spares a scan of every
        node: `fuse` drops thousands of nodes of a long chain, and a scan each made it quadratic."""
        readers = users.pop(
            name) if users is not None else [n.name for n in self.nodes.values() if name in n.inputs]
        del self.nodes[name]
        del self.shapes[name]
        for r in dict.fromkeys(readers):
            if r in self.nodes:
                self.nodes[r].inputs = [into if i == name else i for i in self.nodes[r].inputs]
        if users is not None:
            users[into] = [u for u in users.get(into, []) if u != name] + readers
        if any(h.node == name for h in self.heads):
            self.heads = [Head(h.name, into if h.node == name else h.node, h.train_only, h.loss_weight)
                          for h in self.heads]


def fuse(flat: Flat) -> None:
    """Fold the chains one incdsl layer writes: zeropad -> conv (or count_pad avgpool), conv ->
    bn -> act, dense -> act. Only a node read by its successor alone is folded, so no value the
    network uses elsewhere disappears."""
    users = flat.consumers()  # kept up to date by each fold (Flat.drop): linear in the nodes
    changed = True
    while changed:
        changed = False
        for node in list(flat.nodes.values()):
            if node.name not in flat.nodes or not node.inputs:
                continue
            src = flat.nodes[node.inputs[0]] if len(node.inputs) == 1 else None
            if src is None or users[src.name] != [node.name] or not _same_scope(src, node):
                continue
            if _fold(flat, src, node, users):
                changed = True


def _same_scope(a: Node, b: Node) -> bool:
    """Models incdsl compiled: a node's parts are named `x-bn`, `x-act`, `x-pad`; never fold two
    layers of the spec into one."""
    return a.want is None or b.want is None or a.want == b.want


def _fold(flat: Flat, src: Node, node: Node, users: dict[str, list[str]]) -> bool:
    a = src.attrs
    if node.op == "bn" and src.op in CONVS and not a["bn"] and a["act"] is None:
        raw = {k: v for k, v in a.items()}
        raw.update(bn=True, bn_scale=node.attrs["scale"], bn_eps=node.attrs["eps"],
                   bn_momentum=node.attrs["momentum"])
        src.attrs = normalize(OPS[src.op], raw)
        src.weights.update(node.weights)
    elif node.op == "act" and src.op in WEIGHTED and a["act"] is None and node.attrs["slope"] is None:
        src.attrs = normalize(OPS[src.op], {**a, "act": node.attrs["fn"]})
    elif src.op == "zeropad" and node.op == "conv" and node.attrs["pad"] == "valid":
        node.attrs = normalize(OPS["conv"], {**node.attrs, "pad": src.attrs["pad"]})
        node.inputs = list(src.inputs)
        _merge_names(src, node)
        flat.drop(src.name, src.inputs[0], users)
        return True
    elif (src.op == "zeropad" and node.op == "avgpool" and node.attrs["pad"] == "valid"
          and not node.attrs["ceil"]):
        node.attrs = normalize(OPS["avgpool"], {**node.attrs, "pad": src.attrs["pad"], "count_pad": True})
        node.inputs = list(src.inputs)
        _merge_names(src, node)
        flat.drop(src.name, src.inputs[0], users)
        return True
    else:
        return False
    _merge_names(node, src)
    flat.drop(node.name, src.name, users)
    return True


def _merge_names(gone: Node, kept: Node) -> None:
    """The kept node's path is what both names share (`/conv1/conv` and `/conv1` give `conv1`)."""
    if gone.path and kept.path:
        common = []
        for x, y in zip(gone.path, kept.path):
            if x != y:
                break
            common.append(x)
        kept.path = tuple(common)
    elif gone.path and not kept.path:
        kept.path = gone.path
    kept.what = kept.what or gone.what
