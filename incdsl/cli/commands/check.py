"""`incdsl check`, `incdsl expand` and `incdsl list`: the three commands that only read a spec (or
the library) and print."""
from __future__ import annotations

import sys

from .spec_args import add_spec_args, load_net


def add_parser(sub) -> None:
    """Add `check`, `expand` and `list` to `sub` (the argparse subparsers of `cli.build_parser`)."""
    p = sub.add_parser("check", help="parse and shape-check a spec")
    add_spec_args(p)
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("expand", help="the flat, macro-expanded network, one layer per line")
    add_spec_args(p)
    p.set_defaults(run=cmd_expand)

    p = sub.add_parser("list", help="the reference specs that ship with incdsl")
    p.set_defaults(run=cmd_list)


def cmd_check(args) -> int:
    """`incdsl check SPEC`: parse and shape-check; prints layers, params and MACs (inference totals).

    Unused names are warned about and target notes printed on stderr, with their file:line:col.
    Returns the exit code 0; a bad spec raises `SpecError` (exit 1 through `main`).
    """
    net = load_net(args)
    inf = net.total(inference=True)
    heads = len([h for h in net.heads if h.train_only])
    extra = f", {heads} training-only head{'s' * (heads != 1)}" if heads else ""
    print(f"{args.spec}: ok: network {net.name}, {len(net.layers)} layers, {inf.params:,} params, "
          f"{inf.macs:,} MACs (inference){extra}")
    for name in net.graph.unused:
        where = net.graph.unused_spans.get(name) or args.spec
        print(f"{where}: warning: '{name}' reaches no output and is left out", file=sys.stderr)
    from ...backends.targets import target_notes
    from .flags import FLAGS
    for note in target_notes(net):
        print(f"{note.span or args.spec}: note: {note.message.worded(FLAGS)}", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    """`incdsl list`: prints the reference specs that ship with incdsl (name, what it matches, aliases).
    Returns 0."""
    from ...frontend.library import LIBRARY, REFERENCES
    width = max(len(r.name) for r in REFERENCES)
    for r in REFERENCES:
        also = f"  (also: {', '.join(r.aliases)})" if r.aliases else ""
        print(f"{r.name:<{width}}  {r.matches}{also}")
    print(f"\nfiles in {LIBRARY.resolve()}; use a name anywhere a spec path goes: incdsl summary v3")
    return 0


def cmd_expand(args) -> int:
    """`incdsl expand SPEC`: prints the flat, macro-expanded network (`Network.expand`), one layer per line.
    Returns 0."""
    print(load_net(args).expand())
    return 0
