"""The abstract syntax of a .inc file: small frozen dataclasses, each with its source span."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..source import Span

# --- expressions -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Const:
    """A literal `value`: a number, `true`/`false`, a quoted string, or a size like `1x7` (a tuple of
    ints)."""
    value: object
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A bare word in an expression: a parameter, a `let`, a `repeat ... as` variable, or a word like `relu`.

A size with named sides (`1xn`) is a `Name` too; elaboration splits it at the `x`.
    """
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class BinOp:
    """A binary operation `left op right`: arithmetic (`+ - * / // %`) or a comparison (`== != < <= > >=`)."""
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class UnaryOp:
    """A prefix operation `op operand`: `-x`, `+x` or `not x`."""
    op: str  # '-', '+', 'not'
    operand: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class BoolOp:
    """`a and b and ...` or `a or b or ...`: `op` with two or more `operands`, short-circuit like Python."""
    op: str  # 'and', 'or'
    operands: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Func:
    """A function call in an expression, `name(args, kwargs)`: `int(64 * width)`, `depth(64, 0.5,
    min_depth=8)`."""
    name: str
    args: tuple["Expr", ...]
    span: Span
    kwargs: tuple["Kwarg", ...] = ()  # `depth(64, 0.5, min_depth=8)`


@dataclass(frozen=True, slots=True)
class Tuple:
    """A parenthesised tuple `(1, 7)` of expressions `items` (kernel sizes, strides, padding)."""
    items: tuple["Expr", ...]
    span: Span


Expr = Union[Const, Name, BinOp, UnaryOp, BoolOp, Func, Tuple]


# --- statements --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Kwarg:
    """A named argument `name=value` of a call, a `defaults` entry, a `variant` or an `output`."""
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """`conv(64, 3, stride=2)`, a module call, or a bare name (`gap`, `identity`, a tap)."""
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    bare: bool  # written without parentheses
    span: Span


@dataclass(frozen=True, slots=True)
class Branches:
    """`concat { ... }` or `add { ... }`: parallel chains from the same input."""
    kind: str  # 'concat' | 'add' | 'multiply'
    kwargs: tuple[Kwarg, ...]
    chains: tuple["Chain", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Chain:
    """A sequence `a -> b -> c` of op calls, module calls, taps and branch blocks (`elements`, in order)."""
    elements: tuple[Union[Call, Branches], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class DefaultsEntry:
    """One `op(arg=value, ...)` of a `defaults` statement: default arguments for that op (or activation
    word)."""
    op: str
    kwargs: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Defaults:
    """`defaults op(...), op(...)`: default arguments for the rest of the enclosing block (TF-slim's
    `arg_scope`)."""
    entries: tuple[DefaultsEntry, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Let:
    """`let name = value`: binds an expression to a name for the rest of the enclosing block."""
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Input:
    """`input 224x224x3`: the network's input shape, `dims` as HWC expressions (NHWC, batch left out)."""
    dims: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Output:
    """`output name = chain` (the main output) or, with `train_only`, `train_output name(loss_weight=...) =
    chain`.

    A training-only head is counted apart from the inference totals and dropped from the inference
    model; `kwargs` holds its `loss_weight`.
    """
    name: str
    chain: Chain
    train_only: bool
    kwargs: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    """`if cond { then } elif ... else { orelse }`: `elif` parses as a nested `If` in `orelse`."""
    cond: Expr
    then: tuple["Stmt", ...]
    orelse: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Repeat:
    """`repeat count [as var] { body }`: the body `count` times; `var` counts from 1; calls are numbered `_1`,
    `_2`, ..."""
    count: Expr
    var: str | None
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Assign:
    """`name = chain` or `name = repeat ...`: names the last element of the chain (a layer or a module scope);
    `name_span` is where the name is written."""
    name: str
    target: Union[Chain, Repeat]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Variant:
    """`variant name(param=value, ...)`: a named set of network-parameter overrides that `incdsl compare`
    offers."""
    name: str
    kwargs: tuple[Kwarg, ...]
    span: Span


Stmt = Union[Defaults, Let, Input, Output, If, Repeat, Assign, Chain, Variant]


# --- top level ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Param:
    """A parameter of a `module` or `network` definition: `name`, with an optional `default`
    expression and, for a switch, the values it may take (`pooling=none in (none, avg, max)`:
    `choices`, None when any value goes)."""
    name: str
    default: Expr | None
    span: Span
    choices: tuple[Expr, ...] | None = None


@dataclass(frozen=True, slots=True)
class Definition:
    """A `module` or a `network`: parameters and a body."""
    kind: str  # 'module' | 'network'
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Use:
    """`use "lib/file.inc"`: imports the modules of another file (`path` relative to this one)."""
    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class File:
    """A parsed .inc file: its `path` and its top-level items (`use`, `defaults`, `module`/`network`
    definitions, `variant`)."""
    path: str
    items: tuple[Union[Use, Defaults, Definition, Variant], ...]
