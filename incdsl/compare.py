"""Comparing variants of specs (`incdsl compare`) and fitting a parameter to a budget (`incdsl fit`).

A variant is a spec plus parameter overrides. Each spec is parsed once (`Spec`) and elaborated
per variant (`Spec.build`), so a sweep of a thousand variants costs a thousand elaborations and
no parsing. Only plain numbers are kept per variant (`Row`), never the networks themselves.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from .errors import Note, SpecError, UsageError, did_you_mean
from .network import Network, Spec
from .ops import ZERO, Count

PROGRESS_MIN = 30  # grids up to this size finish too fast for a progress bar to help


# --- what to build -------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    label: str
    spec: Spec
    sets: dict  # overrides: strings from the command line or values from a spec's `variant`


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """`width=0.5,0.75,1` or `size=96:224:32` (start:stop:step, stop included)."""
    name, sep, values = text.partition("=")
    name, values = name.strip(), values.strip()
    if not sep or not name or not values:
        raise UsageError(f"--sweep expects NAME=V1,V2,... or NAME=START:STOP:STEP, got '{text}'")
    if ":" in values:
        return name, _range(name, values, text)
    items = [v.strip() for v in values.split(",")]
    if any(not v for v in items):
        raise UsageError(f"--sweep {text}: empty value in the list")
    return name, items


def _range(name: str, values: str, text: str) -> list[str]:
    parts = values.split(":")
    try:
        if len(parts) != 3:
            raise InvalidOperation
        start, stop, step = (Decimal(p.strip()) for p in parts)
    except InvalidOperation:
        raise UsageError(f"--sweep {text}: a range is START:STOP:STEP with numbers, e.g. {name}=0.5:1:0.25") from None
    if step <= 0 or stop < start:
        raise UsageError(f"--sweep {text}: a range needs START <= STOP and a positive STEP")
    n = int((stop - start) / step) + 1
    if n > 100_000:
        raise UsageError(f"--sweep {text}: {n:,} values is too many")
    # Decimal keeps 0.1 steps exact, so the values print as the user would write them.
    return [str(start + i * step) for i in range(n)]


def parse_variant(text: str) -> tuple[str, dict | None]:
    """`LABEL:K=V,K=V` -> (label, {K: V}); `LABEL` alone -> (label, None): the spec's named variant;
    `LABEL:` -> (label, {}): the spec's defaults under that label."""
    label, sep, rest = text.partition(":")
    label = label.strip()
    if not label:
        raise UsageError(f"--variant expects LABEL or LABEL:NAME=VALUE,..., got '{text}'")
    if not sep:
        return label, None
    sets: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        k, eq, v = item.partition("=")
        if not eq or not k.strip() or not v.strip():
            raise UsageError(f"--variant {text}: expected NAME=VALUE, got '{item}'")
        if k.strip() in sets:
            raise UsageError(f"--variant {text}: '{k.strip()}' is given twice")
        sets[k.strip()] = v.strip()
    return label, sets


def plan(specs: list[Spec], sets: dict | None = None, sweeps: list[tuple[str, list]] = (),
         variants: list[tuple[str, dict | None]] = (), all_variants: bool = False) -> list[Variant]:
    """The variants to build: for each spec, each base (the defaults, the --variant list, or every
    declared variant) crossed with the cartesian grid of the sweeps, all on top of `sets`."""
    sets = dict(sets or {})
    names = [n for n, _ in sweeps]
    for n in names:
        if names.count(n) > 1:
            raise UsageError(f"--sweep {n} is given twice; list all its values in one --sweep")
        if n in sets:
            raise UsageError(f"'{n}' is both swept and fixed with --set")
    labels = [label for label, _ in variants]
    for label in labels:
        if labels.count(label) > 1:
            raise UsageError(f"--variant label '{label}' is used twice")
    grid = list(itertools.product(*[vals for _, vals in sweeps]))
    multi = len(specs) > 1
    # several specs: labels start with the network's name, or the file's where two networks share a name
    nets = [_spec_name(s) for s in specs]
    prefixes = nets if len(set(nets)) == len(nets) else [s.path for s in specs]
    out: list[Variant] = []
    for spec, prefix in zip(specs, prefixes):
        _check_names(spec, list(sets) + names, "")
        bases = _bases(spec, variants, all_variants)
        for base_label, base_sets in bases:
            _check_names(spec, base_sets, f"variant '{base_label}'" if base_label else "")
            for k in base_sets:
                if k in sets:
                    raise UsageError(f"'{k}' is set both by --set and by variant '{base_label}'")
                if k in names:
                    raise UsageError(f"'{k}' is both swept and set by variant '{base_label}'")
            for values in grid:
                swept = dict(zip(names, values))
                label = " ".join(filter(None, [base_label] + [f"{k}={v}" for k, v in swept.items()]))
                if multi or not label:
                    label = f"{prefix} {label}".strip()
                out.append(Variant(label, spec, {**sets, **base_sets, **swept}))
    seen: set[str] = set()
    for v in out:
        if v.label in seen:
            raise UsageError(f"two variants are both labelled '{v.label}'"
                             + ("; is a spec listed twice?" if len(specs) > len({s.path for s in specs})
                                else "; give them distinct --variant labels"))
        seen.add(v.label)
    return out


def _spec_name(spec: Spec) -> str:
    from .elaborate import _pick_network
    return _pick_network(spec.program, spec.network_name).name


def _bases(spec: Spec, variants, all_variants: bool) -> list[tuple[str, dict]]:
    if not variants and not all_variants:
        return [("", {})]
    declared = spec.variants  # elaborates the defaults once: only when asked for
    bases: list[tuple[str, dict]] = []
    if all_variants:
        bases.append(("defaults", {}))
        bases += [(name, dict(v)) for name, v in declared.items()]
    for label, sets in variants:
        if sets is None:
            if label not in declared:
                known = ", ".join(declared) or "none"
                hint = did_you_mean(label, declared)
                raise UsageError(f"{spec.path} declares no variant '{label}' "
                                 + (f"({hint})" if hint else f"(it declares: {known})")
                                 + "; to set parameters write --variant LABEL:NAME=VALUE,...")
            sets = dict(declared[label])
        if all_variants and label in declared and sets == declared[label]:
            continue  # already there
        bases.append((label, sets))
    return bases or [("", {})]


def _check_names(spec: Spec, names, where: str) -> None:
    known = spec.params
    for n in names:
        if n not in known:
            hint = did_you_mean(n, known)
            raise UsageError(f"{where + ': ' if where else ''}{spec.path} has no parameter '{n}'"
                             + (f"; {hint}" if hint else f" (its parameters: {', '.join(known) or 'none'})"))


# --- building and measuring --------------------------------------------------------------

@dataclass(frozen=True)
class BlockCount:
    name: str
    module: str | None
    count: Count
    train_only: bool


@dataclass
class Row:
    label: str
    spec: str
    network: str
    sets: dict  # the overridden parameters, with their resolved values
    total: Count
    inference: Count
    outputs: dict[str, tuple]
    train_only: list[str]  # heads used in training only
    depth: int
    blocks: dict[str, BlockCount] = field(default_factory=dict)


REST = "(other layers)"  # the layers outside every block: stem, pools between blocks, head


def build(variant: Variant) -> Network:
    """Elaborate one variant; errors say which variant they come from."""
    sets = _sets_text(variant.sets)
    where = f"variant '{variant.label}'" + (f" ({sets})" if sets and sets.replace(",", "") not in variant.label else "")
    try:
        return variant.spec.build(**variant.sets)
    except SpecError as e:
        if variant.sets:  # the spec as written needs no note
            e.notes.append(Note(f"while building {where} of {variant.spec.path}"))
        raise
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None


def measure(variant: Variant, depth: int = 1) -> Row:
    net = build(variant)
    return row_of(net, variant.label, variant.sets, depth)


def row_of(net: Network, label: str, sets: dict, depth: int = 1) -> Row:
    groups = net.group_counts(depth)  # sums for name prefixes up to `depth` parts: the blocks we show
    chosen = [b for b in net.graph.blocks if b.name.count("/") < depth]
    names = {b.name for b in chosen}
    if depth > 1:  # blocks are listed as their calls end (inner first): put each before its insides
        first: dict[str, int] = {}
        for i, name in enumerate(net.layers):
            parts = name.split("/")
            for k in range(1, len(parts)):
                first.setdefault("/".join(parts[:k]), i)
        chosen.sort(key=lambda b: (first.get(b.name, 0), b.name.count("/")))
    blocks = {b.name: BlockCount(b.name, b.module, groups.get(b.name, ZERO), net.is_train_only(b.output))
              for b in chosen}
    # the rest is the total less the outermost chosen blocks (a nested block is inside its parent)
    full = rest = net.total()
    for b in chosen:
        parts = b.name.split("/")
        if not any("/".join(parts[:i]) in names for i in range(1, len(parts))):
            c = blocks[b.name].count
            rest = Count(rest.trainable - c.trainable, rest.non_trainable - c.non_trainable, rest.macs - c.macs)
    blocks[REST] = BlockCount(REST, None, rest, False)
    return Row(label=label, spec=net.path, network=net.name,
               sets={k: net.params[k] for k in sets},
               total=full, inference=net.total(inference=True),
               outputs={h.name: h.shape for h in net.heads},
               train_only=[h.name for h in net.heads if h.train_only],
               depth=net.depth, blocks=blocks)


class Progress:
    """A one-line bar on stderr: `building 120/1000 [###.......]`."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream, self.last = total, stream or sys.stderr, -1

    def update(self, done: int) -> None:
        pct = done * 100 // self.total
        if pct == self.last:
            return
        self.last = pct
        bar = "#" * (pct // 4) + "." * (25 - pct // 4)
        self.stream.write(f"\rbuilding variants {done}/{self.total} [{bar}]")
        if done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def measure_all(variants: list[Variant], depth: int = 1, progress: bool | None = None) -> list[Row]:
    """Build every variant. `progress`: None shows a bar on large grids when stderr is a terminal."""
    if progress is None:
        progress = len(variants) > PROGRESS_MIN and sys.stderr.isatty()
    bar = Progress(len(variants)) if progress else None
    rows = []
    try:
        for i, v in enumerate(variants, 1):
            rows.append(measure(v, depth))
            if bar:
                bar.update(i)
    finally:
        if bar and len(rows) < len(variants):
            bar.stream.write("\n")  # an error message starts on a line of its own
    return rows


# --- per-block comparison ------------------------------------------------------------------

@dataclass
class BlockRow:
    name: str
    module: str | None
    cells: list[BlockCount | None]  # one per row (variant); None where the variant lacks the block

    def delta(self, i: int) -> Count:
        """Against the first variant; a missing block counts as zero on either side."""
        a, b = self.cells[0], self.cells[i]
        base, this = (a.count if a else ZERO), (b.count if b else ZERO)
        return Count(this.trainable - base.trainable, this.non_trainable - base.non_trainable,
                     this.macs - base.macs)


ALIGN = ("name", "position")


def align_blocks(rows: list[Row], by: str = "name") -> list[BlockRow]:
    """Blocks matched across variants, in network order. By name: a block only some variants have
    goes after the block that precedes it in the first variant that has it. By position: the i-th
    block of each variant (for specs that name the same blocks differently: mixed0 / Mixed_5b)."""
    if by == "position":
        lists = [[n for n in row.blocks if n != REST] for row in rows]
        out = []
        for i in range(max(map(len, lists), default=0)):
            cells = [row.blocks[names[i]] if i < len(names) else None for row, names in zip(rows, lists)]
            names = list(dict.fromkeys(c.name for c in cells if c is not None))
            modules = list(dict.fromkeys(c.module for c in cells if c is not None))
            out.append(BlockRow(" / ".join(names), " / ".join(modules), cells))
        return out + [BlockRow(REST, None, [row.blocks[REST] for row in rows])]
    order: list[str] = []
    for row in rows:
        at = 0
        for name in row.blocks:
            if name == REST:
                continue
            if name in order:
                at = order.index(name) + 1
            else:
                order.insert(at, name)
                at += 1
    order.append(REST)
    out = []
    for name in order:
        cells = [row.blocks.get(name) for row in rows]
        module = next((c.module for c in cells if c is not None), None)
        out.append(BlockRow(name, module, cells))
    return out


# --- outputs -------------------------------------------------------------------------------

def _plain(v):
    if isinstance(v, bool) or v is None or isinstance(v, (int, float)):
        return v
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return str(v)


def _counts(c: Count) -> dict:
    return {"total": c.params, "trainable": c.trainable, "non_trainable": c.non_trainable}


def to_json(rows: list[Row], blocks: list[BlockRow]) -> dict:
    front = set(pareto(rows))
    return {
        "rows": [{"label": r.label, "spec": r.spec, "network": r.network,
                  "set": {k: _plain(v) for k, v in r.sets.items()},
                  "params": _counts(r.total), "macs": r.total.macs,
                  "inference": {"params": _counts(r.inference), "macs": r.inference.macs},
                  "outputs": {k: list(s) for k, s in r.outputs.items()},
                  "train_only": r.train_only, "depth": r.depth, "pareto": i in front}
                 for i, r in enumerate(rows)],
        "blocks": [{"name": b.name, "module": b.module, "variants": [
            {"label": r.label, "present": c is not None, "block": c.name if c else None,
             "params": _counts(c.count) if c else None, "macs": c.count.macs if c else None,
             "train_only": c.train_only if c else None,
             "delta": {"params": d.params, "macs": d.macs}}
            for i, (r, c) in enumerate(zip(rows, b.cells)) for d in [b.delta(i)]]} for b in blocks],
    }


ROW_FIELDS = ("label", "spec", "network", "params_total", "params_trainable", "params_non_trainable", "macs",
              "inference_params_total", "inference_params_trainable", "inference_params_non_trainable",
              "inference_macs", "depth", "outputs")
BLOCK_FIELDS = ("block", "module", "label", "present", "params_total", "params_trainable",
                "params_non_trainable", "macs", "delta_params", "delta_macs", "train_only")


def write_csv(rows: list[Row], blocks: list[BlockRow] | None, stream) -> None:
    """The variant rows (one column per parameter set, `set.NAME`), or with `blocks`, the per-block
    comparison in long form (one line per block and variant)."""
    import csv
    w = csv.writer(stream, lineterminator="\n")
    if blocks is not None:
        w.writerow(BLOCK_FIELDS)
        for b in blocks:
            for i, (r, c) in enumerate(zip(rows, b.cells)):
                d = b.delta(i)
                if c is None:
                    w.writerow([b.name, b.module or "", r.label, 0, "", "", "", "", d.params, d.macs, ""])
                else:
                    w.writerow([b.name, b.module or "", r.label, 1, c.count.params, c.count.trainable,
                                c.count.non_trainable, c.count.macs, d.params, d.macs, int(c.train_only)])
        return
    keys = _set_keys(rows)
    w.writerow(ROW_FIELDS[:3] + tuple(f"set.{k}" for k in keys) + ROW_FIELDS[3:])
    for r in rows:
        w.writerow([r.label, r.spec, r.network] + [_value(r.sets[k]) if k in r.sets else "" for k in keys]
                   + [r.total.params, r.total.trainable, r.total.non_trainable, r.total.macs,
                      r.inference.params, r.inference.trainable, r.inference.non_trainable, r.inference.macs,
                      r.depth, _outputs_text(r)])


def _set_keys(rows: list[Row]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r.sets if k not in keys]
    return keys


def _value(v) -> str:
    from .report import _value as value
    return value(v)


def _sets_text(sets: dict) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in sets.items())


def _outputs_text(r: Row) -> str:
    return "; ".join(f"{k} {'x'.join(map(str, s))}" + (" (train)" if k in r.train_only else "")
                     for k, s in r.outputs.items())


def pct_text(new: int, base: int) -> str:
    """'+12.5%', '-0.034%' (small changes keep two significant digits), '=' or 'new'."""
    if base == 0:
        return "new" if new else "="
    if new == base:
        return "="
    pct = (new - base) * 100 / base
    return f"{pct:+.1f}%" if abs(pct) >= 1 else f"{pct:+.2g}%"


def _signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def _tables(rows: list[Row], blocks: list[BlockRow] | None) -> list[tuple[str | None, list[str], list[list[str]], str]]:
    """(title, header, body, alignment) for each table; text and markdown render the same tables."""
    base = rows[0]
    show_spec = len({r.spec for r in rows}) > 1
    show_out = len({_outputs_text(r) for r in rows}) > 1
    has_train = any(r.total != r.inference for r in rows)
    # a `set` column when labels do not already say what each variant sets (named variants)
    show_set = any(_sets_text(r.sets).replace(",", "") not in r.label for r in rows)
    head = ["variant"] + (["spec"] if show_spec else []) + (["set"] if show_set else []) + ["params", "trainable", "MACs"]
    if has_train:
        head += ["inference params", "inference MACs"]
    head += ["depth", "params vs first", "MACs vs first"] + (["outputs"] if show_out else [])
    body = []
    for r in rows:
        line = [r.label] + ([r.spec] if show_spec else []) + ([_sets_text(r.sets)] if show_set else []) + [
            f"{r.total.params:,}", f"{r.total.trainable:,}", f"{r.total.macs:,}"]
        if has_train:
            line += [f"{r.inference.params:,}", f"{r.inference.macs:,}"]
        # compare like with like: inference figures when some variant has training-only heads
        p, bp = (r.inference, base.inference) if has_train else (r.total, base.total)
        line += [str(r.depth), pct_text(p.params, bp.params), pct_text(p.macs, bp.macs)]
        if show_out:
            line.append(_outputs_text(r))
        body.append(line)
    align = "l" * (1 + show_spec + show_set) + "r" * (len(head) - 1 - show_spec - show_set - show_out) + "l" * show_out
    tables = [(None, head, body, align)]
    if blocks is None:
        return tables
    for what, get in (("params", lambda c: c.params), ("MACs", lambda c: c.macs)):
        head = ["block", "module", rows[0].label] + [x for r in rows[1:] for x in (r.label, "Δ")]
        body = []
        for b in blocks:
            line = [b.name + (" *" if any(c and c.train_only for c in b.cells) else ""), b.module or ""]
            for i, c in enumerate(b.cells):
                line.append(f"{get(c.count):,}" if c else "—")
                if i:
                    line.append(_signed(get(b.delta(i))))
            body.append(line)
        tot = ["total", ""]
        for i, r in enumerate(rows):
            tot.append(f"{get(r.total):,}")
            if i:
                tot.append(_signed(get(r.total) - get(base.total)))
        body.append(tot)
        tables.append((f"per-block {what} (Δ against '{base.label}'; — = block absent, * = training only)",
                       head, body, "ll" + "r" * (len(head) - 2)))
    return tables


def to_text(rows: list[Row], blocks: list[BlockRow] | None) -> str:
    out = []
    for title, head, body, align in _tables(rows, blocks):
        widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
        line = lambda cells: "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                                       for c, w, a in zip(cells, widths, align)).rstrip()
        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        if title:
            out += ["", title]
        out += [rule, line(head), rule] + [line(x) for x in body] + [rule]
    out += _footer(rows)
    return "\n".join(out)


def to_markdown(rows: list[Row], blocks: list[BlockRow] | None) -> str:
    out = []
    for title, head, body, align in _tables(rows, blocks):
        if title:
            out += ["", f"**{title}**", ""]
        esc = lambda s: s.replace("|", "\\|")
        out.append("| " + " | ".join(esc(h) for h in head) + " |")
        out.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
        out += ["| " + " | ".join(esc(c) for c in x) + " |" for x in body]
    foot = _footer(rows)
    if foot:
        out += [""] + foot
    return "\n".join(out)


def _footer(rows: list[Row]) -> list[str]:
    out = []
    if len({_outputs_text(r) for r in rows}) == 1:
        out.append(f"outputs: {_outputs_text(rows[0])}")
    if len({r.spec for r in rows}) == 1:
        out.append(f"spec: {rows[0].spec}")
    return out


def pareto(rows: list[Row], inference: bool = True) -> list[int]:
    """Indices of the rows no other row beats on both params and MACs (both lower or equal, one lower)."""
    pts = [((r.inference if inference else r.total).params, (r.inference if inference else r.total).macs)
           for r in rows]
    return [i for i, (p, m) in enumerate(pts)
            if not any(q <= p and n <= m and (q < p or n < m) for q, n in pts)]


# --- fit -----------------------------------------------------------------------------------

UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_budget(text: str, flag: str) -> int:
    """'10M' -> 10_000_000 (K, M, G, T are powers of 1000; plain numbers and 1.5e6 work too)."""
    s = text.strip().replace("_", "").replace(",", "")
    unit = s[-1:].lower() if s[-1:].isalpha() and s[-1:].lower() in UNITS else ""
    num = s[:-1] if unit else s
    try:
        value = Decimal(num.strip()) * UNITS[unit]
    except InvalidOperation:
        raise UsageError(f"{flag} {text}: expected a number with an optional K, M, G or T, e.g. 10M") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"{flag} {text}: the budget must be a positive number")
    return int(value.to_integral_value(ROUND_FLOOR))  # counts are integers: n <= 5.5 iff n <= 5


@dataclass(frozen=True)
class Probe:
    value: int | float
    count: Count  # as the budget counts it (total or inference)
    signature: tuple  # identifies the network: equal signatures, same network
    train_heads: bool = False  # the network has training-only heads (total and inference differ)

    def metric(self, what: str, trainable: bool) -> int:
        if what == "macs":
            return self.count.macs
        return self.count.trainable if trainable else self.count.params


@dataclass
class FitResult:
    name: str
    best: Probe
    short: int | float  # the shortest decimal giving the same network as `best`
    next: Probe | None  # the smallest value giving the next network (over budget); None if --max fits
    metric: str  # "params" or "macs"
    budget: int
    trainable: bool
    inference: bool
    probes: list[Probe]
    violations: list[tuple[Probe, Probe]]  # pairs where a larger value measured less

    @property
    def monotonic(self) -> bool:
        return not self.violations


class _Fitter:
    def __init__(self, spec: Spec, name: str, metric: str, budget: int, trainable: bool,
                 inference: bool, sets: dict):
        self.spec, self.name, self.what, self.budget = spec, name, metric, budget
        self.trainable, self.inference, self.sets = trainable, inference, sets
        self.cache: dict = {}

    def probe(self, value) -> Probe:
        if value not in self.cache:
            net = build(Variant(f"{self.name}={_num(value)}", self.spec, {**self.sets, self.name: value}))
            sig = (tuple(net.shapes.items()), tuple(net.counts.values()))
            full, inf = net.total(), net.total(inference=True)
            self.cache[value] = Probe(value, inf if self.inference else full, sig, full != inf)
        return self.cache[value]

    def fits(self, value) -> bool:
        return self.probe(value).metric(self.what, self.trainable) <= self.budget


def _num(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def fit(spec: Spec, name: str, metric: str, budget: int, *, lo=None, hi=None, sets: dict | None = None,
        trainable: bool = False, inference: bool = False) -> FitResult:
    """The largest value of the numeric parameter `name` whose network fits the budget, assuming the
    count grows with the value. Exact under the spec's rounding: for an int, bisection to adjacent
    integers; for a float, bisection to adjacent floats, so `best` is the largest float that still
    gives the fitting network and `next` the smallest that gives the next one."""
    sets = dict(sets or {})
    _check_names(spec, [name] + list(sets), "")
    if name in sets:
        raise UsageError(f"'{name}' is the parameter to vary; do not also --set it")
    default = spec.params[name]
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise UsageError(f"fit varies a numeric parameter; '{name}' defaults to {_value(default)}")
    kind = type(default)
    lo, hi = (_bound(x, kind, name, flag) for x, flag in ((lo, "--min"), (hi, "--max")))
    if lo is not None and hi is not None and lo >= hi:
        raise UsageError(f"--min {_num(lo)} must be below --max {_num(hi)}")
    f = _Fitter(spec, name, metric, budget, trainable, inference, sets)
    over = lambda v: f"{name}={_num(v)} gives {f.probe(v).metric(metric, trainable):,} {metric}, over the budget of {budget:,}"

    if lo is not None and not f.fits(lo):
        raise UsageError(f"nothing fits: {over(lo)}")
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


def _bound(x, kind, name, flag):
    if x is None:
        return None
    try:
        return kind(x) if kind is float else int(str(x))
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise UsageError(f"{flag} {x}: '{name}' is {what}") from None


def _bracket(f: _Fitter, lo, hi, default, kind, over):
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
                e.hint = e.hint or "searching upwards for the budget's edge; bound it with --max"
                raise
            lo = cur
        raise UsageError(f"{name}={_num(lo)} still fits: the count does not grow with '{name}' "
                         f"enough to reach the budget; give --max")
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
                first = e.message if isinstance(e, SpecError) else str(e)
                raise UsageError(f"nothing fits: {over(hi)}, and {name}={_num(cur)} does not build "
                                 f"({first.splitlines()[0]})") from None
            hi = cur
        raise UsageError(f"nothing fits: {over(cur)}")
    return lo, hi


def _result(f: _Fitter, best, nxt) -> FitResult:
    b = f.probe(best)
    short = best
    if isinstance(best, float):
        # the shortest decimal at or below `best` that gives the same network (0.59 beats 0.5937499999)
        d = Decimal(repr(best))
        for digits in range(0, 18):
            cand = float(d.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_FLOOR))
            try:
                same = f.probe(cand).signature == b.signature
            except (SpecError, UsageError):  # e.g. 0 channels: not this network anyway
                continue
            if same:
                short = cand
                break
    probes = sorted(f.cache.values(), key=lambda p: p.value)
    m = lambda p: p.metric(f.what, f.trainable)
    violations = [(p, q) for p, q in zip(probes, probes[1:]) if m(q) < m(p)]
    return FitResult(f.name, b, short, f.probe(nxt) if nxt is not None else None, f.what, f.budget,
                     f.trainable, f.inference, probes, violations)


def fit_json(r: FitResult) -> dict:
    p = lambda pr: {"value": pr.value, "params": _counts(pr.count), "macs": pr.count.macs}
    return {"name": r.name, **p(r.best), "short": r.short,
            "next": p(r.next) if r.next else None,
            "budget": {"metric": r.metric, "limit": r.budget,
                       "counts": ("trainable " if r.trainable and r.metric == "params" else "")
                       + ("inference" if r.inference else "total")},
            "monotonic": r.monotonic, "builds": len(r.probes)}
