"""The graph IR: one node per layer, named by its place in the module hierarchy.

The networkx graph holds each node's `Layer` under the attribute "layer"; edges run from
producer to consumer. Input order (which matters for concat) is the `inputs` tuple of the
consuming layer, never the edge order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from ..errors import Span


@dataclass(frozen=True, slots=True)
class Layer:
    """One node of the graph: an op (a name in `incdsl.ops.OPS`, e.g. "conv") with its
    checked arguments, the names of the layers it reads (in order; concat and add depend on it),
    and the spec place that wrote it (None for a layer the compiler made). Shapes are not stored
    here: `Network.shapes` holds each layer's output shape (H, W, C), NHWC with the batch left out.
    """
    name: str  # hierarchical id, e.g. "inception3a/b2/conv_1"
    op: str
    attrs: dict
    inputs: tuple[str, ...]
    span: Span | None
    module: str | None = None  # the module whose body wrote it


@dataclass(frozen=True, slots=True)
class Block:
    """One module call: the group of layers whose names start with `name/`."""
    name: str
    module: str
    output: str  # the node the call returns
    span: Span


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One `output` line of a spec: the output's name, the layer it reads, whether it is a
    training-only head (an auxiliary classifier, dropped by `--inference`), and its weight in the
    training loss (0.3 for GoogLeNet's aux heads, paper Section 5; 0.4 for Inception-v3's)."""
    name: str
    node: str
    train_only: bool
    loss_weight: float
    span: Span | None


@dataclass
class Graph:
    """What elaboration emits: the layers in topological (definition) order, and the outputs."""
    name: str
    params: dict  # network parameter values after overrides
    layers: dict[str, Layer] = field(default_factory=dict)
    outputs: list[OutputSpec] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    variants: dict[str, dict] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)  # layers that reach no output (the prune pass drops them)
    # where each unused layer is written in the network's file: its own span, or its module call's
    unused_spans: dict[str, Span | None] = field(default_factory=dict)

    @cached_property
    def g(self):
        """The same layers as a networkx DiGraph, built on first use. The passes walk `layers`,
        which elaboration emits in topological order; importing networkx only when a graph
        algorithm is wanted keeps every command's start-up 150 ms shorter."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for layer in self.layers.values():
            g.add_node(layer.name, layer=layer)
            for i, src in enumerate(layer.inputs):
                g.add_edge(src, layer.name, port=i)
        return g


def ancestors(layers: dict, starts) -> set[str]:
    """The names of `starts` and of every layer they read, directly or through other layers.
    `layers` maps a name to anything with `.inputs` (IR layers, or the importer's nodes)."""
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(layers[n].inputs)
    return seen
