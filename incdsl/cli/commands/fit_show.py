"""How `incdsl fit` prints compound scaling and the Pareto set of a grid (text and JSON)."""
from __future__ import annotations

import json

from ...analysis.fitting import fmt_amount, probe_json


def what(budgets: dict, trainable: bool) -> str:
    """The budgets as header text: `params <= 10,000,000 and ...` ("trainable params" when `trainable`; memory
    and latency with their units, `fitting.fmt_amount`)."""
    parts = []
    for m, lim in budgets.items():
        label = ("trainable " if trainable and m == "params" else "") + m
        parts.append(f"{label} <= {fmt_amount(m, lim) if m in ('memory', 'latency') else f'{lim:,}'}")
    return " and ".join(parts)


def scope(best, inference: bool) -> str:
    """The header's note on which counts the budgets see: inference (training-only heads left out), or total
    with the training-only heads of `best` (a `Probe`) included; empty when it has none."""
    if inference:
        return " (inference: without the training-only heads)"
    if best.train_heads:
        return " (including the training-only heads; --inference leaves them out)"
    return ""


def given(args) -> str:
    """The header's echo of --set (and of a --batch the budgets use): ' (aux=false, batch 64)'."""
    parts = list(args.set or [])
    if args.batch != 1:
        parts.append(f"--batch {args.batch}")
    return f" ({', '.join(parts)})" if parts else ""


def line(p, budgets: dict) -> str:
    """One probe `p` as text: params (trainable), MACs, and the memory (bytes) and latency (seconds) amounts
    the `budgets` ask for."""
    c = p.count
    out = f"{c.params:,} params ({c.trainable:,} trainable), {c.macs:,} MACs"
    for m in ("memory", "latency"):
        if m in budgets:  # enough digits that an amount over the limit prints over it
            out += f", {m} {fmt_amount(m, p.metric(m, False), budgets[m])}"
    return out


def _values(values: dict, other: dict) -> str:
    """Each parameter with 4 significant digits, or as many more as it takes to tell it from the
    same parameter in `other` (the fitting and the next network): width=11.5922 vs width=11.5927."""
    out = []
    for k, v in values.items():
        if not isinstance(v, float):
            out.append(f"{k}={v}")
            continue
        d = 4
        while d < 17 and v != other[k] and f"{v:.{d}g}" == f"{other[k]:.{d}g}":
            d += 1
        out.append(f"{k}={v:.{d}g}")
    return " ".join(out)


def _repeats(reps: dict) -> str:
    return ("; repeats " + ", ".join(f"{k} x{n}" for k, n in reps.items())) if reps else ""


def show_compound(args, spec, bases: dict, budgets: dict, common: dict) -> int:
    """Print `incdsl fit --scale NAME=BASE,...` (text, or JSON with `args.json`): the largest phi whose
    network fits `budgets` (compound scaling, Tan and Le 2019, Section 3.3; `scaling.compound`), its
    scaled parameters and counts, and the next, over-budget step. Returns 0; `NothingFits` (exit 1)
    from `scaling.compound` passes through.
    """
    from ...analysis.scaling import compound

    r = compound(spec, bases, budgets, **common)
    if args.json:
        # "parameters": the scaled spec parameters at the shortest phi ("short"); "repeats": the repeat
        # counts those give; the exact phi's parameters are the same network
        counts = lambda pr: {k: v for k, v in probe_json(pr).items() if k != "value"}
        print(json.dumps({"scale": bases, "phi": r.phi, "short": r.short, "parameters": r.values,
                          "repeats": r.repeats, **counts(r.best), "budgets": budgets,
                          "next": {"phi": r.next_phi, "short": r.next_short, "parameters": r.next_values,
                                   "repeats": r.next_repeats, **counts(r.next)}}, indent=1))
        return 0
    rule = ", ".join(f"{k} = {spec.params[k]} x {b:g}^phi" for k, b in bases.items())
    print(f"{args.spec}{given(args)}: largest phi with {what(budgets, common['trainable'])}"
          f"{scope(r.best, common['inference'])}")
    print(f"  compound scaling: {rule} (integers rounded)")
    print(f"  phi = {r.short!r}: {_values(r.values, r.next_values)}{_repeats(r.repeats)}: "
          f"{line(r.best, budgets)}  <- fits")
    print(
        f"  next step: phi = {r.next_short!r}: {_values(r.next_values, r.values)}{_repeats(r.next_repeats)}: "
          f"{line(r.next, budgets)}  <- over budget")
    return 0


def show_grid(args, spec, ranges, budgets: dict, common: dict) -> int:
    """Print `incdsl fit --vary A=... --vary B=...` (text, or JSON with `args.json`): how many grid
    variants were tried and fit `budgets`, the Pareto set with params, MACs, memory (bytes) and latency
    (seconds), and the variants that did not build. Returns 0; `NothingFits` (exit 1) from
    `scaling.pareto_grid` passes through.
    """
    from ...analysis.scaling import pareto_grid

    points, front = pareto_grid(spec, ranges, budgets, **common)
    if args.json:
        counts = lambda pr: {k: v for k, v in probe_json(pr).items() if k != "value"}
        print(json.dumps({"budgets": budgets, "tried": len(points), "fit": sum(p.fits for p in points),
                          "pareto": [{"set": p.values, **counts(p.probe)} for p in front],
                          "unbuilt": [{"set": p.values, "error": p.error} for p in points if p.error]},
                         indent=1))
        return 0
    print(f"{args.spec}{given(args)}: {len(points)} variants tried, {sum(p.fits for p in points)} fit "
          f"{what(budgets, common['trainable'])}{scope(front[0].probe, common['inference'])}")
    print(f"Pareto set ({len(front)}: no other fitting variant is as large in every varied parameter):")
    names = [n for n, _ in ranges]
    head = names + ["params", "MACs"] + [m for m in ("memory", "latency") if m in budgets]
    body = [[p.values[n] for n in names] + [f"{p.probe.count.params:,}", f"{p.probe.count.macs:,}"]
            + [fmt_amount(m, p.probe.metric(m, False), budgets[m]) for m in ("memory",
                                                                             "latency") if m in budgets]
            for p in front]
    widths = [max(len(str(r[i])) for r in [head] + body) for i in range(len(head))]
    for r in [head] + body:
        print("  " + "  ".join(str(x).rjust(w) for x, w in zip(r, widths)))
    for p in points:
        if p.error:  # a variant that does not build fits nothing; say why
            print(f"  does not build, so does not fit: {', '.join(f'{n}={p.values[n]}' for n in names)}: "
                  f"{p.error}")
    return 0
