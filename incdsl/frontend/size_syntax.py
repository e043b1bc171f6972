"""Hints for sizes written with an expression as a side (`1x(n+2)`, `1x n`), which the lexer cannot
read as one size: the working form is a tuple, `(1, n + 2)`. Error path only."""
from __future__ import annotations

import re

# a side: a number, a name without an 'x' in it (the 'x' separates sides here), or one level of
# parentheses around an expression
_SIDE = r"\d+|[A-Za-wyz_][A-Za-wyz0-9_]*|\((?:[^()]|\([^()]*\))*\)"
_SIZE = re.compile(rf"(?:{_SIDE})(?:\s*x\s*(?:{_SIDE}))+")
_START = re.compile(rf"(?:(?:{_SIDE})\s*x\s*)*(?:{_SIDE})\s*$")


def size_hint(line_text: str, col: int, token: str) -> str | None:
    """The hint for an unexpected `x...` token (at 1-based `col`) that continues a size whose sides
    the lexer could not join (`1x(n+2)`, `1x n`, `(n+2)x1`), or None when it is something else."""
    head = line_text[: col - 1]
    if not token.startswith("x") or not re.search(r"[\d)]\s*$", head):  # `c x` is not a size
        return None
    start = _START.search(head)
    if start is None:
        return None
    size = _SIZE.match(line_text, start.start())
    if size is None or size.end() < col:
        return None
    sides = re.findall(_SIDE, size.group(0))
    return f"a size with an expression or a spaced side is a tuple: ({', '.join(_tidy(s) for s in sides)})"


def _tidy(side: str) -> str:
    """`(n+2)` -> `n + 2`: the outer parentheses go, binary operators get spaces."""
    if side.startswith("(") and side.endswith(")"):
        side = side[1:-1].strip()
    return re.sub(r"\s*(//|[+*/%]|(?<=[\w)])\s*-)\s*", lambda m: f" {m.group(1).strip()} ", side)
