"""`incdsl fit SPEC --params 10M --vary NAME`: the largest value that fits one or more budgets;
`--scale` for compound scaling, several `--vary NAME=RANGE` for the Pareto set of a grid."""
from __future__ import annotations

import json
import re
import sys

from ...errors import UsageError
from ...text import number_text
from .spec_args import add_spec_args, parse_sets
from .summary import add_budget_options

BUDGETS = {"params": "params budget: 10M, 500K, 2.5e6 (K/M/G = 10^3/10^6/10^9)",
           "macs": "MACs budget: 2G, 800M",
           "memory": "training-step memory budget: 16GiB, 80GB (the summary's estimate at --batch, "
                     "--precision, --optimizer)",
           "latency": "roofline bound of one forward pass at --batch on --device (default h200): 10ms, 500us"}


def add_parser(sub) -> None:
    """Add `incdsl fit SPEC --params 10M --vary NAME` and its options to `sub` (the argparse subparsers of
    `cli.build_parser`); its handler is `run`."""
    p = sub.add_parser("fit", help="the largest value of a parameter whose network fits a budget",
                       description="Search the largest value of a numeric network parameter whose network "
                       "fits every budget given, exactly under the spec's integer rounding: the answer "
                       "fits, the next step does not. Assumes the measure grows with the parameter, and "
                       "says so if the probes show otherwise. Each budget may be written `--params <= 10M`.")
    add_spec_args(p)
    for name, help_text in BUDGETS.items():
        p.add_argument(f"--{name}", nargs="+", metavar="[<=] N", help=help_text)
    p.add_argument("--vary", metavar="NAME[=RANGE]", action="append", default=[],
                   help="the numeric parameter to search (or batch, for --memory and --latency); "
                        "repeat as NAME=V1,V2 or NAME=START:STOP:STEP for the Pareto set of a grid")
    p.add_argument("--scale", metavar="NAME=BASE,...", help="compound scaling: the largest phi with "
                   "NAME = default x BASE^phi for every NAME (EfficientNet), e.g. width=1.1,size=1.15")
    p.add_argument("--min", metavar="X",
                   help="smallest value to consider (default: search down from the default)")
    p.add_argument("--max", metavar="Y",
                   help="largest value to consider (default: search up from the default)")
    p.add_argument("--trainable", action="store_true", help="--params counts trainable params only")
    p.add_argument("--inference", action="store_true", help="count without the training-only heads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_budget_options(p)
    p.set_defaults(run=run, batch=None)  # None: not given (1 image), so `--vary batch` can refuse it
    # `--memory -1GiB` is a (bad) limit, not an unknown option: let argparse hand it to parse_limit
    p._negative_number_matcher = re.compile(r"^-[0-9.][0-9.eE_+-]*[A-Za-zµ]*$")


def _budgets(args) -> dict:
    from .flag_values import parse_limit
    out = {}
    for metric in BUDGETS:
        words = getattr(args, metric)
        if words is None:
            continue
        if words[0] == "<=":
            words = words[1:]
        if len(words) != 1:
            raise UsageError(f"--{metric} expects one limit, optionally after <=, e.g. --{metric} <= 10M")
        out[metric] = parse_limit(metric, words[0])
    if not out:
        raise UsageError("give a budget: --params, --macs, --memory or --latency")
    return out


def run(args) -> int:
    """Run `incdsl fit SPEC --params 10M --vary NAME` with the parsed command line `args`; returns the exit
    code (0 when fine).

    Dispatches to one `--vary NAME`, a `--vary NAME=RANGE` grid or `--scale` (compound scaling). Raises
    `UsageError` (exit 2) for options that do not go together, `NothingFits` (exit 1) when no value fits the
    budgets.
    """
    from ...analysis.fitting import Measure
    from ...network import Spec

    budgets = _budgets(args)
    names = [v.partition("=")[0].strip() for v in args.vary]
    if args.batch is not None and "batch" in names:
        raise UsageError(
            f"--batch {args.batch} and --vary batch: the batch is what is varied; leave out --batch")
    if args.scale and (args.min is not None or args.max is not None):
        raise UsageError("--min and --max bound one --vary NAME; --scale searches phi (leave them out)")
    if [v for v in args.vary if "=" in v] and (args.min is not None or args.max is not None):
        raise UsageError(
            "--min and --max bound one --vary NAME; a grid's --vary NAME=RANGE gives its own values")
    args.batch = 1 if args.batch is None else args.batch
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    device = None
    if args.device:
        from .flag_values import parse_device
        device = parse_device(args.device)
    measure = Measure(args.batch, args.precision, args.optimizer, device)
    grid = [v for v in args.vary if "=" in v]
    plain = [v for v in args.vary if "=" not in v]
    if args.scale and args.vary:
        raise UsageError("--scale scales its own parameters; leave out --vary")
    if not args.scale and (not args.vary or (plain and (len(args.vary) > 1))):
        raise UsageError("give one --vary NAME, several --vary NAME=RANGE, or --scale NAME=BASE,...")
    spec = Spec(args.spec, args.network)
    sets = parse_sets(args.set)
    common = dict(sets=sets, measure=measure, trainable=args.trainable, inference=args.inference)
    if args.scale:
        from .fit_show import show_compound
        from .flag_values import parse_scale
        return show_compound(args, spec, parse_scale(args.scale), budgets, common)
    if grid:
        from .fit_show import show_grid
        from .flag_values import parse_sweep
        return show_grid(args, spec, [parse_sweep(v, "--vary") for v in grid], budgets, common)
    return _single(args, spec, plain[0], budgets, common)


def _single(args, spec, name: str, budgets: dict, common: dict) -> int:
    from ...analysis.fitting import fit, fit_json
    from .fit_show import given, line, scope, what

    metric = next(iter(budgets))
    r = fit(spec, name, metric, budgets[metric], lo=args.min, hi=args.max, budgets=budgets, **common)
    if not r.monotonic:
        p, q = r.violations[0]
        m = lambda pr: pr.metric(r.metric, r.trainable)
        print(f"incdsl fit: warning: {r.metric} do not grow with {r.name}: {r.name}={p.value!r} gives "
              f"{m(p):,} but {r.name}={q.value!r} gives {m(q):,}; the answer assumes they do",
              file=sys.stderr)
    if args.json:
        print(json.dumps(fit_json(r), indent=1))
        return 0
    print(f"{args.spec}{given(args)}: largest {r.name} with "
          f"{what(budgets, r.trainable)}{scope(r.best, r.inference)}")
    # the shortest decimals that build each network: 0.634 fits, 0.635 is over (not 0.6343749999999999)
    print(f"  {r.name} = {number_text(r.short)}: {line(r.best, budgets)}  <- fits")
    if r.next is None:
        print("  it is the --max you gave; larger values were not tried")
    else:
        print(f"  next step: {r.name} = {number_text(r.next_short)}: {line(r.next, budgets)}  <- over budget")
    return 0
