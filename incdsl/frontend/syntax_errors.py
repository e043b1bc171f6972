"""Lark's syntax errors -> our `SpecError`: a span, the offending line with a caret, what the
parser expected there in words, and a hint for the common mistakes.

Lark reports terminals by their grammar names (RPAR, __ANON_0, _SEP); users see words. Hints come
from the expected-token sets, from the brackets still open, and from known bad examples matched by
the parser state they leave (as Lark's `UnexpectedInput.match_examples`, in
`examples/advanced/error_reporting_lalr.py`).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import Note, Span, SpecError, shorten
from ..source import Source
from .grammar import parser, token_span
from .size_syntax import size_hint

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


def describe_terminal(term: str) -> str:
    """A grammar terminal as users read it: "a name", "'('", "end of line"; never Lark's own names
    (RPAR, __ANON_0) nor "a symbol" for one with a literal pattern."""
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
_STATEMENT_STARTS = frozenset({"ADD", "CONCAT", "MULTIPLY", "DEFAULTS", "IF", "INPUT", "LET", "OUTPUT",
                               "REPEAT",
                               "TRAIN_OUTPUT", "VARIANT", "NAME"})


def _expected(terms) -> list[str]:
    terms = set(terms)
    if terms - _OPERATORS:
        terms -= _OPERATORS
    if {"LET", "REPEAT", "INPUT"} <= terms:
        return ["a statement"] + _expected(terms - _STATEMENT_STARTS)
    rank = lambda d: (not d.startswith("'"), d)  # punctuation and keywords first
    return sorted({describe_terminal(t) for t in terms}, key=rank)


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


def syntax_error(e: UnexpectedInput, source: Source) -> SpecError:
    """The `SpecError` for Lark's error `e` met while parsing `source`: "unexpected ..." at the
    culprit's span, a note with what the parser expected there in words, a note on a bracket never
    closed, and a hint for a known mistake (`conv 64, 3`, `if a = 1`, `input 1 x 2`, a typographic
    quote, ...)."""
    text = source.text
    lines = [l.rstrip("\r") for l in text.split("\n")]  # Lark's line numbering: "\n" only
    while len(lines) > 1 and not lines[-1]:  # the end of the file is the end of its last line
        lines.pop()
    line, col = getattr(e, "line", None) or 1, getattr(e, "column", None) or 1
    if isinstance(e, UnexpectedCharacters):
        return _bad_character(source, lines, line, col)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        terms = e.accepts or e.expected
    else:  # UnexpectedEOF: the LALR parser reports the end as a $END token, so this is rare
        tok, terms = Token("$END", ""), e.expected
    if tok.type == "$END":
        line, col = len(lines), len(lines[-1]) + 1
        span = Span(source, line, col, line, col + 1)
    elif tok.type == "_SEP" and "\n" in tok.value:  # point at the end of the line, not the next one
        line, col = tok.line, tok.column
        span = Span(source, line, col, line, col + 1)
    else:
        line, col = tok.line, tok.column
        span = token_span(source, tok)
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
        notes.append(Note(f"the '{ch}' opened here is never closed",
                          Span(source, oline, ocol, oline, ocol + 1)))
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


def _bad_character(source: Source, lines: list[str], line: int, col: int) -> SpecError:
    text = lines[line - 1] if line <= len(lines) else ""
    ch = text[col - 1] if 0 < col <= len(text) else "?"
    span = Span(source, line, col, line, col + 1)
    if ch == '"':
        return SpecError("unterminated string", Span(source, line, col, line, len(text) + 1),
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

