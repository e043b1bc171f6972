"""`incdsl compile`'s format from `--to` and the suffix of `-o FILE`: they must agree, and either gives the
other."""
from __future__ import annotations

from ...errors import UsageError, shorten

# each --to format and the file suffixes that name it (the first is the one a default name gets)
SUFFIXES = {"keras": (".keras",), "onnx": (".onnx",), "dot": (".dot", ".gv"), "svg": (".svg",),
            "png": (".png",),
            "html": (".html", ".htm")}


def _suffix_target(path: str) -> str | None:
    name = path.lower()
    for target, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return target
    return None


def target_for(to: str | None, output: str | None) -> str:
    """The format `incdsl compile` writes, from `--to` (`to`) and `-o` (`output`, None when absent, '-' for
    stdout).

    With both, the file's suffix must name the format `--to` asks for (`--to png -o g.svg` would write
    PNG bytes into a .svg); with `-o FILE` alone the suffix gives it. Raises `UsageError` (exit 2)
    when they disagree, or when neither says which format.
    """
    known = ", ".join(s for suffixes in SUFFIXES.values() for s in suffixes)
    if output is None or output == "-":
        if to is None:
            raise UsageError("compile needs --to FORMAT (keras, onnx, dot, svg, png, html), "
                             "or -o FILE with one of the suffixes " + known)
        return to
    found = _suffix_target(output)
    if to is None:
        if found is None:
            raise UsageError(
                f"-o '{shorten(output)}': cannot tell the format from its suffix; give --to FORMAT "
                             f"or a file name ending in one of {known}")
        return found
    if found != to:
        wanted = " or *".join(SUFFIXES[to])
        what = f"names a {found} file" if found else "has no suffix of a format incdsl writes"
        raise UsageError(f"-o '{shorten(output)}' {what}, but --to {to} writes {to}: name the file *{wanted}"
                         + (f", or use --to {found}" if found else ""))
    return to
