"""The passes `Network` runs over the elaborated graph, by name and in order, as xDSL's pass manager
runs its passes: each states what it needs and what it adds, and leaves the IR valid
(passes/verify.py checks that; the tests run it after every pass).

A pass is a plain function from the record's fields it `needs` to the fields it `adds` (data in,
data out, as jax stax's layers): `infer_shapes(graph) -> (graph, shapes, counts, derivations)`.
The pipeline composes them in order into one frozen `Record` (passes/record.py), which `Network`
wraps. "elaborated" (the graph elaboration emitted) is there before any pass. A pass that adds a
field it also needs rewrites it (infer-shapes writes `fit` kernels into the graph).

A pass marked `on_demand` (the pads the backends read) runs the first time its fact is asked for
(`demand`), not on every build; with verification on, it runs in order like the others.

To add one, give `Record` a field for what it adds, write its function in a module of its own and
put a `Pass` into PIPELINE after the passes it needs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from .outputs import inference_layers
from .pads import resolve_pads
from .prune import prune
from .record import Record
from .shapes import infer_shapes


@dataclass(frozen=True)
class Pass:
    """One step of the pipeline: its `name` (kebab-case, as IR errors name it), the record fields
    it `needs` (the arguments of `run`, in order) and those it `adds` (what `run` returns, in
    order: a tuple, or the value alone for one field), a one-line contract `doc`, and `run`."""
    name: str
    needs: tuple[str, ...]
    adds: tuple[str, ...]
    doc: str
    run: Callable[..., Any]
    on_demand: bool = False  # run when first asked for (`demand`), not on every build

    def results(self, *needed) -> dict[str, Any]:
        """`run` on the values of the fields it `needs`: field name -> value, for each it adds."""
        out = self.run(*needed)
        return dict(zip(self.adds, (out,) if len(self.adds) == 1 else out, strict=True))

    def apply(self, record: Record) -> Record:
        """The next record: `record` with the fields `run` returns for the fields it needs."""
        return replace(record, **self.results(*[getattr(record, n) for n in self.needs]))


PIPELINE: tuple[Pass, ...] = (
    Pass("prune", ("elaborated",), ("graph",),
         "drops the layers no output reads; names them in graph.unused", prune),
    # after prune: a layer nobody reads is warned about, never checked
    Pass("infer-shapes", ("graph",), ("graph", "shapes", "counts", "derivations"),
         "every layer's output shape (NHWC, batch left out), params and MACs, or a SpecError at the layer "
         "at fault",
         infer_shapes),
    Pass("mark-inference", ("graph",), ("inference",),
         "the layers the inference graph keeps (training-only heads left out)", inference_layers),
    # on demand: only the backends read pads, and a 1,000-variant sweep should not pay for them
    Pass("resolve-pads", ("graph", "shapes"), ("pads",),
         "every conv's and pool's pads (top, bottom, left, right, ceil overhang) in pixels, for the backends",
         resolve_pads, on_demand=True),
)

GIVEN = ("elaborated",)  # what elaboration hands the pipeline


def check_order(passes: tuple[Pass, ...], record: type[Record] = Record) -> None:
    """Raise ValueError unless every pass needs only what elaboration or an earlier pass added,
    adds only fields of `record` (the Record class, or a subclass with more fields), and no two
    passes share a name."""
    have, names, known = set(GIVEN), set(), {f.name for f in fields(record)}
    for p in passes:
        missing = [n for n in p.needs if n not in have]
        unknown = [n for n in p.adds if n not in known]
        if missing or unknown or p.name in names:
            raise ValueError(f"pass '{p.name}' " + (
                f"needs {', '.join(missing)}, which no earlier pass adds" if missing else
                f"adds {', '.join(unknown)}, which {record.__name__} has no field for" if unknown else
                "is in the pipeline twice"))
        have.update(p.adds)
        names.add(p.name)


check_order(PIPELINE)


def run(record: Record, passes: tuple[Pass, ...] = PIPELINE, verify: bool | None = None) -> Record:
    """Run `passes` in order from `record` (usually `Record(elaborated_graph)`) and return the
    record they build. With `verify` (default: the environment variable INCDSL_VERIFY is set and
    not "0"), check the IR's invariants before the first pass and after each (passes/verify.py),
    raising `IRError` that names the pass that broke one; on-demand passes then run in order too.
    Whatever a pass raises (a `SpecError` for a shape that does not fit) goes through."""
    if verify is None:
        verify = os.environ.get("INCDSL_VERIFY", "0") not in ("", "0")
    if not verify:  # one record at the end: `replace` after each pass would cost a sweep 40 us a build
        facts = {n: getattr(record, n) for n in record.__dataclass_fields__}
        for p in passes:
            if not p.on_demand:
                facts.update(p.results(*[facts[n] for n in p.needs]))
        return type(record)(**facts)
    from .verify import verify_after
    have = dict.fromkeys(GIVEN)  # in the order the facts were established
    verify_after(record, "elaborate", have)
    for p in passes:  # on-demand passes too: the verifier checks what they add
        record = p.apply(record)
        have.update(dict.fromkeys(p.adds))
        verify_after(record, p.name, have, p.adds)
    return record


def demand(record: Record, fact: str, passes: tuple[Pass, ...] = PIPELINE) -> Record:
    """`record` with `fact` (e.g. "pads") added by the on-demand pass that adds it (`record`
    itself when it has it already). Raises KeyError when no on-demand pass adds it."""
    p = next((p for p in passes if p.on_demand and fact in p.adds), None)
    if p is None:
        raise KeyError(fact)
    return record if getattr(record, fact) is not None else p.apply(record)
