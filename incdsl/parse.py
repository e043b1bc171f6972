"""Text -> AST. Lark's LALR parser, a postlexer for line-ended statements, and `use` imports.

Lark's own exceptions never leave this module: they become `SpecError`s with a span, the
offending line, a caret and what the parser expected there.
"""
from __future__ import annotations

import errno
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from . import ast, library
from .errors import SOURCES, Note, Span, SpecError, shorten
from .grammar_cache import open_parser
from .io import note_input
from .size_syntax import size_hint

MAX_FILE_BYTES = 4 * 1024 * 1024

# After these a line end never ends a statement; before these it never does either (no statement
# starts with '{', so `network n()` may put its brace on the next line).
_JOIN_AFTER = frozenset({"->", "{", ",", "=", "(", ";"})
_JOIN_BEFORE = frozenset({"->", "{", "}", ")", ",", "else", "elif"})


class _LineJoiner:
    """Drop the line ends that cannot end a statement, so specs read like Python."""

    always_accept = ("_SEP",)

    def process(self, stream):
        depth = 0
        prev = None  # value of the last token passed on
        pending = None  # a _SEP waiting to see what follows it
        for tok in stream:
            if tok.type == "_SEP":
                if depth == 0 and prev is not None and prev not in _JOIN_AFTER and pending is None:
                    pending = tok
                continue
            if tok.type != "STRING":
                if tok.value in ("(",):
                    depth += 1
                elif tok.value == ")":
                    depth = max(depth - 1, 0)
            if pending is not None:
                if tok.type == "STRING" or tok.value not in _JOIN_BEFORE:
                    yield pending
                pending = None
            yield tok
            prev = tok.value if tok.type != "STRING" else '"'


@lru_cache(maxsize=1)
def parser() -> Lark:
    # the LALR tables come from a private per-user cache as JSON, never from a pickle in the
    # shared temp folder (Lark's cache=True): see grammar_cache
    """The Lark LALR parser for grammar.lark, built once per process (cached).

    Its tables come from grammar_cache's private per-user JSON cache (never a pickle in a shared temp
    folder); the postlexer drops the line ends that cannot end a statement (`_LineJoiner`), and the transformer builds the
    `ast` nodes with their spans while parsing.
    """
    return open_parser(
        Path(__file__).with_name("grammar.lark"),
        lexer="basic",
        postlex=_LineJoiner(),
        transformer=_TRANSFORMER,
        keep_all_tokens=True,  # spans come from tokens; see _rule
        maybe_placeholders=True,
    )


# Python refuses to turn more than 4,300 digits into an int; anything past 18 is a mistake anyway.
MAX_LITERAL = 10**18


def _number(tok: Token, file: str) -> int:
    text = str(tok)
    if len(text) > 18:
        raise SpecError(f"number too large: {text[:20]}{'...' if len(text) > 20 else ''}", _tok_span(file, tok))
    return int(text)


def _dims(tok: Token, file: str) -> tuple[int, ...]:
    parts = str(tok).split("x")
    if any(len(p) > 18 for p in parts):
        raise SpecError("number too large in sizes", _tok_span(file, tok))
    return tuple(int(d) for d in parts)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1)


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
        span = Span(self.file, first[0], first[1], last[2], last[3]) if first and last else None
        kept = [c for c in children if not isinstance(c, Token) or c.type in _KEEP]
        return fn(self, span, kept, children)
    callback.__name__ = fn.__name__
    return callback


class _ToAst:
    """Callbacks named after the grammar's rules; Lark calls them as it reduces."""

    file = "<string>"  # set before each parse

    # -- expressions
    @_rule
    def int_(self, s, c, raw):
        return ast.Const(_number(c[0], self.file), s)

    @_rule
    def float_(self, s, c, raw):
        v = float(c[0])
        if not math.isfinite(v) or abs(v) > MAX_LITERAL:
            raise SpecError(f"number too large: {c[0]}", _tok_span(self.file, c[0]))
        return ast.Const(v, s)

    @_rule
    def string(self, s, c, raw):
        return ast.Const(str(c[0])[1:-1], s)

    @_rule
    def dims(self, s, c, raw):
        return ast.Const(_dims(c[0], self.file), s)

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
            node = ast.BinOp(str(op), node, right, Span(self.file, node.span.line, node.span.col,
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
            dims = _dims(c[0], self.file)
            if len(dims) != 3:
                raise SpecError(f"input needs height x width x channels, got {len(dims)} numbers",
                                _tok_span(self.file, c[0]), hint="write for example `input 224x224x3`")
            tspan = _tok_span(self.file, c[0])
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
        return ast.Assign(str(c[0]), c[1], s, _tok_span(self.file, c[0]))

    @_rule
    def variant(self, s, c, raw):
        return ast.Variant(str(c[0]), tuple(a for a in c[1:] if a is not None), s)

    # -- top level
    @_rule
    def param(self, s, c, raw):
        return ast.Param(str(c[0]), c[1], s)

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


_TRANSFORMER = _ToAst()


# --- syntax errors -----------------------------------------------------------------------
# Lark reports terminals by their grammar names (RPAR, __ANON_0, _SEP); users see words.

_TOKEN_NAMES = {
    "_SEP": "end of line", "NAME": "a name", "INT": "an integer", "FLOAT": "a number",
    "STRING": "a string", "DIMS": "sizes like 3x3", "NAMED_DIMS": "sizes like 1xn", "$END": "end of file",
}
# Operators that could always continue an expression: listing them after `conv(64, 3` only
# buries the ')' or ',' that is really missing.
_OPERATORS = frozenset({"COMP_OP", "ADD_OP", "MUL_OP", "AND", "OR"})
_CLOSERS = {")": "(", "}": "{"}

# Common mistakes that the expected-token sets alone do not tell apart, recognized by the parser
# state they leave (see _match_example).
_EXAMPLES = {
    "input sizes are written HxWxC, e.g. `input 224x224x3`, or as `input(h, w, c)`": [
        "network n() {\ninput 1, 2, 3\n}", "network n() {\ninput 1 x 2\n}", "network n() {\ninput a\n}"],
    "compare with '==', not '='": [
        "network n() {\nif a = 1 { b }\n}", "network n() {\nif a == 1 { b } elif a = 2 { c }\n}",
        "network n() {\nif a > 1 and b = 1 { b }\n}"],
}


def _describe(term: str) -> str:
    if term in _TOKEN_NAMES:
        return _TOKEN_NAMES[term]
    try:
        pattern = parser().get_terminal(term).pattern
        if pattern.type == "str":
            return f"'{pattern.value}'"
    except KeyError:
        pass
    return "a symbol"  # never show Lark's internal terminal names


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_SEP":
        return "end of line" if "\n" in tok.value else "';'"
    return f"'{shorten(tok.value)}'"


# Where a statement may start, Lark lists every keyword and NAME; "a statement" says it better.
_STATEMENT_STARTS = frozenset({"ADD", "CONCAT", "MULTIPLY", "DEFAULTS", "IF", "INPUT", "LET", "OUTPUT", "REPEAT",
                               "TRAIN_OUTPUT", "VARIANT", "NAME"})


def _expected(terms) -> list[str]:
    terms = set(terms)
    if terms - _OPERATORS:
        terms -= _OPERATORS
    if {"LET", "REPEAT", "INPUT"} <= terms:
        return ["a statement"] + _expected(terms - _STATEMENT_STARTS)
    rank = lambda d: (not d.startswith("'"), d)  # punctuation and keywords first
    return sorted({_describe(t) for t in terms}, key=rank)


def _join(items: list[str]) -> str:
    if len(items) > 8:
        items = items[:7] + [f"{len(items) - 7} more"]
    if len(items) > 1:
        return ", ".join(items[:-1]) + " or " + items[-1]
    return items[0]


def _brackets(text: str, line: int, col: int):
    """The brackets still open just before (line, col), and whether a closer there has no opener.
    Strings and comments are skipped. Only called on an error, so plain Python is fine."""
    stack: list[tuple[str, int, int]] = []
    ln, cn, i, n = 1, 1, 0, len(text)
    unmatched = False
    while i < n:
        ch = text[i]
        if (ln, cn) >= (line, col):
            unmatched = ch in _CLOSERS and (not stack or stack[-1][0] != _CLOSERS[ch])
            break
        if ch == "\n":
            ln, cn, i = ln + 1, 1, i + 1
            continue
        if ch == "#" or ch == '"':
            stop = text.find("\n", i + 1)
            if ch == '"':
                q = text.find('"', i + 1)
                stop = q + 1 if q != -1 and (stop == -1 or q < stop) else stop
            stop = n if stop == -1 else stop
            cn += stop - i
            i = stop
            continue
        if ch in "({":
            stack.append((ch, ln, cn))
        elif ch in _CLOSERS and stack and stack[-1][0] == _CLOSERS[ch]:
            stack.pop()
        i, cn = i + 1, cn + 1
    return stack, unmatched


def _syntax_error(e: UnexpectedInput, file: str, text: str) -> SpecError:
    lines = [l.rstrip("\r") for l in text.split("\n")]  # Lark's line numbering: "\n" only
    while len(lines) > 1 and not lines[-1]:  # the end of the file is the end of its last line
        lines.pop()
    line, col = getattr(e, "line", None) or 1, getattr(e, "column", None) or 1
    if isinstance(e, UnexpectedCharacters):
        return _bad_character(file, lines, line, col)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        terms = e.accepts or e.expected
    else:  # UnexpectedEOF: the LALR parser reports the end as a $END token, so this is rare
        tok, terms = Token("$END", ""), e.expected
    if tok.type == "$END":
        line, col = len(lines), len(lines[-1]) + 1
        span = Span(file, line, col, line, col + 1)
    elif tok.type == "_SEP" and "\n" in tok.value:  # point at the end of the line, not the next one
        line, col = tok.line, tok.column
        span = Span(file, line, col, line, col + 1)
    else:
        line, col = tok.line, tok.column
        span = _tok_span(file, tok)
    expected = _expected(terms)
    notes = [Note("expected " + _join(expected))] if expected else []
    hint = None
    opened, unmatched = _brackets(text, line, col)
    if unmatched:
        hint = f"this '{tok.value}' has no matching '{_CLOSERS[tok.value]}'"
    elif opened and f"'{_closer(opened[-1][0])}'" in expected and (
            tok.type == "$END" or tok.value in ("module", "network", "use")
            or (opened[-1][0] == "(" and (tok.value in ("{", "}", "->") or opened[-1][1] < line))):
        ch, oline, ocol = opened[-1]
        notes.append(Note(f"the '{ch}' opened here is never closed", Span(file, oline, ocol, oline, ocol + 1)))
        hint = f"is a '{_closer(ch)}' missing?"
    if hint is None and tok.type == "NAME":
        hint = size_hint(lines[line - 1] if line <= len(lines) else "", col, tok.value)
    if hint is None and isinstance(e, UnexpectedToken) and tok.type != "$END":
        hint = _match_example(e)
    if hint is None:
        hint = _hint_for(tok, expected, lines[line - 1] if line <= len(lines) else "", col, opened, lines)
    return SpecError(f"unexpected {_describe_token(tok)}", span, notes=notes, hint=hint)


def _closer(opener: str) -> str:
    return ")" if opener == "(" else "}"


@lru_cache(maxsize=1)
def _example_states() -> dict[tuple, str]:
    """(parser state, token type) -> hint, from the bad examples above. Like Lark's
    `UnexpectedInput.match_examples`, but keyed on the LALR state alone, not the depth of the
    stack, so an example matches the same mistake at any nesting depth."""
    table: dict[tuple, str] = {}
    for hint, examples in _EXAMPLES.items():
        for text in examples:
            try:
                parser().parse(text)
            except UnexpectedToken as ut:
                table.setdefault((ut.state.position, ut.token.type), hint)
            except UnexpectedInput:  # an example that fails in the lexer teaches nothing here
                pass
    return table


def _match_example(e: UnexpectedToken) -> str | None:
    if e.state is None:
        return None
    return _example_states().get((e.state.position, e.token.type))


def _hint_for(tok: Token, expected: list[str], line_text: str, col: int, opened, lines) -> str | None:
    word = tok.type in ("INT", "FLOAT", "DIMS", "NAMED_DIMS", "NAME", "STRING")
    if "'network'" in expected and "'module'" in expected and (word or tok.type in _STATEMENT_STARTS):
        return "this is outside any network or module body: does a '}' above it close the body too early?"
    # scanned from the end, never with a regex that tries every start (that was quadratic: issue 12)
    before = _trailing_name(line_text[: col - 1])
    call = before if before and _starts_call(line_text[: col - 1], before) else None  # a call starts here
    if tok.type == "NAME" and "'->'" in expected:
        return "join the layers of a chain with '->', or start a new line"
    if call in ("concat", "add", "multiply") and "'{'" in expected:
        return f"the branches of {call} go in braces, one per line: {call} {{ ... }}"
    if word and "'('" in expected and "')'" not in expected and call:
        # `conv 64, 3`: show the call with parentheses, when the rest of it looks like arguments
        rest = line_text[col - 1:].split("#")[0].split("->")[0].strip()
        if re.fullmatch(r"[\w\s.,=*+\-/()\"]*", rest):
            return f"arguments go in parentheses: {call}({shorten(rest)})"
        return "arguments go in parentheses, for example conv(64, 3)"
    if word and "'='" in expected and "')'" in expected and before:
        return f"keyword arguments are written name=value: {shorten(before)}={shorten(tok.value)}"
    if word and "','" in expected:
        return "separate arguments with ','"
    if tok.value == "->" and "a name" in expected:
        return "a layer is missing between the two '->'"
    if expected == ["'{'"]:
        return "a body goes in braces: { ... }"
    if tok.value == "," and "'->'" in expected and opened and opened[-1][0] == "{" and _ends_branch_block(
            lines[opened[-1][1] - 1][: opened[-1][2] - 1]):
        return "branches go one per line (or separated by ';'), not by ','"
    return None


def _trailing_name(text: str) -> str | None:
    """The identifier `text` ends with (trailing spaces allowed), or None. Linear time."""
    end = len(text.rstrip())
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_") and text[start - 1].isascii():
        start -= 1
    word = text[start:end]
    return word if word and (word[0].isalpha() or word[0] == "_") else None


def _starts_call(text: str, word: str) -> bool:
    """Whether the trailing `word` starts a call: at the line start or after '->', '=', ';', '{'."""
    head = text.rstrip()[: -len(word)].rstrip()
    return not head or head.endswith(("->", "=", ";", "{"))


def _ends_branch_block(text: str) -> bool:
    """A branch block (`concat`, `add`, `multiply`), bare or with its arguments, ends `text`."""
    stripped = text.rstrip()
    if _trailing_name(stripped) in BRANCH_BLOCKS:
        return True
    return stripped.endswith(")") and re.search(r"\b(concat|add|multiply)\s*\(", stripped) is not None


BRANCH_BLOCKS = ("concat", "add", "multiply")


_QUOTES = frozenset("\u201c\u201d\u2018\u2019")  # what word processors put for " and '


def _bad_character(file: str, lines: list[str], line: int, col: int) -> SpecError:
    text = lines[line - 1] if line <= len(lines) else ""
    ch = text[col - 1] if 0 < col <= len(text) else "?"
    span = Span(file, line, col, line, col + 1)
    if ch == '"':
        return SpecError("unterminated string", Span(file, line, col, line, len(text) + 1),
                         hint='a string ends with " on the same line, e.g. use "lib/blocks.inc"')
    hint = None
    if ch in _QUOTES:
        hint = 'use a plain " (typographic quotes come from word processors)'
    elif ch == ":":
        hint = "keyword arguments are written name=value, e.g. conv(64, 3, stride=2)"
    elif ch == "[":
        hint = "arguments go in parentheses, e.g. conv(64, 3); tuples too: pad=(1, 2)"
    elif ch.isspace():
        hint = "replace it with a plain space"
    elif ch == "'":
        hint = 'strings use double quotes: "..."'
    if ch.isprintable() and not ch.isspace():
        shown = repr(ch) if ord(ch) < 128 else f"'{ch}' (U+{ord(ch):04X})"
    else:  # invisible: name it
        name = "a control character" if unicodedata.category(ch) == "Cc" else unicodedata.name(ch, "unnamed")
        shown = f"U+{ord(ch):04X} ({name})"
    return SpecError(f"unexpected character {shown}", span, hint=hint)


def _positional_first(items: list):
    seen_kw = False
    for a in items:
        if isinstance(a, ast.Kwarg):
            seen_kw = True
        elif seen_kw:
            raise SpecError("positional argument after a keyword argument", a.span)


# --- files and imports -------------------------------------------------------------------

def read_source(path: Path, span: Span | None = None, shown: str | None = None) -> str:
    """The text of the spec file `path`, checked: UTF-8, a leading byte-order mark dropped, no NUL byte.

    `span` is the `use` that imports it (for the error's place and notes) and `shown` the name used in
    messages (default `str(path)`). Raises `SpecError`, with file:line:col where there is one, for a
    missing file, a directory, a non-regular file, a symbolic-link loop, an unreadable file, more
    than MAX_FILE_BYTES bytes, bytes that are not UTF-8 or a NUL byte.
    """
    shown = shown or str(path)
    try:
        path.stat()  # a symlink loop or a missing file, before any other question
        if path.is_dir():
            raise SpecError(f"{shown} is a directory, not a spec file", span)
        if path.exists() and not path.is_file():  # /dev/zero or a pipe would never end
            raise SpecError(f"{shown} is not a regular file", span)
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(f"{shown} is {size:,} bytes; specs are limited to {MAX_FILE_BYTES:,}", span)
        data = path.read_bytes()
    except FileNotFoundError:
        hint = ("a `use` path is relative to the directory of the file that uses it, or names a shipped "
                "library file (lib/inception_v3.inc, ...)" if span else
                "`incdsl list` names the reference specs that ship with incdsl (e.g. incdsl check inception_v3)")
        raise SpecError(f"no such file: {shown}", span, hint=hint) from None
    except PermissionError:
        raise SpecError(f"cannot read {shown}: permission denied", span) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SpecError(f"cannot read {shown}: it is a symbolic link that loops (to itself, or through "
                            f"other links back to itself)", span) from None
        raise SpecError(f"cannot read {shown}: {e.strerror or e}", span) from None
    note_input(path)
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(f"{shown} is {len(data):,} bytes; specs are limited to {MAX_FILE_BYTES:,}", span)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = len(data[data.rfind(b"\n", 0, e.start) + 1: e.start].decode("utf-8", "replace")) + 1
        SOURCES[shown] = data.decode("utf-8", "replace")  # to show the line, with U+FFFD for the bad byte
        raise SpecError(f"{shown} is not UTF-8 text: byte 0x{data[e.start]:02x} cannot be decoded",
                        Span(shown, line, col, line, col + 1),
                        notes=[Note("imported here", span)] if span else [],
                        hint="save the file as UTF-8") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some Windows editors write
    nul = text.find("\x00")
    if nul != -1:
        line = text.count("\n", 0, nul) + 1
        col = nul - (text.rfind("\n", 0, nul) + 1) + 1
        SOURCES[shown] = text.replace("\x00", "\ufffd")
        raise SpecError(f"{shown} contains a NUL byte (U+0000): it looks like a binary file, not a spec",
                        Span(shown, line, col, line, col + 1),
                        notes=[Note("imported here", span)] if span else [],
                        hint="a spec is UTF-8 text; remove the NUL byte")
    return text


def parse_text(text: str, file: str) -> ast.File:
    """Parse spec `text` (read from `file`, the name spans carry) into an `ast.File`.

    The text is kept in SOURCES so that errors can show the line. Raises `SpecError` with
    file:line:col, a caret and a hint for a syntax error.
    """
    SOURCES[file] = text
    _TRANSFORMER.file = file
    try:
        items = parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, file, text) from None
    return ast.File(file, items)


@dataclass
class Program:
    """Everything visible from a spec file: its own items and, through `use`, its imports' modules."""
    path: str
    modules: dict[str, tuple[ast.Definition, str]] = field(default_factory=dict)
    networks: list[ast.Definition] = field(default_factory=list)  # the root file's own
    defaults: list[ast.Defaults] = field(default_factory=list)  # the root file's own
    variants: list[ast.Variant] = field(default_factory=list)


def load_program(path: str | Path, overlays: dict[Path, str] | None = None) -> Program:
    """Read a spec and everything it `use`s. `path` may name a shipped spec (`inception_v3`, `v3`).
    `overlays` maps resolved paths to text read instead of the file (an editor's unsaved buffer)."""
    root = library.resolve(path)
    prog = Program(str(root))
    _load_file(root, prog, stack=[], seen=set(), span=None, is_root=True, overlays=overlays or {})
    return prog


def load_program_text(text: str, name: str = "<string>") -> Program:
    """A program from spec text in memory; its `use` paths are relative to the working directory."""
    prog = Program(name)
    _load_file(Path(name), prog, stack=[], seen=set(), span=None, is_root=True, text=text)
    return prog


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, RuntimeError, OSError):
        return str(path)


def _exists(path: Path) -> bool:
    """Path.exists, but False for a name the system refuses (too long): read_source says why."""
    try:
        return path.exists()
    except OSError:
        return False


# `use` chains deeper than this are refused (each level is a Python call; 1,000 overflowed).
MAX_IMPORT_DEPTH = 200


def _load_file(path: Path, prog: Program, stack: list[Path], seen: set[Path], span: Span | None, is_root: bool,
               text: str | None = None, overlays: dict[Path, str] | None = None):
    if len(stack) >= MAX_IMPORT_DEPTH:
        raise SpecError(f"`use` imports nest more than {MAX_IMPORT_DEPTH} files deep", span,
                        hint="import the libraries from one file instead of each from the one before")
    try:
        real = path.resolve()
    except (RuntimeError, OSError) as e:  # Python 3.11: RuntimeError("Symlink loop ..."); later: OSError
        shown = shorten(str(path) if is_root else _display(path), 200)
        if isinstance(e, OSError) and e.errno != errno.ELOOP:  # a name too long, ...
            raise SpecError(f"cannot read {shown}: {e.strerror or e}", span) from None
        raise SpecError(f"cannot read {shown}: it is a symbolic link that loops (to itself, or through "
                        f"other links back to itself)", span) from None
    if real in stack:
        cycle = " -> ".join(_display(p) for p in stack[stack.index(real):] + [real])
        raise SpecError(f"import cycle: {cycle}", span, hint="move the shared modules into a file that both can `use`")
    if real in seen:
        return
    seen.add(real)
    file = str(path) if is_root else _display(path)
    text = text if text is not None else (overlays or {}).get(real)
    f = parse_text(read_source(path, span, file) if text is None else text, file)
    stack.append(real)
    for item in f.items:
        if isinstance(item, ast.Use):
            target = (path.parent / item.path)
            if not _exists(target):  # a shipped library file: `use "lib/inception_v3.inc"` anywhere
                target = library.shipped_import(item.path) or target
            _load_file(target, prog, stack, seen, item.span, is_root=False, overlays=overlays)
        elif isinstance(item, ast.Definition) and item.kind == "module":
            if item.name in prog.modules:
                first = prog.modules[item.name][0]
                raise SpecError(f"module '{item.name}' is defined twice", item.span,
                                notes=[Note("first defined here", first.span)])
            prog.modules[item.name] = (item, file)
        elif isinstance(item, ast.Defaults) and not is_root:
            # defaults are dynamic: at the top of a library they would reach no layer at all
            raise SpecError("defaults at the top of an imported file apply to nothing", item.span,
                            notes=[Note("imported here", span)] if span else [],
                            hint="put them in the body of the module that needs them, or in the network")
        elif is_root:
            if isinstance(item, ast.Definition):
                prog.networks.append(item)
            elif isinstance(item, ast.Defaults):
                prog.defaults.append(item)
            elif isinstance(item, ast.Variant):
                prog.variants.append(item)
    stack.pop()
