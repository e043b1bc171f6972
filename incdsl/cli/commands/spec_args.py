"""The arguments every spec-reading command shares (`SPEC`, `--set NAME=VALUE`, `--network NAME`)
and the step from them to a checked `Network`. Commands import this module, never `incdsl.cli.main`."""
from __future__ import annotations

import argparse

from ...errors import UsageError
from ...io import note_input


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """`--set NAME=VALUE` items as a dict of name to value text (whitespace stripped; None gives {}).

    Raises `UsageError` (exit 2) for an item without `=`, an empty name or value, or a name given twice.
    """
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--set expects NAME=VALUE, got '{item}'")
        if name.strip() in out:  # the later one would silently win
            raise UsageError(f"--set {name.strip()} is given twice ({out[name.strip()]} and {value.strip()})")
        out[name.strip()] = value.strip()
    return out


def add_spec_args(p: argparse.ArgumentParser, spec: bool = True) -> None:
    """Add the spec arguments a command shares to `p`: the positional `spec` (unless `spec` is false), `--set
    NAME=VALUE` (repeatable) and `--network NAME`."""
    if spec:
        p.add_argument("spec", help="the .inc file")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                   help="override a network parameter (repeatable), e.g. --set width=0.75")
    p.add_argument("--network", metavar="NAME", help="which network, if the file has several")


def load_net(args):
    """The checked `Network` for a command's `args` (`spec`, `network`, `set`), via `incdsl.network.load`.

    Raises `SpecError` for a bad spec and `UsageError` for a bad `--set`.
    """
    from ...network import load
    net = load(args.spec, args.network, **parse_sets(args.set))
    for path in net.input_files:  # what this command reads, its outputs must not replace
        note_input(path)
    return net
