"""The language's built-in functions (`int`, `min`, `depth`, `make_divisible`, ...): their
signatures, how a call binds positional and keyword arguments, and the checks that give a clear
error at the call instead of a silently wrong channel count."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..errors import SpecError, did_you_mean
from ..frontend import ast
from ..ops import show_value
from .rounding import make_divisible, slim_depth


@dataclass(frozen=True)
class Builtin:
    """One function: its parameters in order, how many are required, and what computes it.
    `variadic` ones (min, max) take one or more positional numbers and no keywords."""
    name: str
    params: tuple[str, ...]
    required: int
    fn: Callable
    defaults_shown: tuple[str, ...] = ()  # how the signature prints its optional parameters
    variadic: bool = False

    def signature(self) -> str:
        """How the function is written in messages and hovers: `depth(d, multiplier, min_depth=16)`, or
        `min(x, ...)` for a variadic one."""
        if self.variadic:
            return f"{self.name}(x, ...)"
        shown = list(self.params[: self.required]) + [
            f"{p}={d}" for p, d in zip(self.params[self.required:], self.defaults_shown)]
        return f"{self.name}({', '.join(shown)})"


def _one(name: str, fn: Callable) -> Builtin:
    return Builtin(name, ("x",), 1, fn)


BUILTINS: dict[str, Builtin] = {b.name: b for b in (
    _one("int", lambda x: int(x)), _one("float", float), _one("round", lambda x: int(round(x))),
    _one("floor", lambda x: int(math.floor(x))), _one("ceil", lambda x: int(math.ceil(x))),
    _one("abs", abs),
    Builtin("min", (), 1, min, variadic=True), Builtin("max", (), 1, max, variadic=True),
    Builtin("depth", ("d", "multiplier", "min_depth"), 2, slim_depth, ("16",)),
    Builtin("make_divisible", ("v", "divisor", "min_value"), 1, make_divisible, ("8", "divisor")),
)}


def bind(b: Builtin, e: ast.Func, values: list, kw_values: dict) -> dict[str, tuple[object, ast.Expr]]:
    """Positional and keyword arguments of the call `e` -> {parameter: (value, its expression)}.
    Raises SpecError for too many or too few arguments, an unknown keyword, or one given twice."""
    if b.variadic:
        if e.kwargs:
            raise SpecError(f"{b.name}() takes no keyword arguments", e.kwargs[0].span,
                            hint=f"write {b.name}(a, b, ...)")
        if len(values) < 2:  # min(x) of one number is Python's TypeError (it wants an iterable)
            raise SpecError(f"{b.name}() takes two or more arguments, got {len(values)}", e.span)
        return {str(i): (v, x) for i, (v, x) in enumerate(zip(values, e.args))}
    if len(values) > len(b.params):
        n = len(b.params)
        takes = f"{b.required} to {n}" if b.required != n else str(n)
        raise SpecError(
            f"{b.name}() takes {takes} argument{'s' if n != 1 else ''}, got {len(values) + len(e.kwargs)}",
                        e.args[n].span if len(e.args) > n else e.span, hint=f"it takes {b.signature()}")
    bound = {p: (v, x) for p, v, x in zip(b.params, values, e.args)}
    for kw in e.kwargs:
        if kw.name not in b.params:
            raise SpecError(f"{b.name}() has no argument '{kw.name}'", kw.span,
                            hint=did_you_mean(kw.name, b.params) or f"it takes {b.signature()}")
        if kw.name in bound:
            how = "by position and by name" if b.params.index(kw.name) < len(values) else "twice"
            raise SpecError(f"{b.name}(): '{kw.name}' is given {how}", kw.span,
                            hint=f"it takes {b.signature()}")
        bound[kw.name] = (kw_values[kw.name], kw.value)
    missing = [p for p in b.params[: b.required] if p not in bound]
    if missing:
        raise SpecError(f"{b.name}() needs '{missing[0]}'", e.span, hint=f"it takes {b.signature()}")
    return bound


def check(b: Builtin, bound: dict[str, tuple[object, ast.Expr]]):
    """The domain of the channel-rounding functions, checked where the reference code checks it
    (TF-slim raises "depth_multiplier is not greater than zero") or where a wrong value would give
    a plausible but meaningless channel count (`make_divisible(-5)` would be 8)."""
    def refuse(param: str, why: str, hint: str):
        v, x = bound[param]
        raise SpecError(f"{b.name}(): {param} must be {why}, got {show_value(v, floats='g')}", x.span,
                        label=f"{param} is {show_value(v, floats='g')}", hint=hint)

    if b.name == "depth":
        # TF-slim inception_v3(): ValueError('depth_multiplier is not greater than zero.')
        if bound["multiplier"][0] <= 0:
            refuse("multiplier", "greater than zero",
                   'TF-slim refuses it too ("depth_multiplier is not greater '
                   'than zero"); a width multiplier scales the channels, e.g. 0.5 or 1.0')
        if "min_depth" in bound and not _whole(bound["min_depth"][0], 1):
            refuse("min_depth", "a whole number of channels, at least 1", "TF-slim's default is 16")
    elif b.name == "make_divisible":
        if bound["v"][0] <= 0:
            refuse("v", "a positive number of channels",
                   "it rounds a channel count, e.g. make_divisible(96 * width)")
        if "divisor" in bound and not _whole(bound["divisor"][0], 1):
            refuse("divisor", "a positive integer",
                   "the channels are rounded to a multiple of it; the mobile nets use 8")
        if "min_value" in bound and not _whole(bound["min_value"][0], 1):
            refuse("min_value", "a positive integer",
                   "the fewest channels it may give; the default is the divisor")


def call(b: Builtin, bound: dict[str, tuple[object, ast.Expr]]):
    """Run the function on bound, checked arguments (whole floats made ints where an integer is meant)."""
    if b.variadic or b.params == ("x",):  # Python's int(), abs() take no keywords
        return b.fn(*(v for v, _ in bound.values()))
    args = {p: v for p, (v, _) in bound.items()}
    for p in ("min_depth", "divisor", "min_value"):
        if p in args:
            args[p] = int(args[p])
    return b.fn(**args)


def _whole(v, least: int) -> bool:
    return (isinstance(v, int) or (isinstance(v, float) and v.is_integer())) and v >= least
