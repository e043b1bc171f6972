"""The checked network: the graph IR plus what the passes computed, and the public API on it."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .elaborate import elaborate, network_params
from .graph import Graph, Layer
from .ops import Count, Shape
from .parse import Program, load_program
from .passes import count as count_pass
from .passes import inference_layers, infer_shapes
from .passes.count import total


class Spec:
    """A parsed spec file. Parse once, then `build` as many variants as you like."""

    def __init__(self, path: str | Path, network: str | None = None):
        self.path = str(path)
        self.network_name = network
        self.program: Program = load_program(path)

    @cached_property
    def params(self) -> dict:
        """The network's parameters with their default values."""
        return network_params(self.program, self.network_name)

    @cached_property
    def variants(self) -> dict[str, dict]:
        return self.build().graph.variants

    def build(self, **overrides) -> "Network":
        g = elaborate(self.program, self.network_name, overrides)
        return Network(g, self.path)


def load(path: str | Path, network: str | None = None, **params) -> "Network":
    """Parse, elaborate and check a spec: `incdsl.load("specs/googlenet.inc", width=0.5)`."""
    return Spec(path, network).build(**params)


@dataclass(frozen=True)
class Head:
    name: str
    node: str
    shape: Shape
    train_only: bool
    loss_weight: float


class Network:
    def __init__(self, graph: Graph, path: str = "<memory>"):
        self.graph = graph
        self.path = path
        self.shapes, self.counts, self.derivations = infer_shapes(graph)
        self.inference = inference_layers(graph)

    # -- what it is -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def params(self) -> dict:
        return self.graph.params

    @property
    def layers(self) -> dict[str, Layer]:
        return self.graph.layers

    @property
    def nx(self):
        """The graph IR as a networkx DiGraph (node attribute "layer"; edge attribute "port")."""
        return self.graph.g

    @property
    def input_shape(self) -> Shape:
        return self.shapes["input"]

    @property
    def heads(self) -> list[Head]:
        return [Head(o.name, o.node, self.shapes[o.node], o.train_only, o.loss_weight) for o in self.graph.outputs]

    def is_train_only(self, name: str) -> bool:
        return name not in self.inference

    # -- counts --------------------------------------------------------------------------
    def total(self, inference: bool = False) -> Count:
        return total(self.counts, self.inference if inference else None)

    def group_counts(self, depth: int | None = None) -> dict[str, Count]:
        return count_pass(self.counts, depth)

    @cached_property
    def depth(self) -> int:
        """Conv layers (any kind) on the longest path from the input to an output."""
        convs = {"conv", "dwconv", "sepconv"}
        best: dict[str, int] = {}
        for name, layer in self.layers.items():
            d = max((best[i] for i in layer.inputs), default=0)
            best[name] = d + (layer.op in convs)
        return max(best[o.node] for o in self.graph.outputs)

    # -- reports -------------------------------------------------------------------------
    def summary(self) -> dict:
        from .report import summary_dict
        return summary_dict(self)

    def expand(self) -> str:
        from .report import expand_text
        return expand_text(self)

    def table(self, depth: int | None = None) -> str:
        from .report import summary_table
        return summary_table(self, depth)

    # -- backends (imported lazily: the front end never loads TensorFlow, Keras or onnx) ---
    def to_keras(self, inference: bool = False, **kwargs):
        from .backends.keras import build_model
        return build_model(self, inference=inference, **kwargs)

    def __repr__(self) -> str:
        t = self.total()
        return f"<Network {self.name}: {len(self.layers)} layers, {t.params:,} params, {t.macs:,} MACs>"
