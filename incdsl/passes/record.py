"""The record the passes build: what is known about one network, as frozen data that
`incdsl.network.Network` wraps (xDSL's passes rewrite a module; ours add facts to a record)."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..ir.graph import Graph
from ..ir.window import Pads
from ..ops import Count, Shape


@dataclass(frozen=True, slots=True)
class Record:
    """One network's facts, each field added by the pass that computes it (passes/pipeline.py)
    and None until then; passes/verify.py checks every field that is there.

    A pass never changes a record: it takes the fields it needs and returns those it adds, and the
    pipeline makes the next record with `dataclasses.replace`. The dicts are the record's own, not
    to be changed after their pass returned (the verifier re-derives each from the graph, so a
    change shows there). Shapes are NHWC with the batch left out (`(35, 35, 288)`, vectors
    `(1000,)`); counts are params (trainable, non-trainable) and MACs for one image; pads are pixels.
    """
    elaborated: Graph  # the graph elaboration emitted: the pipeline's input
    # prune: `elaborated` less the layers no output reads (the same object when none is dropped);
    # infer-shapes: each `fit` conv's kernel at its input's size, as the backends build it
    graph: Graph | None = None
    shapes: dict[str, Shape] | None = None  # layer name -> output shape
    counts: dict[str, Count] | None = None  # layer name -> params and MACs
    derivations: dict[str, str] | None = None  # layer name -> its size arithmetic, for error notes
    inference: frozenset[str] | None = None  # the layers the inference graph keeps
    pads: dict[str, Pads] | None = None  # windowed layer -> pads (resolve-pads, on demand)


FACTS: tuple[str, ...] = tuple(f.name for f in fields(Record))
