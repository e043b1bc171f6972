"""Numbers and sizes written outside a spec (`--set`, `--sweep`, `--variant`, `fit --min/--max`),
read with the spec language's own syntax: ASCII digits, an optional sign, `.` and an exponent,
sizes as `3x3`. Python's int() and float() would also take `1_0` (10), `١` (an Arabic-Indic 1),
`inf` and surrounding blanks; a value that means something else in a spec must not be read here.
"""
from __future__ import annotations

import re

# as grammar.lark's INT, FLOAT and DIMS (with a sign, which the grammar reads as an operator)
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(
    r"[-+]?([0-9]+\.[0-9]*([eE][-+]?[0-9]+)?|\.[0-9]+([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)")
_DIMS = re.compile(r"[0-9]+(x[0-9]+)+")

MAX_DIGITS = 18  # as the spec's MAX_LITERAL: longer is a mistake (and int() refuses 4,300+ digits)


def read_int(text: str) -> int:
    """An integer as the spec language writes it; ValueError otherwise."""
    if not _INT.fullmatch(text) or len(text.lstrip("+-")) > MAX_DIGITS:
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


def read_number(text: str) -> int | float:
    """An integer or a decimal number as the spec language writes it; ValueError otherwise."""
    if _INT.fullmatch(text):
        return read_int(text)
    if not _FLOAT.fullmatch(text) or len(text) > 64:
        raise ValueError(f"not a number: {text!r}")
    return float(text)


def read_sizes(text: str) -> tuple[int, ...]:
    """`5` -> (5,); `3x3` -> (3, 3) (a ',' also separates, as on the command line before)."""
    text = text.replace(",", "x")
    if not (_DIMS.fullmatch(text) or _INT.fullmatch(text)) or text.startswith(("+", "-")):
        raise ValueError(f"not sizes: {text!r}")
    return tuple(read_int(x) for x in text.split("x"))
