"""`incdsl summary SPEC`: layers, shapes, params and MACs, with memory, a roofline bound, another
tool's counting convention and backbone taps on request."""
from __future__ import annotations

import json

from ...errors import UsageError
from .spec_args import add_spec_args, load_net


def add_parser(sub) -> None:
    """Add `incdsl summary SPEC` and its options to `sub` (the argparse subparsers of `cli.build_parser`); its
    handler is `run`."""
    p = sub.add_parser("summary", help="layers, shapes, params and MACs")
    add_spec_args(p)
    p.add_argument("--depth", type=int, metavar="N", help="fold modules below depth N")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--rf", action="store_true", help="add each row's receptive field and effective stride")
    add_budget_options(p)
    p.add_argument("--memory", action="store_true", help="memory columns and totals (parameter bytes, "
                   "activations kept for backward at --batch, the training step)")
    p.add_argument(
        "--convention",
        metavar="NAME",
        help="count as another tool does: fvcore, ptflops, "
        "ptflops-aten, thop, torchinfo, torchvision (the README's counting section says what each counts)",
    )
    p.set_defaults(run=run)


def add_budget_options(p) -> None:
    """The options that say how memory and time are estimated (shared with `fit`)."""
    from ...passes.memory import OPTIMIZER_SLOTS, PRECISIONS
    p.add_argument("--batch", type=int, default=1, metavar="B", help="images per step (default 1)")
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="float32",
                   help="variable and activation dtypes (default float32; mixed_* keep float32 variables)")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZER_SLOTS), default="momentum",
                   help="optimizer whose state the training step holds (default momentum: SGD with momentum)")
    p.add_argument("--device", metavar="NAME|FLOPS,BYTES_PER_S",
                   help="roofline bound on h200, h100, cpu, or your own peak FLOP/s and bandwidth")


def run(args) -> int:
    """Run `incdsl summary SPEC` with the parsed command line `args`; returns the exit code (0 when fine).

    Raises `UsageError` (exit 2) for `--depth` or `--batch` below 1 or a bad `--device`, `SpecError` (exit 1)
    for a bad spec.
    """
    from ...analysis import summary_extras as extras

    if args.depth is not None and args.depth < 1:
        raise UsageError("--depth must be at least 1")
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    device = None
    if args.device:
        from .flag_values import parse_device
        device = parse_device(args.device)
    conv = None
    if args.convention:
        from ...analysis.conventions import check, totals
        check(args.convention)  # before building: a usage error is exit 2
    net = load_net(args)
    if args.convention:
        conv = totals(net, args.convention)
    if args.json:
        data = net.report(args.batch, args.precision, args.optimizer)
        if conv:
            data["convention"] = conv
        if device:
            data["roofline"] = extras.roofline_json(net, device, args.batch, args.precision)
        print(json.dumps(data, indent=1))
        return 0
    columns, footer = [], []
    if args.memory:
        c, f = extras.memory_columns(net, args.batch, args.precision, args.optimizer)
        columns += c
        footer += f
    if device:
        c, f = extras.roofline_columns(net, device, args.batch, args.precision)
        columns += c
        footer += f
    if conv:
        footer.append(f"{conv['name']}: {conv['inference']:,} (inference; {conv['total']:,} with every head)"
                      + (f"; torchvision prints {conv['printed']} GFLOPS" if "printed" in conv else ""))
    print(net.table(args.depth, rf=args.rf, columns=columns, footer=footer,
                    ops=conv["layers"] if conv else None,
                    ops_label=f"{conv['name']} ops" if conv else "MACs"))
    return 0
