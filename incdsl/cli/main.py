"""The `incdsl` command. Exit codes: 0 fine, 1 an error in the spec or its data, 2 bad usage."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from ..errors import ArgumentError, DataError, NothingFits, OptionError, SpecError, UsageError, clip, shorten
from ..io import forget_inputs
from .guard import StdoutError, Terminated, guarded

# Commands with their own module under incdsl/cli/commands (each has add_parser; `check` adds check,
# expand and list). They import incdsl.cli.commands.spec_args, never this module.
COMMANDS = ("check", "summary", "compile", "train", "predict", "compare", "fit", "diff", "import_", "fmt",
            "lsp", "explore")


def build_parser() -> argparse.ArgumentParser:
    """The `incdsl` argparse parser: `--version`, `--verbose`, and the subcommands of each module in COMMANDS
    (its `add_parser`: `check`, `expand`, `list`, `summary`, ...)."""
    ap = argparse.ArgumentParser(prog="incdsl", description="A DSL and compiler for Inception-family CNNs.")
    ap.add_argument(
        "--version",
        action=_Version,
        nargs=0,
        help="show incdsl's, Keras' and the backends' versions, the Keras backend in use and why, "
        "and the devices it sees (GPUs with their memory), then exit",
    )
    ap.add_argument("--verbose", action="store_true",
                    help="let TensorFlow's native start-up log lines through (hidden by default)")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
    return ap


class _Version(argparse.Action):
    """`--version`: several lines (backends.keras_devices.version_report), which argparse's own
    version action would rewrap into one; it imports the Keras backend's framework to list devices."""

    def __call__(self, parser, namespace, values, option_string=None):
        from ..backends.keras.devices import version_report
        text, usable = version_report()
        print(text)
        parser.exit(0 if usable else 2)  # no usable Keras backend: bad set-up, as for any Keras command


def main(argv: list[str] | None = None) -> int:
    """Run one command; `argv` None means the process's own command line (the `incdsl` program).

    Returns the exit code: 0 fine, 1 an error in the spec or its data (or `fit`: nothing fits the
    budgets), 2 bad usage, 3 a bug. A process of a JAX multi-worker job that failed ends here, with
    that code, once its error is said (train/jax_link.py's exit_if_failed).
    """
    code = _main(argv)
    link = sys.modules.get("incdsl.train.jax_link")  # loaded only by a JAX multi-worker run
    if link is not None:
        link.exit_if_failed(code)
    return code


def _main(argv: list[str] | None) -> int:
    ap = build_parser()
    # --help and --version write to stdout from inside argparse, which drops a failed write; the
    # guard turns one into "cannot write to standard output", exit 1 (or 0 for a closed pipe)
    done: SystemExit | None = None
    with guarded() as g:
        try:
            args = ap.parse_args(argv)
        except SystemExit as e:
            done = e
    if g.code is not None:
        return g.code
    if done is not None:
        raise done
    forget_inputs()
    with guarded() as g:
        if args.verbose:
            # and TensorFlow's import is not quieted either (quiet_import.py)
            os.environ["INCDSL_VERBOSE"] = "1"
        else:  # TensorFlow, when a backend loads it, greets with INFO lines on stderr; keep the CLI's quiet
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if g.code is None and argv is None and not args.verbose:
            from ..backends.keras.quiet_import import (
                quiet_native,  # the lines TF_CPP_MIN_LOG_LEVEL cannot reach
            )
            with quiet_native():
                g.code = _run(args)
        elif g.code is None:
            g.code = _run(args)
    return g.code


# a third-party module a command may need -> (its package, the extra that brings it): a command run
# where that extra is not installed is bad usage (exit 2, naming what to install), not a bug
_KERAS = "'incdsl[jax]' (or 'incdsl[torch]', 'incdsl[tf]')"
OPTIONAL_PACKAGES = {
    "keras": ("keras", _KERAS), "PIL": ("Pillow", _KERAS), "jax": ("jax", "'incdsl[jax]'"),
    "torch": ("torch", "'incdsl[torch]'"), "tensorflow": ("tensorflow", "'incdsl[tf]'"),
    "tf2onnx": ("tf2onnx", "'incdsl[tf]'"), "tensorboard": ("tensorboard", "'incdsl[tf]'"),
    "onnx": ("onnx", "'incdsl[onnx]'"), "onnxruntime": ("onnxruntime", "'incdsl[onnx]'"),
    "h5py": ("h5py", "'incdsl[onnx]' (or a Keras extra)"),
    "safetensors": ("safetensors", "'incdsl[onnx]' (or a Keras extra)"),
    "matplotlib": ("matplotlib", "'incdsl[plot]'"), "ray": ("ray[tune]", "'incdsl[explore]'"),
    "pydot": ("pydot", "'incdsl[plot]'"),
}


def _needs_keras(args) -> bool:
    if args.command == "explore":  # its trials train; --show only reads
        return not args.show
    return args.command in ("train", "predict", "import") or (args.command == "compile" and (
        getattr(args, "to", None) == "keras" or getattr(args, "via", None) == "tf2onnx"
        or getattr(args, "verify", None) == "keras"))


def _settle_keras_backend(args) -> None:
    """Set KERAS_BACKEND to the backend rule's choice (backends/keras/backend.py) before any command
    can import Keras, which reads it once; looks for packages, imports none. Where no backend can
    be chosen, a command that needs Keras gets the BackendError (a UsageError naming what to set or
    install); the others never import it."""
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND", "").strip():
        return
    from ..backends.keras.backend import BackendError, apply
    try:
        apply()
    except BackendError:
        if _needs_keras(args):
            raise


def _run(args) -> int:
    try:
        _settle_keras_backend(args)
        return args.run(args) or 0
    except (SpecError, DataError) as e:  # exit 1 both: a fault of the spec, or of the data or the run
        from .commands.flags import cli_error  # the library names parameters; the command line, flags
        print(cli_error(e).render(), file=sys.stderr)
        return 1
    except NothingFits as e:  # an answer (no variant meets the budgets), not bad usage
        print(f"incdsl {args.command}: {clip(str(e))}", file=sys.stderr)
        return 1
    except UsageError as e:
        message = e.cli_message() if isinstance(e, ArgumentError) else str(e)
        if isinstance(e, OptionError):  # the library names parameters; the command line, flags
            from .commands.flags import cli_text
            message = cli_text(e)
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
        extra = (
            OPTIONAL_PACKAGES.get((e.name or "").split(".")[0])
            if isinstance(e, ModuleNotFoundError)
            else None
        )
        if extra is not None:
            print(f"incdsl {args.command}: error: this needs {extra[0]}, which is not installed: pip "
                  f"install {extra[1]}",
                  file=sys.stderr)
            return 2
        if os.environ.get("INCDSL_DEBUG"):
            raise
        print(f"incdsl: internal error: {type(e).__name__}: {shorten(str(e), 300)}\n"
              f"(this is a bug in incdsl; rerun with INCDSL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
