"""Comparing variants of specs (`incdsl compare`): planning, building and measuring them, aligning blocks.

A variant is a spec plus parameter overrides. Each spec is parsed once (`Spec`) and elaborated
per variant (`Spec.build`), so a sweep of a thousand variants costs a thousand elaborations and
no parsing. Only plain numbers are kept per variant (`Row`), never the networks themselves.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field

from ..errors import Note, OptionError, SpecError, UsageError, did_you_mean
from ..network import Network, Spec
from ..ops import ZERO, Count
from ..text import sets_text

PROGRESS_MIN = 30  # grids up to this size finish too fast for a progress bar to help


# --- what to build -------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    """One variant to build: a `label` for the tables, the parsed `spec` (a `network.Spec`) and `sets`,
    its parameter overrides (strings from the command line or values from a spec's `variant`).
    """
    label: str
    spec: Spec
    sets: dict  # overrides: strings from the command line or values from a spec's `variant`


def plan(specs: list[Spec], sets: dict | None = None, sweeps: list[tuple[str, list]] = (),
         variants: list[tuple[str, dict | None]] = (), all_variants: bool = False) -> list[Variant]:
    """The variants to build: for each spec, each base (the defaults, the --variant list, or every
    declared variant) crossed with the cartesian grid of the sweeps, all on top of `sets`."""
    sets = dict(sets or {})
    names = [n for n, _ in sweeps]
    for n in names:
        if names.count(n) > 1:
            raise OptionError("{sweep} {name} is given twice; list all its values in one {sweep}", name=n)
        if n in sets:
            raise OptionError("'{name}' is both swept and fixed with {set}", words={"set": "an argument"},
                              name=n)
    for n, vals in sweeps:
        seen_values: dict = {}
        for v in vals:
            key = _value_key(v)
            if key in seen_values:
                raise OptionError("{sweep} {name} lists the same value twice ({first} and {value}): one "
                                  "variant would be built and trained twice", name=n, first=seen_values[key],
                                  value=v)
            seen_values[key] = v
    labels = [label for label, _ in variants]
    for label in labels:
        if labels.count(label) > 1:
            raise OptionError("{variant} label '{label}' is used twice", label=label)
    grid = list(itertools.product(*[vals for _, vals in sweeps]))
    multi = len(specs) > 1
    # several specs: labels start with the network's name, or the file's where two networks share a name
    nets = [_spec_name(s) for s in specs]
    prefixes = nets if len(set(nets)) == len(nets) else [s.path for s in specs]
    out: list[Variant] = []
    for spec, prefix in zip(specs, prefixes):
        check_names(spec, list(sets) + names, "")
        bases = _bases(spec, variants, all_variants)
        for base_label, base_sets in bases:
            check_names(spec, base_sets, f"variant '{base_label}'" if base_label else "")
            for k in base_sets:
                if k in sets:
                    raise OptionError("'{name}' is set both by {set} and by variant '{label}'",
                                      words={"set": "an argument"},
                                      name=k, label=base_label)
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
            raise OptionError("two variants are both labelled '{label}'"
                              + ("; is a spec listed twice?" if len(specs) > len({s.path for s in specs})
                                 else "; give them distinct labels"), label=v.label)
        seen.add(v.label)
    return out


def _value_key(value):
    """What makes two swept values the same: 0.125 and 0.1250 are one number; other text is
    compared as written."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _spec_name(spec: Spec) -> str:
    from ..elaborate.statements import pick_network
    return pick_network(spec.program, spec.network_name).name


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
                raise OptionError(
                    "{path} declares no variant '{label}' ({known}); to set parameters write {variant} "
                                  "LABEL:NAME=VALUE,...", words={"variant": "a variant"}, path=spec.path,
                                  label=label,
                                  known=hint if hint else f"it declares: {known}")
            sets = dict(declared[label])
        if all_variants and label in declared and sets == declared[label]:
            continue  # already there
        bases.append((label, sets))
    return bases or [("", {})]


def check_names(spec: Spec, names, where: str) -> None:
    """Raise `UsageError` naming the first of `names` that is not a parameter of `spec` (with a
    did-you-mean hint or the list of its parameters); `where` (e.g. "variant 'small'") prefixes it."""
    known = spec.params
    for n in names:
        if n not in known:
            hint = did_you_mean(n, known)
            raise UsageError(f"{where + ': ' if where else ''}{spec.path} has no parameter '{n}'"
                             + (f"; {hint}" if hint else f" (its parameters: {', '.join(known) or 'none'})"))


# --- building and measuring --------------------------------------------------------------

@dataclass(frozen=True)
class BlockCount:
    """One module call's counts in one variant: its hierarchical `name`, the `module` it calls (None for
    REST, the layers outside every block), its params and MACs (`Count`, one image) and whether it is
    `train_only`.
    """
    name: str
    module: str | None
    count: Count
    train_only: bool


@dataclass
class Row:
    """One measured variant, plain numbers only (the network is not kept): label, spec path, network
    name, `sets` (the overridden parameters with their resolved values), `total` and `inference`
    counts (params and MACs for one image; inference leaves training-only heads out), output shapes
    (NHWC, batch left out), the names of the training-only heads, `depth` (layers with weights on
    the longest path, `Network.depth`), and the per-block counts (`blocks`, name -> `BlockCount`,
    REST last).
    """
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
    sets = sets_text(variant.sets)
    where = f"variant '{variant.label}'" + (
        f" ({sets})" if sets and sets.replace(",", "") not in variant.label else ""
    )
    try:
        return variant.spec.build(**variant.sets)
    except SpecError as e:
        if variant.sets:  # the spec as written needs no note
            e.notes.append(Note(f"while building {where} of {variant.spec.path}"))
        raise
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None


def measure(variant: Variant, depth: int = 1) -> Row:
    """Build `variant` and measure it as a `Row`, with blocks down to `depth` levels of module calls.

    Raises `SpecError` (with a note naming the variant) or `UsageError` when it does not build.
    """
    net = build(variant)
    return row_of(net, variant.label, variant.sets, depth)


def row_of(net: Network, label: str, sets: dict, depth: int = 1) -> Row:
    """The `Row` of a built network `net`: its counts and outputs, `sets` (the names of the overridden
    parameters, read back resolved from `net.params`), and its module calls down to `depth` levels,
    each before its insides; REST holds the total less the outermost chosen blocks.
    """
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
            rest = Count(rest.trainable - c.trainable, rest.non_trainable - c.non_trainable,
                         rest.macs - c.macs)
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
        """Redraw the bar for `done` of `total` variants built (only when the whole percent changes); ends the
        line at the last one."""
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
    """One block aligned across variants (`align_blocks`): its `name`, its `module` and one `cells` entry
    per row (variant): its `BlockCount`, or None where the variant lacks the block.
    """
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


def pareto(rows: list[Row], inference: bool = True) -> list[int]:
    """Indices of the rows no other row beats on both params and MACs (both lower or equal, one lower)."""
    pts = [((r.inference if inference else r.total).params, (r.inference if inference else r.total).macs)
           for r in rows]
    return [i for i, (p, m) in enumerate(pts)
            if not any(q <= p and n <= m and (q < p or n < m) for q, n in pts)]
