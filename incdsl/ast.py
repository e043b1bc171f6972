"""The abstract syntax of a .inc file: small frozen dataclasses, each with its source span."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .errors import Span


# --- expressions -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Const:
    value: object
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class UnaryOp:
    op: str  # '-', '+', 'not'
    operand: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # 'and', 'or'
    operands: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Func:
    name: str
    args: tuple["Expr", ...]
    span: Span
    kwargs: tuple["Kwarg", ...] = ()  # `depth(64, 0.5, min_depth=8)`


@dataclass(frozen=True, slots=True)
class Tuple:
    items: tuple["Expr", ...]
    span: Span


Expr = Union[Const, Name, BinOp, UnaryOp, BoolOp, Func, Tuple]


# --- statements --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Kwarg:
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
    elements: tuple[Union[Call, Branches], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class DefaultsEntry:
    op: str
    kwargs: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Defaults:
    entries: tuple[DefaultsEntry, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Let:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Input:
    dims: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    chain: Chain
    train_only: bool
    kwargs: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    cond: Expr
    then: tuple["Stmt", ...]
    orelse: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Repeat:
    count: Expr
    var: str | None
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Assign:
    name: str
    target: Union[Chain, Repeat]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    kwargs: tuple[Kwarg, ...]
    span: Span


Stmt = Union[Defaults, Let, Input, Output, If, Repeat, Assign, Chain, Variant]


# --- top level ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: Expr | None
    span: Span


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
    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class File:
    path: str
    items: tuple[Union[Use, Defaults, Definition, Variant], ...]
