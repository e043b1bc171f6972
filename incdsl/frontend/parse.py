"""Text -> AST: Lark's LALR parser (`grammar.parser()`, shared, immutable) run with a transformer
made for each parse, which builds the `ast` nodes and their spans as the parser reduces.

Nothing global is read or written: the text travels inside its `Source`, which every span points
to, so parses of edited buffers (the language server) keep nothing alive and threads can parse at
once. Lark's exceptions never leave this module: `syntax_errors` turns them into `SpecError`s.
"""
from __future__ import annotations

import math
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput
from lark.parse_tree_builder import ParseTreeBuilder

from ..errors import SpecError
from ..source import Source, Span
from . import ast
from .grammar import parser, token_span
from .syntax_errors import syntax_error

# Python refuses to turn more than 4,300 digits into an int; anything past 18 is a mistake anyway.
MAX_LITERAL = 10**18


def _number(tok: Token, source: Source) -> int:
    text = str(tok)
    if len(text) > 18:
        raise SpecError(f"number too large: {text[:20]}{'...' if len(text) > 20 else ''}",
                        token_span(source, tok))
    return int(text)


def _dims(tok: Token, source: Source) -> tuple[int, ...]:
    parts = str(tok).split("x")
    if any(len(p) > 18 for p in parts):
        raise SpecError("number too large in sizes", token_span(source, tok))
    return tuple(int(d) for d in parts)


# The AST is built while the LALR parser reduces (an inline transformer: no parse tree), which
# makes parsing about twice as fast as tree + transform. Lark then gives no positions, so each rule
# takes its span from its first and last token or AST node; for that the parser keeps every
# token (`keep_all_tokens`), and `_rule` drops the punctuation and keywords before the rule sees
# its children.
_KEEP = frozenset({"NAME", "INT", "FLOAT", "STRING", "DIMS", "NAMED_DIMS", "COMP_OP", "ADD_OP", "MUL_OP"})


class _Seq(tuple):
    """A block's statements (or branches, or parameters) with the span of the braces around them."""
    span: Span | None = None


def _seq(items, span) -> _Seq:
    s = _Seq(items)
    s.span = span
    return s


def _bounds(c):
    """(line, col) of the start of `c` and (line, col) of its end, or None."""
    if isinstance(c, Token):
        return c.line, c.column, c.end_line, c.end_column
    span = getattr(c, "span", None)
    if span is not None:
        return span.line, span.col, span.end_line, span.end_col
    return None


def _rule(fn):
    def callback(self, children):
        first = last = None
        for c in children:
            if c is not None and (first := _bounds(c)) is not None:
                break
        for c in reversed(children):
            if c is not None and (last := _bounds(c)) is not None:
                break
        span = Span(self.source, first[0], first[1], last[2], last[3]) if first and last else None
        kept = [c for c in children if not isinstance(c, Token) or c.type in _KEEP]
        return fn(self, span, kept, children)
    callback.__name__ = fn.__name__
    return callback


class _ToAst:
    """The transformer of one parse: methods named after the grammar's rules, which Lark calls as
    it reduces, building `ast` nodes whose spans point to `source`. Made afresh for each parse
    (`parse_source`), so no parse sees another's source."""

    __slots__ = ("source",)

    def __init__(self, source: Source):
        self.source = source

    # -- expressions
    @_rule
    def int_(self, s, c, raw):
        return ast.Const(_number(c[0], self.source), s)

    @_rule
    def float_(self, s, c, raw):
        v = float(c[0])
        if not math.isfinite(v) or abs(v) > MAX_LITERAL:
            raise SpecError(f"number too large: {c[0]}", token_span(self.source, c[0]))
        return ast.Const(v, s)

    @_rule
    def string(self, s, c, raw):
        return ast.Const(str(c[0])[1:-1], s)

    @_rule
    def dims(self, s, c, raw):
        return ast.Const(_dims(c[0], self.source), s)

    @_rule
    def named_dims(self, s, c, raw):
        return ast.Name(str(c[0]), s)  # elaboration splits it at an 'x' into numbers and bound names

    @_rule
    def name(self, s, c, raw):
        n = str(c[0])
        if n in ("true", "false"):
            return ast.Const(n == "true", s)
        return ast.Name(n, s)

    @_rule
    def func(self, s, c, raw):
        items = [a for a in c[1:] if a is not None]
        _positional_first(items)
        return ast.Func(str(c[0]), tuple(a for a in items if not isinstance(a, ast.Kwarg)), s,
                        tuple(a for a in items if isinstance(a, ast.Kwarg)))

    @_rule
    def tuple_(self, s, c, raw):
        return ast.Tuple(tuple(a for a in c if a is not None), s)

    @_rule
    def atom(self, s, c, raw):  # "(" expr ")": the parentheses only group
        return c[0]

    @_rule
    def sign(self, s, c, raw):
        return ast.UnaryOp(str(c[0]), c[1], s)

    @_rule
    def not_(self, s, c, raw):
        return ast.UnaryOp("not", c[0], s)

    @_rule
    def or_(self, s, c, raw):
        return ast.BoolOp("or", tuple(c), s)

    @_rule
    def and_(self, s, c, raw):
        return ast.BoolOp("and", tuple(c), s)

    @_rule
    def comparison(self, s, c, raw):
        return ast.BinOp(str(c[1]), c[0], c[2], s)

    @_rule
    def sum(self, s, c, raw):
        return self._left_assoc(c)

    @_rule
    def product(self, s, c, raw):
        return self._left_assoc(c)

    def _left_assoc(self, c):
        node = c[0]
        for op, right in zip(c[1::2], c[2::2]):
            node = ast.BinOp(str(op), node, right, Span(self.source, node.span.line, node.span.col,
                                                         right.span.end_line, right.span.end_col))
        return node

    # -- statements
    @_rule
    def kwarg(self, s, c, raw):
        return ast.Kwarg(str(c[0]), c[1], s)

    @_rule
    def call(self, s, c, raw):
        name = str(c[0])
        bare = not any(isinstance(t, Token) and t.value == "(" for t in raw)
        items = [a for a in c[1:] if a is not None]
        _positional_first(items)
        args = tuple(a for a in items if not isinstance(a, ast.Kwarg))
        kwargs = tuple(a for a in items if isinstance(a, ast.Kwarg))
        return ast.Call(name, args, kwargs, bare, s)

    @_rule
    def chain(self, s, c, raw):
        return ast.Chain(tuple(c), s)

    @_rule
    def branches(self, s, c, raw):
        return _seq(c, s)

    def _branch_block(self, kind, s, c):
        kwargs = tuple(a for a in c[:-1] if isinstance(a, ast.Kwarg))
        return ast.Branches(kind, kwargs, tuple(c[-1]), s)

    @_rule
    def concat(self, s, c, raw):
        return self._branch_block("concat", s, c)

    @_rule
    def add(self, s, c, raw):
        return self._branch_block("add", s, c)

    @_rule
    def multiply(self, s, c, raw):
        return self._branch_block("multiply", s, c)

    @_rule
    def defaults_entry(self, s, c, raw):
        return ast.DefaultsEntry(str(c[0]), tuple(a for a in c[1:] if a is not None), s)

    @_rule
    def defaults(self, s, c, raw):
        return ast.Defaults(tuple(c), s)

    @_rule
    def let(self, s, c, raw):
        return ast.Let(str(c[0]), c[1], s)

    @_rule
    def input(self, s, c, raw):
        if len(c) == 1 and isinstance(c[0], Token):
            dims = _dims(c[0], self.source)
            if len(dims) != 3:
                raise SpecError(f"input needs height x width x channels, got {len(dims)} numbers",
                                token_span(self.source, c[0]), hint="write for example `input 224x224x3`")
            tspan = token_span(self.source, c[0])
            return ast.Input(tuple(ast.Const(d, tspan) for d in dims), s)
        return ast.Input(tuple(c), s)

    @_rule
    def output(self, s, c, raw):
        return ast.Output(str(c[0]), c[1], False, (), s)

    @_rule
    def train_output(self, s, c, raw):
        kwargs = tuple(a for a in c[1:-1] if isinstance(a, ast.Kwarg))
        return ast.Output(str(c[0]), c[-1], True, kwargs, s)

    @_rule
    def block(self, s, c, raw):
        return _seq(c, s)

    @_rule
    def elif_clause(self, s, c, raw):
        return (c[0], tuple(c[1]), s)

    @_rule
    def if_stmt(self, s, c, raw):
        # an absent `else block` leaves placeholders (None) for both the keyword and the block
        cond, then, rest = c[0], c[1], [r for r in c[2:] if r is not None]
        elifs = [r for r in rest if not isinstance(r, _Seq)]
        orelse = tuple(rest[-1]) if rest and isinstance(rest[-1], _Seq) else ()
        for econd, ebody, espan in reversed(elifs):
            orelse = (ast.If(econd, ebody, orelse, espan),)
        return ast.If(cond, tuple(then), orelse, s)

    @_rule
    def repeat(self, s, c, raw):
        var = next((str(t) for t in c[1:-1] if isinstance(t, Token)), None)
        return ast.Repeat(c[0], var, tuple(c[-1]), s)

    @_rule
    def assign(self, s, c, raw):
        return ast.Assign(str(c[0]), c[1], s, token_span(self.source, c[0]))

    @_rule
    def variant(self, s, c, raw):
        return ast.Variant(str(c[0]), tuple(a for a in c[1:] if a is not None), s)

    # -- top level
    @_rule
    def param(self, s, c, raw):
        # `[...]` placeholders: a missing `= expr` leaves a None for each of its two symbols, so
        # the default and the choices are picked by kind, not by position
        default = next((x for x in c[1:] if x is not None and not isinstance(x, tuple)), None)
        choices = next((x for x in c[1:] if isinstance(x, tuple)), None)
        return ast.Param(str(c[0]), default, s, choices)

    @_rule
    def choices(self, s, c, raw):
        return tuple(c)

    @_rule
    def params(self, s, c, raw):
        return _seq((p for p in c if p is not None), s)

    @_rule
    def module(self, s, c, raw):
        return ast.Definition("module", str(c[0]), tuple(c[1] or ()), tuple(c[2]), s)

    @_rule
    def network(self, s, c, raw):
        return ast.Definition("network", str(c[0]), tuple(c[1] or ()), tuple(c[2]), s)

    @_rule
    def use(self, s, c, raw):
        return ast.Use(str(c[0])[1:-1], s)

    @_rule
    def start(self, s, c, raw):
        return tuple(c)


def _positional_first(items: list):
    seen_kw = False
    for a in items:
        if isinstance(a, ast.Kwarg):
            seen_kw = True
        elif seen_kw:
            raise SpecError("positional argument after a keyword argument", a.span)


@lru_cache(maxsize=1)
def _callback_plan(lark: Lark):
    # What Lark's `ParseTreeBuilder.create_callback` does for each parse, split in two: the rules
    # without a method here (they build Lark trees that a parent rule inlines) get their callbacks
    # once; the others are (rule, method name, Lark's wrappers for the placeholders of `[...]`), to
    # bind to each parse's transformer. Binding only those takes 20 us a parse instead of 120.
    builder = ParseTreeBuilder(lark.rules, Tree, False, False, lark.options.maybe_placeholders)
    shared = builder.create_callback(None)
    plan = []
    for rule, wrappers in builder.rule_builders:
        name = rule.alias or rule.options.template_source or rule.origin.name
        if hasattr(_ToAst, name):
            plan.append((rule, name, tuple(wrappers)))
            del shared[rule]
    return shared, tuple(plan)


def _callbacks(lark: Lark, transformer: _ToAst) -> dict:
    shared, plan = _callback_plan(lark)
    out = dict(shared)
    for rule, name, wrappers in plan:
        f = getattr(transformer, name)
        for wrap in wrappers:
            f = wrap(f)
        out[rule] = f
    return out


def parse_source(source: Source) -> ast.File:
    """Parse `source` into an `ast.File` whose spans point to `source`.

    The shared parser's tables run with callbacks bound to a transformer of this parse alone
    (Lark's interactive parser gives each parse its own state; its callbacks are set on that state,
    never on the shared parser). Raises `SpecError` with file:line:col, a caret and a hint for a
    syntax error, and for a number too large, a positional argument after a keyword one, or an
    `input` that is not height x width x channels.
    """
    lark = parser()
    run = lark.parse_interactive(source.text)
    run.parser_state.parse_conf.callbacks = _callbacks(lark, _ToAst(source))
    try:
        items = run.resume_parse()
    except UnexpectedInput as e:
        raise syntax_error(e, source) from None
    return ast.File(source.name, items)


def parse_text(text: str, file: str) -> ast.File:
    """Parse spec `text` (read from `file`, the name spans and errors show) into an `ast.File`:
    `parse_source(Source(file, text))`. Raises `SpecError` as `parse_source` does."""
    return parse_source(Source(file, text))
