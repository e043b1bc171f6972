"""`incdsl diff A B`: the layers and module calls two networks add, remove and change."""
from __future__ import annotations

import json

from .spec_args import parse_sets


def add_parser(sub) -> None:
    """Add `incdsl diff A B` and its options to `sub` (the argparse subparsers of `cli.build_parser`); its
    handler is `run`."""
    p = sub.add_parser(
        "diff",
        help="what changed between two networks: layers, module calls, totals",
        description="Align the layers of two specs by structure and hierarchical name and list "
        "the added, removed and changed layers and module calls with their params and MACs "
        "deltas. --set applies to both, --set-a and --set-b to one side (and win over --set).",
    )
    p.add_argument("a", metavar="A", help="the first .inc file")
    p.add_argument("b", metavar="B", help="the second .inc file")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                   help="override a parameter of both networks (repeatable)")
    p.add_argument("--set-a", metavar="NAME=VALUE", action="append", default=[],
                   help="override a parameter of A only (repeatable)")
    p.add_argument("--set-b", metavar="NAME=VALUE", action="append", default=[],
                   help="override a parameter of B only (repeatable)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object")
    fmt.add_argument("--markdown", action="store_true", help="markdown tables")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl diff A B` with the parsed command line `args`; returns the exit code (0 when fine).

    Prints text, `--json` or `--markdown` (`incdsl.analysis.diff`). Raises `SpecError` (exit 1) for a bad spec
    and `UsageError` (exit 2) for a bad `--set`.
    """
    from ...analysis import diff
    from ...network import load

    sets = parse_sets(args.set)
    na = load(args.a, **{**sets, **parse_sets(args.set_a)})
    nb = load(args.b, **{**sets, **parse_sets(args.set_b)})
    if args.json:
        print(json.dumps(diff.to_json(na, nb), indent=1))
    else:
        print((diff.to_markdown if args.markdown else diff.to_text)(na, nb))
    return 0
