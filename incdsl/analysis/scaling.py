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

from ..errors import NothingFits, OptionError, SpecError, UsageError
from ..network import Spec
from .fitting import BATCH, Fitter, Measure, Probe, over_text, shortest
from .sweep import check_names


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

    def __init__(self, spec: Spec, bases: dict, inner: Fitter):
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
    """What `incdsl fit --scale` found: compound scaling (Tan and Le 2019, EfficientNet, Section 3.3).

    `bases` maps each scaled parameter to its base (`value = default * base ** phi`); `phi` is the
    largest coefficient whose network fits every budget in `budgets` (an exact float) and `short` the
    shortest decimal giving the same network; `values` the scaled parameters there and `best` its
    `Probe` (params, MACs, and memory in bytes or latency in seconds); `next_phi`, `next_short`,
    `next_values` and `next` the same for the next, over-budget network (None when there is none);
    `repeats`/`next_repeats` the two networks' repeat counts (`block35` -> 11).
    """
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
    repeats: dict = None  # the chosen network's repeat counts (block35 -> 11), from its module calls
    next_repeats: dict = None


def repeats(net) -> dict[str, int]:
    """How many times each `b = repeat N { ... }` of the network ran, from the calls it made: b_1 ..
    b_N, all made by the one call statement inside the repeat (the same span; a separate
    `b_10 = ...` after it is not counted), e.g. {"block35": 11}: the repeat counts a depth gives."""
    import re
    first: dict[str, object] = {}
    out: dict[str, int] = {}
    for b in net.graph.blocks:
        m = re.fullmatch(r"([^/]+)_(\d+)", b.name)
        if not m:
            continue
        prefix = m.group(1)
        if m.group(2) == "1":
            first[prefix] = b.span
        if prefix in first and b.span == first[prefix]:
            out[prefix] = out.get(prefix, 0) + 1
    return out


def compound(spec: Spec, bases: dict[str, float], budgets: dict, *, sets: dict | None = None,
             measure: Measure | None = None, trainable: bool = False,
             inference: bool = False) -> CompoundResult:
    """The largest phi whose compound-scaled network fits every budget (module docstring).
    Raises UsageError when the names are unknown or not numeric or a base is not above 1,
    NothingFits when even the smallest network that builds is over budget."""
    sets = dict(sets or {})
    check_names(spec, list(bases) + list(sets), "")
    for name in bases:
        d = spec.params[name]
        if isinstance(d, bool) or not isinstance(d, (int, float)) or d <= 0:
            raise OptionError("{scale} {name}: compound scaling needs a positive numeric parameter",
                              name=name)
        if name in sets:
            raise OptionError("'{name}' is scaled; do not also {set} it", words={"set": "fix"}, name=name)
    metric = next(iter(budgets))
    inner = Fitter(spec, "phi", metric, budgets[metric], trainable, inference, sets, budgets, measure)
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
                # networks stop building between hi - step and hi: the smallest that builds may
                # still fit (issue 27: inception_v3 --scale width=1.1,size=1.15 under 5M params)
                small = _smallest(f, hi - step, hi)
                if small < hi and f.fits(small):
                    lo = small
                    break
                raise NothingFits(
                    f"nothing fits: the budget is below the smallest network that builds: phi={small:.6g} "
                    f"{over_text(f.probe(small), budgets, trainable)} (phi={hi - step:g} does not "
                    f"build: {e.message.splitlines()[0]})"
                ) from None
            if ok:
                lo = hi - step
                break
            hi, step = hi - step, step * 2
        if lo is None:
            raise NothingFits("nothing fits")
    while True:  # lo fits, hi does not: bisect to adjacent floats
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:
            break
        lo, hi = (mid, hi) if f.fits(mid) else (lo, mid)
    try:
        f.probe(hi)
    except SpecError as e:  # the scaled network stopped building before it outgrew the budget
        raise UsageError(
            f"every phi whose network builds fits: phi={lo!r} gives {scaled(spec, bases, lo)}, "
            f"phi={hi!r} does not build ({e.message.splitlines()[0]}); the budgets do not bind"
        ) from None
    short = shortest(f, lo, ROUND_FLOOR)
    next_short = shortest(f, hi, ROUND_CEILING)
    reps = lambda phi: repeats(inner.network(scaled(spec, bases, phi))[0])
    return CompoundResult(bases, lo, short, scaled(spec, bases, short), f.probe(lo), hi, next_short,
                          scaled(spec, bases, next_short), f.probe(hi), budgets, reps(lo), reps(hi))


def _smallest(f: "_PhiFitter", bad: float, good: float) -> float:
    """The smallest phi in (bad, good] whose network builds (bisection; `bad` does not build)."""
    for _ in range(60):
        mid = bad + (good - bad) / 2
        if mid <= bad or mid >= good:
            break
        try:
            f.probe(mid)
            good = mid
        except SpecError:
            bad = mid
    return good


@dataclass
class GridPoint:
    """One point of a `--vary` grid (`pareto_grid`): `values` (parameter -> number), its `probe`
    (None when the network does not build), whether it `fits` every budget, and `error`, the first
    line of the spec error when it does not build.
    """
    values: dict  # parameter -> value (a number)
    probe: Probe | None  # None when the network does not build
    fits: bool
    error: str | None = None  # why it does not build (first line of the spec error)


def _number(text: str):
    """A grid value as a number: "64" -> 64, "0.6" -> 0.6 (JSON and the table show numbers)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def pareto_grid(spec: Spec, ranges: list[tuple[str, list[str]]], budgets: dict, *, sets: dict | None = None,
                measure: Measure | None = None, trainable: bool = False,
                inference: bool = False) -> tuple[list[GridPoint], list[GridPoint]]:
    """Every grid point measured, and the Pareto set of those that fit every budget: no other
    fitting point has every varied parameter at least as large and one larger. `batch` may be one
    of the parameters (images per step, for --memory and --latency). A point whose network does
    not build fits nothing (GridPoint.error says why). NothingFits when the Pareto set is empty."""
    sets = dict(sets or {})
    names = [n for n, _ in ranges]
    seen = set()
    for n in names:
        if n in seen:
            raise OptionError("{vary} {name} is given twice; list all its values in one {vary} {name}=V1,V2",
                              words={"vary": "range"}, name=n)
        seen.add(n)
    check_names(spec, [n for n in names if n != BATCH] + list(sets), "")
    if BATCH in names:
        if not {"memory", "latency"} & set(budgets):
            raise OptionError(
                "{vary} batch needs a {memory} or {latency} budget (params and MACs do not grow with "
                              "it)", words={"vary": "varying"})
        bad = [v for n, vals in ranges if n == BATCH for v in vals if not (isinstance(_number(v),
                                                                                      int) and _number(
                                                                                          v) >= 1)]
        if bad:
            raise OptionError("{vary} batch={value}: a batch is a whole number of images, at least 1",
                              words={"vary": "range"}, value=bad[0])
    metric = next(iter(budgets))
    inner = Fitter(spec, "grid", metric, budgets[metric], trainable, inference, sets, budgets, measure)
    points = []
    for combo in itertools.product(*[vals for _, vals in ranges]):
        values = dict(zip(names, combo))
        shown = {n: _number(v) for n, v in values.items()}
        try:
            points.append(GridPoint(shown, inner.probe(values), inner.fits(values)))
        except SpecError as e:  # a variant that does not build fits no budget
            points.append(GridPoint(shown, None, False, e.message.splitlines()[0]))
    num = lambda p: [float(p.values[n]) for n in names]
    ok = [p for p in points if p.fits]
    front = [p for p in ok if not any(all(a >= b for a, b in zip(num(q),
                                                                 num(p))) and num(q) != num(p) for q in ok)]
    if not front:
        broken = [p for p in points if p.error]
        why = "; ".join(f"{', '.join(f'{k}={v}' for k, v in p.values.items())} does not build: {p.error}"
                        for p in broken[:3])
        raise NothingFits(f"nothing fits: none of the {len(points)} variants meets the budgets"
                          + (f" ({len(broken)} do not build: {why})" if broken else ""))
    return points, front
