"""The `incdsl` command. Exit codes: 0 fine, 1 an error in the spec or its data, 2 bad usage."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from .errors import ArgumentError, NothingFits, SpecError, UsageError, clip, shorten
from .guard import StdoutError, Terminated, guarded
from .io import forget_inputs

# Commands with their own module under incdsl/commands (each has add_parser and run).
COMMANDS = ("summary", "compile", "train", "predict", "compare", "fit", "diff", "import_", "fmt", "lsp")


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
    """Add the spec arguments a command shares to `p`: the positional `spec` (unless `spec` is false), `--set NAME=VALUE` (repeatable) and `--network NAME`."""
    if spec:
        p.add_argument("spec", help="the .inc file")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                   help="override a network parameter (repeatable), e.g. --set width=0.75")
    p.add_argument("--network", metavar="NAME", help="which network, if the file has several")


def load_net(args):
    """The checked `Network` for a command's `args` (`spec`, `network`, `set`), via `incdsl.network.load`.

    Raises `SpecError` for a bad spec and `UsageError` for a bad `--set`.
    """
    from .network import load
    return load(args.spec, args.network, **parse_sets(args.set))


def build_parser() -> argparse.ArgumentParser:
    """The `incdsl` argparse parser: `--version`, `--verbose`, and the subcommands `check`, `expand`, `list` and each module in COMMANDS (its `add_parser`)."""
    ap = argparse.ArgumentParser(prog="incdsl", description="A DSL and compiler for Inception-family CNNs.")
    ap.add_argument("--version", action="version", version=f"incdsl {_version()}")
    ap.add_argument("--verbose", action="store_true",
                    help="let TensorFlow's native start-up log lines through (hidden by default)")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check", help="parse and shape-check a spec")
    add_spec_args(p)
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("expand", help="the flat, macro-expanded network, one layer per line")
    add_spec_args(p)
    p.set_defaults(run=cmd_expand)

    p = sub.add_parser("list", help="the reference specs that ship with incdsl")
    p.set_defaults(run=cmd_list)

    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
    return ap


def _version() -> str:
    from . import __version__
    return __version__


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
    from .targets import target_notes
    for note in target_notes(net):
        print(f"{note.span or args.spec}: note: {note.message}", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    """`incdsl list`: prints the reference specs that ship with incdsl (name, what it matches, aliases). Returns 0."""
    from .library import LIBRARY, REFERENCES
    width = max(len(r.name) for r in REFERENCES)
    for r in REFERENCES:
        also = f"  (also: {', '.join(r.aliases)})" if r.aliases else ""
        print(f"{r.name:<{width}}  {r.matches}{also}")
    print(f"\nfiles in {LIBRARY.resolve()}; use a name anywhere a spec path goes: incdsl summary v3")
    return 0


def cmd_expand(args) -> int:
    """`incdsl expand SPEC`: prints the flat, macro-expanded network (`Network.expand`), one layer per line. Returns 0."""
    print(load_net(args).expand())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; `argv` None means the process's own command line (the `incdsl` program).

    Returns the exit code: 0 fine, 1 an error in the spec or its data (or `fit`: nothing fits the
    budgets), 2 bad usage, 3 a bug.
    """
    # TensorFlow, when a backend loads it, greets with INFO lines on stderr; keep the CLI's quiet
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = build_parser()
    args = ap.parse_args(argv)
    forget_inputs()
    with guarded() as g:
        if g.code is None and argv is None and not args.verbose:
            from .quiet import native_stderr_filtered  # the lines TF_CPP_MIN_LOG_LEVEL cannot reach
            with native_stderr_filtered():
                g.code = _run(args)
        elif g.code is None:
            g.code = _run(args)
    return g.code


def _run(args) -> int:
    try:
        return args.run(args) or 0
    except SpecError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except NothingFits as e:  # an answer (no variant meets the budgets), not bad usage
        print(f"incdsl {args.command}: {clip(str(e))}", file=sys.stderr)
        return 1
    except UsageError as e:
        message = e.cli_message() if isinstance(e, ArgumentError) else str(e)
        print(f"incdsl {args.command}: error: {clip(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"terminated ({signal.Signals(e.signum).name})", file=sys.stderr)
        return 128 + e.signum
    except StdoutError:
        raise  # guarded() reports it
    except Exception as e:  # a bug in incdsl, not in the spec: say so in one screen
        if os.environ.get("INCDSL_DEBUG"):
            raise
        print(f"incdsl: internal error: {type(e).__name__}: {shorten(str(e), 300)}\n"
              f"(this is a bug in incdsl; rerun with INCDSL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
