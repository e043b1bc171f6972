"""Budgets from Python: compare variants of specs and fit a parameter to a budget.

`incdsl.compare(...)` and `incdsl.fit(...)` are what `incdsl compare` and `incdsl fit` do, with
Python values instead of flags; the commands are thin layers over the same code (sweep.py,
fitting.py). Counts follow the README's conventions: params as Keras' `count_params()`, MACs of conv
and dense layers for one image, memory in bytes, latency in seconds.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ArgumentError, UsageError
from ..network import Spec
from .fitting import FitResult, Measure
from .fitting import fit as _fit
from .sweep import Row, measure_all, plan

METRICS = ("params", "macs", "memory", "latency")


def _spec(spec) -> Spec:
    return spec if isinstance(spec, Spec) else Spec(spec)


def compare(*specs: str | Path | Spec, sweep: dict[str, list] | None = None,
            variants: dict[str, dict] | None = None, depth: int = 1, **arguments) -> list[Row]:
    """One `Row` per variant: label, arguments, total and inference `Count`s (trainable,
    non-trainable params, MACs), outputs, depth and per-block counts (`row.blocks`, down to `depth`).

    `specs` are files or shipped names (`"googlenet"`); `sweep` crosses values
    (`{"width": [0.5, 0.75, 1.0]}`), `variants` names argument sets (`{"small": {"width": 0.5}}`),
    `arguments` apply to every variant. Raises `SpecError` for a variant that does not check and
    `UsageError` for an unknown argument or a parameter both swept and fixed.
    Example: `incdsl.compare("inception_v3", sweep={"width": [0.5, 1.0]})`.
    """
    if not specs:
        raise UsageError("compare needs at least one spec")
    if depth < 1:
        raise UsageError("depth must be at least 1")
    chosen = plan([_spec(s) for s in specs], dict(arguments),
                  [(k, list(v)) for k, v in (sweep or {}).items()],
                  [(label, dict(sets)) for label, sets in (variants or {}).items()])
    return measure_all(chosen, depth, progress=False)


def fit(spec: str | Path | Spec, vary: str, *, params: int | None = None, macs: int | None = None,
        memory: int | None = None, latency: float | None = None, low=None, high=None,
        trainable: bool = False, inference: bool = False, batch: int = 1, precision: str = "float32",
        optimizer: str = "momentum", **arguments) -> FitResult:
    """The largest value of the numeric parameter `vary` whose network meets every budget given:
    `params` (count), `macs` (per image), `memory` (bytes of a training step at `batch`,
    `precision`, `optimizer`), `latency` (seconds, a roofline bound on an H200). Exact under the
    spec's integer rounding: `result.best.value` fits and `result.next.value`, the next value
    that changes the network, does not. `vary="batch"` fits the batch size to a memory or latency
    budget. `low`/`high` bound the search; `arguments` fix other parameters.

    Raises `UsageError` when nothing fits, no budget is given, or `vary` is not a numeric
    parameter. Example: `incdsl.fit("inception_v3", "width", params=10_000_000).best.value`.
    """
    budgets = {m: v for m, v in (("params", params), ("macs", macs), ("memory", memory), ("latency", latency))
               if v is not None}
    for m, v in budgets.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ArgumentError(m, v, "a budget is a positive number (params and MACs as counts, memory in "
                                "bytes, latency in seconds)")
    if not budgets:
        raise UsageError(f"fit needs a budget: one or more of {', '.join(METRICS)}")
    metric, budget = next(iter(budgets.items()))
    return _fit(_spec(spec), vary, metric, budget, lo=low, hi=high, sets=dict(arguments), trainable=trainable,
                inference=inference, budgets=budgets, measure=Measure(batch, precision, optimizer))
