"""Expressions of the language: arithmetic, comparisons, `and`/`or`/`not`, the built-in functions
(functions.py), initializer calls, sizes written with names (`1xn`), and `--set` values.

An expression evaluates to a Python value: int, float, bool, None (`none`), a tuple (a size or
`(1, 7)`), an initializer string, or a `Symbol` for a bare word that is no name in scope (`same`,
`relu`, `avg`): whether a word is a fine value or a misspelt name is decided by whoever reads it
(an op argument, an `if`, an operator), who then says "unknown name".
"""
from __future__ import annotations

from ..errors import ArgumentError, Span, SpecError, did_you_mean, shorten
from ..frontend import ast
from ..frontend.literals import read_int, read_number, read_sizes
from ..ops import Symbol, initializers, show_value
from . import functions

MAX_STEPS = 1_000_000  # statements and expressions evaluated; stops runaway nested repeats
MAX_NUMBER = 10**15


class Evaluator:
    """Evaluates expressions against an environment (a dict of the names in lexical scope:
    parameters, `let`s, loop variables) and counts the elaboration's steps.

    `steps` counts the statements (`step`, called by elaboration) and expressions evaluated so far;
    past MAX_STEPS a `SpecError` stops a runaway `repeat`. Every error is a `SpecError` at the
    expression at fault: unknown name, a number or true/false expected, division by zero, a number
    over MAX_NUMBER, a bad function call.
    """

    def __init__(self):
        self.steps = 0

    def step(self, span: Span):
        """Count one statement or expression; raises SpecError past MAX_STEPS (at `span`)."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise SpecError(f"elaboration took more than {MAX_STEPS:,} steps; is a `repeat` count absurd?",
                            span)

    def eval(self, e: ast.Expr, env: dict):
        """The value of expression `e` with the names in `env` (see the module docstring)."""
        self.step(e.span)
        t = type(e)
        if t is ast.Const:
            return e.value
        if t is ast.Name:
            if e.name in env:
                return env[e.name]
            if e.name == "none":
                return None
            size = named_size(e.name, env)
            return Symbol(e.name) if size is None else size
        if t is ast.BinOp:
            return self._binop(e, self.eval(e.left, env), self.eval(e.right, env), env)
        if t is ast.UnaryOp:
            v = self.eval(e.operand, env)
            if e.op == "not":
                return not self.boolean(v, e.operand, env)
            self.number(v, e.operand, env)
            return -v if e.op == "-" else v
        if t is ast.BoolOp:
            left = self.boolean(self.eval(e.operands[0], env), e.operands[0], env)
            if (e.op == "and") != left:  # short-circuit: false and ..., true or ...
                return left
            return self.boolean(self.eval(e.operands[1], env), e.operands[1], env)
        if t is ast.Func:
            return self._func(e, [self.eval(a, env) for a in e.args], env)
        if t is ast.Tuple:
            return tuple(self.eval(x, env) for x in e.items)
        raise SpecError(f"cannot evaluate {t.__name__}", e.span)  # pragma: no cover

    def number(self, v, expr: ast.Expr, env: dict):
        """`v` when it is an int or float; else SpecError at `expr` (unknown name for a word)."""
        if isinstance(v, Symbol):
            raise unknown_name(v, expr, env)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecError(f"expected a number, got {show_value(v)}", expr.span)
        return v

    def boolean(self, v, expr: ast.Expr, env: dict):
        """`v` when it is true or false; else SpecError at `expr` (unknown name for a word)."""
        if isinstance(v, Symbol):
            raise unknown_name(v, expr, env)
        if not isinstance(v, bool):
            raise SpecError(f"expected true or false, got {show_value(v)}", expr.span)
        return v

    def _binop(self, e: ast.BinOp, a, b, env):
        op = e.op
        if op in ("==", "!="):
            for word, other, expr in ((a, b, e.left), (b, a, e.right)):
                # `widht == 1.0`: a typo; `pooling == avg` with pooling=none compares two words
                if isinstance(word, Symbol) and not isinstance(other, str) and other is not None:
                    raise unknown_name(word, expr, env)
            return (a == b) == (op == "==")
        a, b = self.number(a, e.left, env), self.number(b, e.right, env)
        if op in ("<", "<=", ">", ">="):
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        if op in ("/", "//", "%") and b == 0:
            raise SpecError("division by zero", e.right.span, label="this is 0")
        r = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
             "//": lambda: a // b, "%": lambda: a % b}[op]()
        if abs(r) > MAX_NUMBER:
            raise SpecError(f"number too large: {r:.3g}", e.span)
        return r

    def _func(self, e: ast.Func, args: list, env):
        if e.name in initializers.NAMES:  # init=truncated_normal(0.1): a value for `init=`
            return self._initializer(e, args, env)
        b = functions.BUILTINS.get(e.name)
        if b is None:
            known = list(functions.BUILTINS) + list(initializers.CALLS)
            raise SpecError(f"unknown function '{e.name}'", e.span,
                            hint=did_you_mean(e.name, known) or f"functions: {', '.join(known)}")
        bound = functions.bind(b, e, args, {kw.name: self.eval(kw.value, env) for kw in e.kwargs})
        for v, x in bound.values():
            self.number(v, x, env)
        functions.check(b, bound)
        try:
            return functions.call(b, bound)
        except (ValueError, OverflowError):  # int(nan), round(inf): only reachable from Python overrides
            shown = ', '.join(show_value(v) for v, _ in bound.values())
            raise SpecError(f"{e.name}() cannot take {shown}", e.span) from None

    def _initializer(self, e: ast.Func, args: list, env) -> str:
        """`truncated_normal(0.1)` or `truncated_normal(stddev=0.1)`, TF-slim's keyword."""
        param = initializers.CALLS.get(e.name)
        for kw in e.kwargs:
            if kw.name != param or args:
                why = f"{e.name}() takes {f'one argument, {param}' if param else 'no arguments'}"
                raise SpecError(why, kw.span)
            args = [self.eval(kw.value, env)]
        try:
            return initializers.make(e.name, args)
        except ValueError as err:
            raise SpecError(str(err), e.span) from None


def unknown_name(v, expr: ast.Expr, env: dict) -> SpecError:
    """The error for a word `v` (at `expr`) that names nothing in `env`, with a did-you-mean hint."""
    hint = did_you_mean(str(v), env)
    return SpecError(f"unknown name '{shorten(str(v))}'", expr.span,
                     hint=hint or known_list("known here", env))


def known_list(what: str, names) -> str | None:
    """`what: a, b, c` with at most 20 names, each shortened: a hint stays on one screen."""
    names = list(names)
    if not names:
        return None
    shown = ", ".join(shorten(n) for n in names[:20])
    return f"{what}: {shown}" + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def named_size(word: str, env: dict) -> tuple[int, ...] | None:
    """`1xn`, `nx1`, `kxk`: a size written with sides that are numbers or names bound to integers
    (module parameters, `let`s). None when the word is not one, or reads as a size more than one way."""
    def side(part: str):
        if part.isdigit():
            return int(part)
        v = env.get(part)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def readings(rest: str) -> list[tuple[int, ...]]:
        out = [(v,)] if (v := side(rest)) is not None else []
        for i, ch in enumerate(rest):
            if ch == "x" and 0 < i < len(rest) - 1 and (head := side(rest[:i])) is not None:
                out += [(head,) + tail for tail in readings(rest[i + 1:])]
        return out

    if "x" not in word:
        return None
    sizes = [r for r in readings(word) if len(r) > 1]
    return sizes[0] if len(sizes) == 1 else None


def coerce_override(name: str, text, default):
    """`--set width=0.75`: read the value as the default's type, in the spec's own number syntax
    (incdsl.frontend.literals: no `1_0`, no non-ASCII digits). A value that is not text (a Python override)
    is returned as it is. Raises `ArgumentError` naming parameter `name` for text that does not
    read as the default's type (bool, int, float or a size)."""
    if not isinstance(text, str):
        return text
    s = text.strip()
    low = s.lower()
    try:
        if isinstance(default, bool):
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            # `--set size=350x400`: an integer side given as HxW (input(size, channels) reads it)
            if "x" in low:
                sizes = read_sizes(s)
                if len(sizes) == 2:
                    return sizes
                raise ValueError
            return read_int(s)
        if isinstance(default, float):
            return float(read_number(s))
        if isinstance(default, tuple):
            sizes = read_sizes(s)
            return sizes[0] if len(sizes) == 1 else sizes  # `--set k=5` is a square 5x5
    except ValueError:
        kind = {bool: "true or false", int: "an integer" + (" or HxW" if "x" in low else ""),
                float: "a number",
                tuple: "sizes like 3x3"}[type(default)]
        raise ArgumentError(name, shorten(text),
                            f"{name} is {kind} (its default is {show_value(default)})") from None
    try:
        return read_number(s)
    except ValueError:
        pass
    if low in ("true", "false"):
        return low == "true"
    return Symbol(s)


def input_size(v, expr) -> list:
    """`input(size, channels)`'s size as [height, width]: n is n x n, a pair (350x400) is HxW.
    Raises SpecError at `expr` for anything else."""
    if isinstance(v, tuple):
        if len(v) != 2:
            raise SpecError(f"input size must be one side or HxW, got {len(v)} sides", expr.span,
                            hint="write for example input(size, 3) with size=299 or size=350x400")
        return list(v)
    return [v, v]
