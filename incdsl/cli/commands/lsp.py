"""`incdsl lsp`: the language server over stdio (see incdsl/editor/lsp.py); editors start it themselves."""
from __future__ import annotations

from ...errors import UsageError


def add_parser(sub) -> None:
    """Add `incdsl lsp` and its options to `sub` (the argparse subparsers of `cli.build_parser`); its handler
    is `run`."""
    p = sub.add_parser("lsp", help="run the language server over stdio (for editors)",
                       description="A Language Server Protocol server for .inc files on stdin/stdout: "
                       "diagnostics, hover with shapes, params and MACs, go to definition, completion.")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl lsp` with the parsed command line `args`; returns the exit code (0 when fine).

    Serves the language server on stdin/stdout until the editor closes it. Raises `UsageError` (exit 2) when
    pygls (a dependency of incdsl) is missing.
    """
    try:
        import pygls  # noqa: F401

        from ...editor.lsp import serve
    except ImportError as e:
        raise UsageError(f"incdsl lsp needs pygls ({e.name} is not installed), a dependency of incdsl: "
                         f"pip install --force-reinstall incdsl") from None
    serve()
    return 0
