"""`incdsl fit`: the largest value of one parameter whose network fits a budget, exact under the
spec's integer rounding."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ..errors import NothingFits, OptionError, SpecError, UsageError
from ..network import Spec
from ..ops import Count
from ..text import ParamText, counts_dict, number_text, param_text
from .sweep import Variant, build, check_names

# --- fit -----------------------------------------------------------------------------------

METRICS = ("params", "macs", "memory", "latency")


@dataclass(frozen=True)
class Measure:
    """How a probe is measured beyond its counts: the training step's memory (bytes, at `batch`,
    `precision`, `optimizer`; passes/memory.py) and the roofline bound of one forward pass
    (seconds, on `device` at `batch`; roofline.py)."""
    batch: int = 1
    precision: str = "float32"
    optimizer: str = "momentum"
    device: object = None  # roofline.Device

    def amounts(self, net, metrics, batch: int | None = None) -> dict:
        """The measured amounts of `net` for the budgets in `metrics` that are not counts, as a dict.

        "memory": the training step's bytes (`passes.memory.training_step(...).total`: params,
        gradients, optimizer slots, kept activations) at `batch` images (default `self.batch`);
        "latency": seconds of one forward pass at that batch, the roofline bound on `self.device`
        (default DEVICES["h200"]; `roofline.network_bound`). Other metrics are left out. Raises
        `KeyError` for an unknown precision or optimizer.
        """
        b = batch or self.batch
        out = {}
        if "memory" in metrics:
            from ..passes.memory import training_step
            out["memory"] = training_step(net, b, self.precision, self.optimizer).total
        if "latency" in metrics:
            from .roofline import DEVICES, network_bound
            out["latency"] = network_bound(net, self.device or DEVICES["h200"], b, self.precision)
        return out


@dataclass(frozen=True)
class Probe:
    """One value of the fitted parameter and what its network measures.

    `value` is the parameter's value, `count` the network's params and MACs as the budget counts
    them (total or inference), `signature` identifies the built network (equal signatures, same
    network), `train_heads` whether it has training-only heads, `amounts` (metric, amount) pairs for
    memory (bytes) and latency (seconds).
    """
    value: int | float
    count: Count  # as the budget counts it (total or inference)
    signature: tuple = field(repr=False)  # identifies the network: equal signatures, same network
    train_heads: bool = False  # the network has training-only heads (total and inference differ)
    amounts: tuple = ()  # (metric, amount) for memory (bytes) and latency (seconds)

    def metric(self, what: str, trainable: bool):
        """The amount budget `what` measures: MACs, memory (bytes), latency (seconds), or params (trainable
        ones when `trainable`). Raises `KeyError` for a memory or latency amount not measured."""
        if what == "macs":
            return self.count.macs
        if what in ("memory", "latency"):
            return dict(self.amounts)[what]
        return self.count.trainable if trainable else self.count.params


@dataclass
class FitResult:
    """What `incdsl fit` found: the largest value of parameter `name` whose network fits every budget.

    `best` is that probe and `short` the shortest decimal giving the same network; `next` (and
    `next_short`) the smallest value giving the next, over-budget network (None when `--max` fits).
    `metric` and `budget` are the first budget (params, MACs, bytes or seconds); `budgets` all of
    them (metric -> limit); `trainable`/`inference` say which counts; `probes` every network built;
    `violations` pairs where a larger value measured less (see `monotonic`).
    """
    name: str
    best: Probe
    short: int | float  # the shortest decimal giving the same network as `best`
    next: Probe | None  # the smallest value giving the next network (over budget); None if --max fits
    next_short: int | float | None  # the shortest decimal giving the same network as `next`
    metric: str  # the first budget's metric: params, macs, memory (bytes) or latency (seconds)
    budget: int | float
    trainable: bool
    inference: bool
    probes: list[Probe]
    violations: list[tuple[Probe, Probe]]  # pairs where a larger value measured less
    budgets: dict = None  # every budget: metric -> limit

    @property
    def monotonic(self) -> bool:
        """True when no larger probed value measured less than a smaller one (no `violations`); the search
        assumes it, and `incdsl fit` warns when it is False."""
        return not self.violations


BATCH = "batch"  # not a spec parameter: the images per step of the memory and latency budgets


class Fitter:
    """Builds and measures the variants of `spec` that a search probes: parameter `name` varied (or a
    dict of values, for compound scaling and grids), the rest fixed at `sets`, each network built once
    and each value measured once (`cache`). Used by `fit` and `incdsl.analysis.scaling`."""

    def __init__(self, spec: Spec, name: str, metric: str, budget, trainable: bool,
                 inference: bool, sets: dict, budgets: dict | None = None, measure: Measure | None = None):
        self.spec, self.name, self.what, self.budget = spec, name, metric, budget
        self.trainable, self.inference, self.sets = trainable, inference, sets
        self.budgets = budgets or {metric: budget}
        self.measure = measure or Measure()
        self.cache: dict = {}
        self._nets: dict = {}  # the network of each setting (a batch size needs no new one)

    def network(self, value):
        """(network, batch or None) for a value of the varied parameter, or for a dict of values
        (compound scaling, a grid), where "batch" is the images per step, not a spec parameter."""
        if self.name == BATCH:  # one network, measured at each batch size
            value = {BATCH: value}
        values = dict(value) if isinstance(value, dict) else {self.name: value}
        batch = values.pop(BATCH, None)
        sets = {**self.sets, **values}
        key = tuple(sorted((k, repr(v)) for k, v in values.items()))
        if key not in self._nets:
            self._nets[key] = build(Variant(_sets_label(sets, self.sets), self.spec, sets))
        return self._nets[key], (int(batch) if batch is not None else None)

    def probe(self, value) -> Probe:
        """The `Probe` (count, signature, measured amounts) of `value`, measured once and cached."""
        key = tuple(sorted(value.items())) if isinstance(value, dict) else value
        if key not in self.cache:
            net, batch = self.network(value)
            sig = (tuple(net.shapes.items()), tuple(net.counts.values())) + ((batch,) if batch else ())
            full, inf = net.total(), net.total(inference=True)
            amounts = self.measure.amounts(net, self.budgets, batch)
            self.cache[key] = Probe(value, inf if self.inference else full, sig, full != inf,
                                    tuple(amounts.items()))
        return self.cache[key]

    def fits(self, value) -> bool:
        """Whether `value`'s network is within every budget (params, MACs, memory, latency)."""
        p = self.probe(value)
        return all(p.metric(m, self.trainable) <= limit for m, limit in self.budgets.items())


def _sets_label(sets: dict, base: dict) -> str:
    return ", ".join(f"{k}={number_text(v)}" for k, v in sets.items() if k not in base)


def fit(spec: Spec, name: str, metric: str, budget, *, lo=None, hi=None, sets: dict | None = None,
        trainable: bool = False, inference: bool = False, budgets: dict | None = None,
        measure: Measure | None = None) -> FitResult:
    """The largest value of the numeric parameter `name` whose network fits the budget, assuming the
    count grows with the value. Exact under the spec's rounding: for an int, bisection to adjacent
    integers; for a float, bisection to adjacent floats, so `best` is the largest float that still
    gives the fitting network and `next` the smallest that gives the next one. `budgets` (metric ->
    limit) adds more budgets, all of which must hold; `name` may be "batch" for memory and latency.
    Raises NothingFits (a UsageError; the command line exits 1) when nothing fits, UsageError when
    the parameter is not numeric."""
    sets = dict(sets or {})
    budgets = dict(budgets or {metric: budget})
    check_names(spec, ([] if name == BATCH else [name]) + list(sets), "")
    if name in sets:
        raise OptionError("'{name}' is the parameter to vary; do not also {set} it", words={"set": "fix"},
                          name=name)
    if name == BATCH and not {"memory", "latency"} & set(budgets):
        raise OptionError(
            "{vary} batch needs a {memory} or {latency} budget (params and MACs do not grow with it)",
                          words={"vary": "varying", "memory": "memory", "latency": "latency"})
    default = 1 if name == BATCH else spec.params[name]
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise UsageError(f"fit varies a numeric parameter; '{name}' defaults to {param_text(default)}")
    kind = type(default)
    lo, hi = (_bound(x, kind, name, bound) for x, bound in ((lo, "low"), (hi, "high")))
    if lo is not None and hi is not None and lo >= hi:
        raise OptionError("{low} {low_value} must be below {high} {high_value}", low_value=number_text(lo),
                          high_value=number_text(hi))
    if name == BATCH:
        lo = max(lo or 1, 1)  # no step has fewer than one image
        if hi is not None and hi <= lo:
            raise OptionError("{high} {value} must be above 1 for batch", value=number_text(hi))
    f = Fitter(spec, name, metric, budget, trainable, inference, sets, budgets, measure)
    over = lambda v: f"{name}={number_text(v)} " + over_text(f.probe(v), budgets, trainable)

    if lo is not None and not f.fits(lo):
        raise NothingFits(f"nothing fits: {over(lo)}")
    if hi is not None and f.fits(hi):
        return _result(f, hi, None)
    lo, hi = _bracket(f, lo, hi, default, kind, over)
    # invariant: lo fits, hi does not
    if kind is int:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if f.fits(mid) else (lo, mid)
    else:
        while True:
            mid = lo + (hi - lo) / 2
            if mid <= lo or mid >= hi:  # lo and hi are adjacent floats
                break
            lo, hi = (mid, hi) if f.fits(mid) else (lo, mid)
    return _result(f, lo, hi)


def _bound(x, kind, name, bound: str):
    from ..frontend.literals import read_int, read_number
    if x is None:
        return None
    try:
        # the spec's own number syntax (incdsl.frontend.literals): no `1_0`, no non-ASCII digits
        return float(read_number(str(x))) if kind is float else read_int(str(x))
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise OptionError("{%s} {value}: '{name}' is {what}" % bound, value=x, name=name, what=what) from None


def _bracket(f: Fitter, lo, hi, default, kind, over):
    """Find lo (fits) < hi (does not), doubling up or halving down from what is known."""
    name = f.name
    if lo is None and hi is None:
        start = default if default > 0 else kind(1)
        if f.fits(start):
            lo = start
        else:
            hi = start
    if hi is None:  # grow until the budget is exceeded
        cur = lo
        for _ in range(64):
            cur = cur * 2 if cur > 0 else kind(1)
            try:
                if not f.fits(cur):
                    return lo, cur
            except SpecError as e:
                e.hint = e.hint or ParamText("searching upwards for the budget's edge; bound it with {high}")
                raise
            lo = cur
        raise OptionError(
            "{name}={value} still fits: the count does not grow with '{name}' enough to reach the "
                          "budget; give {high}", name=name, value=number_text(lo))
    if lo is None:  # shrink until it fits
        cur = hi
        for _ in range(64):
            nxt = cur // 2 if kind is int else cur / 2
            if nxt == cur or (kind is int and cur <= 0):
                break
            cur = nxt
            try:
                if f.fits(cur):
                    return cur, hi
            except (SpecError, UsageError) as e:
                # networks stop building between cur and hi: the smallest that builds may still fit
                small = smallest_building(f, cur, hi, kind)
                if small < hi and f.fits(small):
                    return small, hi
                first = e.message if isinstance(e, SpecError) else str(e)
                raise NothingFits(f"nothing fits: {over(hi)}, and {name}={number_text(cur)} does not build "
                                 f"({first.splitlines()[0]})") from None
            hi = cur
        raise NothingFits(f"nothing fits: {over(cur)}")
    return lo, hi


def smallest_building(f, bad, good, kind=float):
    """The smallest value in (bad, good] whose network builds, by bisection (to adjacent integers
    for an int parameter, adjacent floats otherwise): `bad` does not build, `good` does. Assumes
    that above some value every network builds (a network too small for its input stops building
    below it). `f` is a Fitter (or anything whose `probe(value)` raises SpecError or UsageError
    for a network that does not build)."""
    while True:
        mid = (bad + good) // 2 if kind is int else bad + (good - bad) / 2
        if mid <= bad or mid >= good:
            return good
        try:
            f.probe(mid)
            good = mid
        except (SpecError, UsageError):
            bad = mid


def shortest(f, value, rounding):
    """The decimal with fewest digits that builds the same network as `value`: searched at or below
    it (ROUND_FLOOR: 0.634 for 0.6343749999999999) or at or above it (ROUND_CEILING: 0.635 for
    0.634375). `f` is a Fitter (or anything with `probe(value).signature`)."""
    if not isinstance(value, float):
        return value
    sig = f.probe(value).signature
    d = Decimal(repr(value))
    for digits in range(0, 18):
        cand = float(d.quantize(Decimal(1).scaleb(-digits), rounding=rounding))
        try:
            if f.probe(cand).signature == sig:
                return cand
        except (SpecError, UsageError):  # e.g. 0 channels: not this network anyway
            continue
    return value


def _result(f: Fitter, best, nxt) -> FitResult:
    b = f.probe(best)
    short = shortest(f, best, ROUND_FLOOR)
    next_short = shortest(f, nxt, ROUND_CEILING) if nxt is not None else None
    probes = sorted(f.cache.values(), key=lambda p: p.value)
    m = lambda p: p.metric(f.what, f.trainable)
    violations = [(p, q) for p, q in zip(probes, probes[1:]) if m(q) < m(p)]
    return FitResult(f.name, b, short, f.probe(nxt) if nxt is not None else None, next_short, f.what,
                     f.budget, f.trainable, f.inference, probes, violations, f.budgets)


def fmt_amount(metric: str, v, against=None) -> str:
    """12,345 params; 1.50 GiB; 3.2 ms. With `against` (a budget's limit), as many more digits as
    it takes for an amount that differs from the limit to print differently (16.0000001 GiB is
    over a 16 GiB budget, and shows it: not "16.00 GiB <- over budget")."""
    if metric not in ("memory", "latency"):
        return f"{v:,} {metric}"
    from ..passes.memory import fmt_bytes
    from .roofline import fmt_seconds
    show = (lambda x, d: fmt_bytes(x, d)) if metric == "memory" else (lambda x, d: fmt_seconds(x, d + 1))
    digits = 2
    while against is not None and v != against and show(v, digits) == show(against, digits) and digits < 15:
        digits += 1
    return show(v, digits)


def over_text(p: Probe, budgets: dict, trainable: bool) -> str:
    """'gives 10,004,274 params, over the budget of 10,000,000' for each budget it breaks."""
    bad = [(m, lim) for m, lim in budgets.items() if p.metric(m, trainable) > lim]
    return "gives " + "; ".join(
        f"{fmt_amount(m, p.metric(m, trainable), lim)}, over the budget of {fmt_amount(m, lim)}"
                                for m, lim in (bad or list(budgets.items())))


def probe_json(pr: Probe) -> dict:
    """One `Probe` as JSON: the value, params (total, trainable, non-trainable), MACs, and the measured memory
    (bytes) or latency (seconds)."""
    return {"value": pr.value, "params": counts_dict(pr.count), "macs": pr.count.macs, **dict(pr.amounts)}


def fit_json(r: FitResult) -> dict:
    """`incdsl fit --json`: a `FitResult` as a dict: the best probe and its shortest decimal, the next
    (over-budget) probe, the budgets and which counts they use, whether the measure was monotonic,
    and how many networks were built.
    """
    p = probe_json
    return {"name": r.name, **p(r.best), "short": r.short,
            "next": {**p(r.next), "short": r.next_short} if r.next else None,
            "budgets": dict(r.budgets or {r.metric: r.budget}),
            "budget": {"metric": r.metric, "limit": r.budget,
                       "counts": ("trainable " if r.trainable and r.metric == "params" else "")
                       + ("inference" if r.inference else "total")},
            "monotonic": r.monotonic, "builds": len(r.probes)}
