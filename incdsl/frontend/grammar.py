"""The LALR parser for grammar.lark: Lark's tables and lexer, with a postlexer for line-ended
statements. Built once per process and shared: it holds only immutable tables and a stateless
lexer, so any number of parses (and threads) may use it at once. The AST is built by a transformer
made for each parse (`parse.py`), never by one stored here.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark, Token

from ..source import Source, Span
from .grammar_cache import open_parser

# After these a line end never ends a statement; before these it never does either (no statement
# starts with '{', so `network n()` may put its brace on the next line).
_JOIN_AFTER = frozenset({"->", "{", ",", "=", "(", ";"})
_JOIN_BEFORE = frozenset({"->", "{", "}", ")", ",", "else", "elif"})


class LineJoiner:
    """Lark postlexer: drop the line ends (`_SEP` tokens) that cannot end a statement, so specs read
    like Python: inside parentheses, after `->`, `{`, `,`, `=`, `(`, `;` and before `->`, `{`,
    `}`, `)`, `,`, `else`, `elif`. Keeps no state between parses (each `process` is a generator)."""

    always_accept = ("_SEP",)

    def process(self, stream):
        """The tokens of `stream` (Lark `Token`s) less the line ends that cannot end a statement."""
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
    """The Lark LALR parser for grammar.lark, built once per process (cached).

    Its tables come from grammar_cache's private per-user JSON cache (never a pickle in a shared
    temp folder); the postlexer is `LineJoiner`. It has no transformer: `parse.parse_source` runs
    its tables with a transformer of its own for each parse, and `parser().parse(text)` gives a Lark
    tree (the syntax-error hints parse their examples that way).
    """
    return open_parser(
        Path(__file__).with_name("grammar.lark"),
        lexer="basic",
        postlex=LineJoiner(),
        transformer=None,
        keep_all_tokens=True,  # spans come from tokens; see parse._rule
        maybe_placeholders=True,
    )


def token_span(source: Source, tok: Token) -> Span:
    """The span of the Lark token `tok` in `source` (a token without an end: one character)."""
    return Span(source, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1)
