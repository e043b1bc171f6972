"""Graphviz's `dot` program: finding it on PATH and laying out DOT text as SVG or PNG (the
drawing itself is dot.py's)."""
from __future__ import annotations

import shutil
import subprocess

from ..errors import OptionError, UsageError


def find_dot() -> str:
    """The path of Graphviz's `dot` program on PATH (the tool that lays out SVG and PNG).

    Raises `OptionError` (a `UsageError`, exit 2) with how to install Graphviz when it is not found.
    """
    exe = shutil.which("dot")
    if exe is None:
        raise OptionError("drawing SVG or PNG needs Graphviz's `dot` program, which is not on PATH; "
                          "install the Graphviz package (Debian/Ubuntu: apt-get install graphviz, "
                          "macOS: brew install graphviz), or write DOT text with {to_dot}",
                          words={"to_dot": "a .dot path"})
    return exe


def render(dot_text: str, fmt_: str) -> bytes:
    """Lay out DOT text with Graphviz: 'svg' or 'png' bytes."""
    exe = find_dot()
    args = [exe, f"-T{fmt_}"] + (["-Gdpi=96"] if fmt_ == "png" else [])
    try:
        done = subprocess.run(args, input=dot_text.encode(), capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise OptionError("Graphviz `dot` took more than 5 minutes; try a smaller {depth}") from None
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode(errors="replace").strip()
        raise UsageError(f"Graphviz `dot` failed (exit {done.returncode}): {err or 'no output'}")
    return done.stdout
