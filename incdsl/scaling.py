"""Scaling several parameters at once (`incdsl fit --scale`, `fit --vary A=... --vary B=...`).

Compound scaling (Tan and Le 2019, EfficientNet, Section 3.3): one coefficient phi scales every
named parameter from its default, `value = default * base ** phi` (an integer parameter such as
`size` or a repeat count is rounded to the nearest integer, halves to even). The largest phi whose
network fits every budget is found by bisection down to adjacent floats, like `fit`, so the answer
is exact under the spec's rounding and the next network is over budget.

A grid of several parameters under several budgets gives the Pareto set: the variants that fit
every budget and that no other fitting variant matches or beats on every varied parameter.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR

from .compare import _check_names
from .errors import SpecError, UsageError
from .fit import Measure, Probe, _Fitter, shortest
from .network import Spec


def parse_scale(text: str) -> dict[str, float]:
    """`width=1.1,size=1.15` -> {"width": 1.1, "size": 1.15}. UsageError on anything else."""
    out: dict[str, float] = {}
    for item in text.split(","):
        k, eq, v = item.partition("=")
        try:
            base = float(v)
        except ValueError:
            base = None
        if not eq or not k.strip() or base is None or base <= 0 or base == 1:
            raise UsageError(f"--scale {text}: expected NAME=BASE,... with bases > 0 and not 1, e.g. width=1.1,size=1.15")
        if k.strip() in out:
            raise UsageError(f"--scale {text}: '{k.strip()}' is given twice")
        out[k.strip()] = base
    return out


def scaled(spec: Spec, bases: dict[str, float], phi: float) -> dict:
    """Each parameter's value at phi: default * base ** phi, rounded when the default is an int."""
    out = {}
    for name, base in bases.items():
        default = spec.params[name]
        v = default * base ** phi
        out[name] = round(v) if isinstance(default, int) else v
    return out


class _PhiFitter:
    """Probes by phi: the network of the scaled values (cached by those values)."""

    def __init__(self, spec: Spec, bases: dict, inner: _Fitter):
        self.spec, self.bases, self.inner = spec, bases, inner

    def probe(self, phi: float) -> Probe:
        return self.inner.probe(scaled(self.spec, self.bases, phi))

    def fits(self, phi: float) -> bool:
        try:
            return self.inner.fits(scaled(self.spec, self.bases, phi))
        except SpecError:
            if phi > 0:  # too large to build (an absurd size) is over any budget
                return False
            raise


@dataclass
class CompoundResult:
    bases: dict[str, float]
    phi: float  # the largest phi that fits (exact float)
    short: float  # the shortest decimal phi giving the same network
    values: dict  # the scaled parameters at phi
    best: Probe
    next_phi: float | None  # the smallest phi giving the next network, over budget
    next_short: float | None
    next_values: dict | None
    next: Probe | None
    budgets: dict


def compound(spec: Spec, bases: dict[str, float], budgets: dict, *, sets: dict | None = None,
             measure: Measure | None = None, trainable: bool = False, inference: bool = False) -> CompoundResult:
    """The largest phi whose compound-scaled network fits every budget (module docstring).
    Raises UsageError when the names are unknown or not numeric, or nothing fits."""
    sets = dict(sets or {})
    _check_names(spec, list(bases) + list(sets), "")
    for name in bases:
        d = spec.params[name]
        if isinstance(d, bool) or not isinstance(d, (int, float)) or d <= 0:
            raise UsageError(f"--scale {name}: compound scaling needs a positive numeric parameter")
        if name in sets:
            raise UsageError(f"'{name}' is scaled; do not also --set it")
    metric = next(iter(budgets))
    inner = _Fitter(spec, "phi", metric, budgets[metric], trainable, inference, sets, budgets, measure)
    f = _PhiFitter(spec, bases, inner)
    if f.fits(0.0):
        lo, hi, step = 0.0, None, 1.0
        for _ in range(40):
            if not f.fits(lo + step):
                hi = lo + step
                break
            lo, step = lo + step, step * 2
        if hi is None:
            raise UsageError("every phi tried fits: the budgets do not bound the scaled parameters")
    else:
        hi, lo, step = 0.0, None, 1.0
        for _ in range(40):
            try:
                ok = f.fits(hi - step)
            except SpecError as e:
                raise UsageError(f"nothing fits: phi={hi - step:g} does not build ({e.message.splitlines()[0]})") from None
            if ok:
                lo = hi - step
                break
            hi, step = hi - step, step * 2
        if lo is None:
            raise UsageError("nothing fits")
    while True:  # lo fits, hi does not: bisect to adjacent floats
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:
            break
        lo, hi = (mid, hi) if f.fits(mid) else (lo, mid)
    short = shortest(f, lo, ROUND_FLOOR)
    next_short = shortest(f, hi, ROUND_CEILING)
    return CompoundResult(bases, lo, short, scaled(spec, bases, short), f.probe(lo), hi, next_short,
                          scaled(spec, bases, next_short), f.probe(hi), budgets)


@dataclass
class GridPoint:
    values: dict  # parameter -> value as given
    probe: Probe
    fits: bool


def pareto_grid(spec: Spec, ranges: list[tuple[str, list[str]]], budgets: dict, *, sets: dict | None = None,
                measure: Measure | None = None, trainable: bool = False,
                inference: bool = False) -> tuple[list[GridPoint], list[GridPoint]]:
    """Every grid point measured, and the Pareto set of those that fit every budget: no other
    fitting point has every varied parameter at least as large and one larger."""
    sets = dict(sets or {})
    names = [n for n, _ in ranges]
    _check_names(spec, names + list(sets), "")
    metric = next(iter(budgets))
    inner = _Fitter(spec, "grid", metric, budgets[metric], trainable, inference, sets, budgets, measure)
    points = []
    for combo in itertools.product(*[vals for _, vals in ranges]):
        values = dict(zip(names, combo))
        points.append(GridPoint(values, inner.probe(values), inner.fits(values)))
    num = lambda p: [float(p.values[n]) for n in names]
    ok = [p for p in points if p.fits]
    front = [p for p in ok if not any(all(a >= b for a, b in zip(num(q), num(p))) and num(q) != num(p) for q in ok)]
    return points, front
