"""`incdsl fit SPEC (--params 10M | --macs 2G) --vary NAME`: the largest value that fits a budget."""
from __future__ import annotations

import json
import sys

from ..cli import add_spec_args, parse_sets


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="the largest value of a parameter whose network fits a budget",
                       description="Search the largest value of a numeric network parameter whose network "
                       "fits a params or MACs budget, exactly under the spec's integer rounding: the answer "
                       "fits, the next step does not. Assumes the count grows with the parameter, and says "
                       "so if the probes show otherwise.")
    add_spec_args(p)
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--params", metavar="N", help="params budget: 10M, 500K, 2.5e6 (K/M/G = 10^3/10^6/10^9)")
    budget.add_argument("--macs", metavar="N", help="MACs budget: 2G, 800M")
    p.add_argument("--vary", metavar="NAME", required=True, help="the numeric network parameter to search")
    p.add_argument("--min", metavar="X", help="smallest value to consider (default: search down from the default)")
    p.add_argument("--max", metavar="Y", help="largest value to consider (default: search up from the default)")
    p.add_argument("--trainable", action="store_true", help="--params counts trainable params only")
    p.add_argument("--inference", action="store_true", help="count without the training-only heads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..fit import fit, fit_json, parse_budget
    from ..network import Spec

    metric, text = ("params", args.params) if args.params is not None else ("macs", args.macs)
    budget = parse_budget(text, f"--{metric}")
    spec = Spec(args.spec, args.network)
    r = fit(spec, args.vary, metric, budget, lo=args.min, hi=args.max, sets=parse_sets(args.set),
            trainable=args.trainable, inference=args.inference)
    if not r.monotonic:
        p, q = r.violations[0]
        m = lambda pr: pr.metric(r.metric, r.trainable)
        print(f"incdsl fit: warning: {r.metric} do not grow with {r.name}: {r.name}={p.value!r} gives "
              f"{m(p):,} but {r.name}={q.value!r} gives {m(q):,}; the answer assumes they do", file=sys.stderr)
    if args.json:
        print(json.dumps(fit_json(r), indent=1))
        return 0
    what = ("trainable " if r.trainable and metric == "params" else "") + metric
    if r.inference:
        scope = " (inference: without the training-only heads)"
    elif r.best.train_heads:
        scope = " (including the training-only heads; --inference leaves them out)"
    else:
        scope = ""
    print(f"{args.spec}: largest {r.name} with {what} <= {budget:,}{scope}")
    # the shortest decimals that build each network: 0.634 fits, 0.635 is over (not 0.6343749999999999)
    print(f"  {r.name} = {_num(r.short)}: {_line(r.best)}  <- fits")
    if r.next is None:
        print("  it is the --max you gave; larger values were not tried")
    else:
        print(f"  next step: {r.name} = {_num(r.next_short)}: {_line(r.next)}  <- over budget")
    return 0


def _num(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _line(p) -> str:
    c = p.count
    return f"{c.params:,} params ({c.trainable:,} trainable), {c.macs:,} MACs"
