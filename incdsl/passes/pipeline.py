"""The passes `Network` runs over the elaborated graph, by name and in order, as xDSL's pass manager
runs its passes: each states what it needs and what it adds, and leaves the IR valid
(passes/verify.py checks that; the tests run it after every pass).

A pass marked `on_demand` (the pads the backends read) runs the first time its fact is asked for
(`demand`), not on every build; with verification on, it runs in order like the others.

`needs` and `adds` name facts about the network being built: most are its attributes (a pass
reads `net.shapes`, sets `net.inference`); "graph" (the elaborated `Graph`) is there before any
pass, "pruned" says every layer of it reaches an output. To add one, write its function
in a module of its own and put a `Pass` into PIPELINE after the passes it needs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from .outputs import inference_layers
from .pads import resolve_pads
from .prune import prune
from .shapes import infer_shapes


@dataclass(frozen=True)
class Pass:
    """One step of the pipeline: its `name` (kebab-case, as IR errors name it), the facts it
    `needs` and those it `adds` (see the module docstring), a one-line contract `doc`, and `run`,
    which takes the network being built and sets the attributes it adds."""
    name: str
    needs: tuple[str, ...]
    adds: tuple[str, ...]
    doc: str
    run: Callable[[object], None]
    on_demand: bool = False  # run when first asked for (`demand`), not on every build


def _prune(net) -> None:
    prune(net.graph)


def _infer_shapes(net) -> None:
    net.shapes, net.counts, net.derivations = infer_shapes(net.graph)


def _mark_inference(net) -> None:
    net.inference = inference_layers(net.graph)


def _resolve_pads(net) -> None:
    net.pads = resolve_pads(net.graph, net.shapes)


PIPELINE: tuple[Pass, ...] = (
    Pass("prune", ("graph",), ("pruned",),
         "drops the layers no output reads; names them in graph.unused", _prune),
    # after prune: a layer nobody reads is warned about, never checked
    Pass("infer-shapes", ("pruned",), ("shapes", "counts", "derivations"),
         "every layer's output shape (NHWC, batch left out), params and MACs, or a SpecError at the layer at fault",
         _infer_shapes),
    Pass("mark-inference", ("graph",), ("inference",),
         "the layers the inference graph keeps (training-only heads left out)", _mark_inference),
    # on demand: only the backends read pads, and a 1,000-variant sweep should not pay for them
    Pass("resolve-pads", ("shapes",), ("pads",),
         "every conv's and pool's pads (top, bottom, left, right, ceil overhang) in pixels, for the backends",
         _resolve_pads, on_demand=True),
)

GIVEN = ("graph",)  # what elaboration hands the pipeline


def check_order(passes: tuple[Pass, ...]) -> None:
    """Raise ValueError unless every pass needs only what elaboration or an earlier pass added,
    and no two passes share a name."""
    have, names = set(GIVEN), set()
    for p in passes:
        missing = [n for n in p.needs if n not in have]
        if missing or p.name in names:
            raise ValueError(f"pass '{p.name}' " + (f"needs {', '.join(missing)}, which no earlier pass adds"
                                                     if missing else "is in the pipeline twice"))
        have.update(p.adds)
        names.add(p.name)


check_order(PIPELINE)


def run(net, passes: tuple[Pass, ...] = PIPELINE, verify: bool | None = None) -> None:
    """Run `passes` in order on `net` (a Network being built, holding `graph`). With `verify`
    (default: the environment variable INCDSL_VERIFY is set and not "0"), check the IR's
    invariants before the first pass and after each (passes/verify.py), raising `IRError` that
    names the pass that broke one. Whatever a pass raises (a `SpecError` for a shape that does
    not fit) goes through."""
    if verify is None:
        verify = os.environ.get("INCDSL_VERIFY", "0") not in ("", "0")
    if not verify:
        for p in passes:
            if not p.on_demand:
                p.run(net)
        return
    from .verify import verify_after
    have = dict.fromkeys(GIVEN)  # in the order the facts were established
    verify_after(net, "elaborate", have)
    for p in passes:  # on-demand passes too: the verifier checks what they add
        p.run(net)
        have.update(dict.fromkeys(p.adds))
        verify_after(net, p.name, have, p.adds)


def demand(net, fact: str, passes: tuple[Pass, ...] = PIPELINE):
    """Run the on-demand pass that adds `fact` (e.g. "pads") on `net` and return the attribute
    it set. Raises KeyError when no on-demand pass adds it."""
    p = next((p for p in passes if p.on_demand and fact in p.adds), None)
    if p is None:
        raise KeyError(fact)
    p.run(net)
    return getattr(net, fact)
