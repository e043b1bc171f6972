"""How `incdsl fit` prints compound scaling and the Pareto set of a grid (text and JSON)."""
from __future__ import annotations

import json

from ..fit import fmt_amount, probe_json


def what(budgets: dict, trainable: bool) -> str:
    parts = []
    for m, lim in budgets.items():
        label = ("trainable " if trainable and m == "params" else "") + m
        parts.append(f"{label} <= {fmt_amount(m, lim) if m in ('memory', 'latency') else f'{lim:,}'}")
    return " and ".join(parts)


def scope(best, inference: bool) -> str:
    if inference:
        return " (inference: without the training-only heads)"
    if best.train_heads:
        return " (including the training-only heads; --inference leaves them out)"
    return ""


def line(p, budgets: dict) -> str:
    c = p.count
    out = f"{c.params:,} params ({c.trainable:,} trainable), {c.macs:,} MACs"
    for m in ("memory", "latency"):
        if m in budgets:
            out += f", {m} {fmt_amount(m, p.metric(m, False))}"
    return out


def _values(values: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def show_compound(args, spec, bases: dict, budgets: dict, common: dict) -> int:
    from ..scaling import compound

    r = compound(spec, bases, budgets, **common)
    if args.json:
        print(json.dumps({"scale": bases, "phi": r.phi, "short": r.short, "values": r.values,
                          **probe_json(r.best), "budgets": budgets,
                          "next": {"phi": r.next_phi, "short": r.next_short, "values": r.next_values,
                                   **probe_json(r.next)}}, indent=1))
        return 0
    rule = ", ".join(f"{k} = {spec.params[k]} x {b:g}^phi" for k, b in bases.items())
    print(f"{args.spec}: largest phi with {what(budgets, common['trainable'])}{scope(r.best, common['inference'])}")
    print(f"  compound scaling: {rule} (integers rounded)")
    print(f"  phi = {r.short!r}: {_values(r.values)}: {line(r.best, budgets)}  <- fits")
    print(f"  next step: phi = {r.next_short!r}: {_values(r.next_values)}: {line(r.next, budgets)}  <- over budget")
    return 0


def show_grid(args, spec, ranges, budgets: dict, common: dict) -> int:
    from ..scaling import pareto_grid

    points, front = pareto_grid(spec, ranges, budgets, **common)
    if args.json:
        print(json.dumps({"budgets": budgets, "tried": len(points), "fit": sum(p.fits for p in points),
                          "pareto": [{"set": p.values, **probe_json(p.probe)} for p in front]}, indent=1))
        return 0
    print(f"{args.spec}: {len(points)} variants tried, {sum(p.fits for p in points)} fit "
          f"{what(budgets, common['trainable'])}{scope(points[0].probe, common['inference'])}")
    print(f"Pareto set ({len(front)}: no other fitting variant is as large in every varied parameter):")
    names = [n for n, _ in ranges]
    head = names + ["params", "MACs"] + [m for m in ("memory", "latency") if m in budgets]
    body = [[p.values[n] for n in names] + [f"{p.probe.count.params:,}", f"{p.probe.count.macs:,}"]
            + [fmt_amount(m, p.probe.metric(m, False)) for m in ("memory", "latency") if m in budgets]
            for p in front]
    widths = [max(len(str(r[i])) for r in [head] + body) for i in range(len(head))]
    for r in [head] + body:
        print("  " + "  ".join(str(x).rjust(w) for x, w in zip(r, widths)))
    return 0
