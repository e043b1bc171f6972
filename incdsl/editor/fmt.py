"""`incdsl fmt`: one canonical layout for .inc files, keeping every comment.

The formatter works on tokens, line by line, so comments (which the grammar drops) stay where
the author put them. It decides, like gofmt:
- indentation: two spaces per open `{`; a line that continues a statement (inside parentheses,
  after `->`, `,` or `=`, or starting with `->`) four more;
- spacing: `conv(64, 3, stride=2)`, `a = b -> c`, `int(c1 * width)`, `-1`, `{ a; b }`;
- line breaks: at most one blank line, none after `{` or before `}`; a chain longer than
  MAX_WIDTH breaks before its `->` (continuation lines start with `->`), and a `->` that ends a line
  moves to the start of the next;
- trailing comments: aligned two spaces after the longest code line of each run of consecutive
  lines that carry one.
The author's other line breaks stay. The result is checked before anything is written: it must
parse to the same AST (spans aside) and keep the same comments, or `format_text` raises.
"""
from __future__ import annotations

import dataclasses
import re

from ..errors import SpecError

MAX_WIDTH = 100
INDENT = "  "
CONTINUATION = INDENT * 2

# The grammar's named terminals that _TOKEN below reads (tests/editor/test_fmt.py checks the grammar has no
# others).
TERMINALS = frozenset({"DIMS", "NAMED_DIMS", "FLOAT", "INT", "NAME", "STRING", "COMP_OP", "ADD_OP", "MUL_OP",
                       "_SEP", "COMMENT", "WS"})
# The grammar's terminals, in the order Lark's basic lexer tries them (priority, then length).
_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"[^"\n]*")
  | (?P<dims>\d+(?:x\d+)+(?![\w.]))
  | (?P<named_dims>\d+(?:x\d+)*x[A-Za-z_]\w*)
  | (?P<float>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)
  | (?P<int>\d+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|==|!=|<=|>=|//|[-+*/%<>=(){},;])
  | (?P<space>[ \t\f\r]+)
""", re.VERBOSE)

_BINARY = frozenset({"==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "//", "%", "and", "or"})
# After these a '+' or '-' is a sign, not a binary operator.
_SIGN_AFTER = frozenset({None, "(", ",", "=", "->", "{", ";", "not", "if", "elif", "repeat",
                         "input"}) | _BINARY
# Keywords that take a space before a '(' (a call or a function takes none).
_SPACED_KEYWORDS = frozenset({"if", "elif", "else", "repeat", "as", "and", "or", "not", "in"})
# A line after one ending in these continues the same statement.
_CONTINUES = frozenset({"->", ",", "=", "("})


@dataclasses.dataclass
class _Line:
    tokens: list[str]
    comment: str | None


def _tokenize(line: str, number: int, file: str) -> _Line:
    tokens, comment, pos = [], None, 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if m is None:  # the parser accepted the file, so this cannot happen; refuse rather than guess
            raise SpecError(f"fmt cannot read this character: {line[pos]!r}", None)
        pos = m.end()
        if m.lastgroup == "comment":
            comment = m.group().rstrip()
        elif m.lastgroup != "space":
            tokens.append(m.group())
    return _Line(tokens, comment)


def _join(tokens: list[str], paren: int, prev: str | None) -> tuple[str, int]:
    """The tokens of one line with canonical spaces; the paren depth after them."""
    out: list[str] = []
    for i, tok in enumerate(tokens):
        before = tokens[i - 1] if i else None
        sign_before = before in ("-",
                                 "+") and (
                                     tokens[i - 2] if i >= 2 else prev if i == 1 else None) in _SIGN_AFTER
        if i == 0:
            pass
        elif tok in (")", ",", ";") or before == "(" or sign_before:
            pass
        elif tok == "(":
            if not (re.match(r"[A-Za-z_]", before) and before not in _SPACED_KEYWORDS):
                out.append(" ")
        elif tok == "=" or before == "=":
            if paren == 0:
                out.append(" ")
        else:
            out.append(" ")
        out.append(tok)
        if tok == "(":
            paren += 1
        elif tok == ")":
            paren = max(paren - 1, 0)
    return "".join(out), paren


def _split_chain(code_tokens: list[str], paren: int, indent: str, more: str) -> list[list[str]]:
    """Token groups, one per output line, breaking a too-long chain before its top-level '->'."""
    segments: list[list[str]] = [[]]
    depth_p, depth_b = paren, 0
    for tok in code_tokens:
        if tok == "->" and depth_p == 0 and depth_b == 0 and segments[-1]:
            segments.append([])
        segments[-1].append(tok)
        if tok == "(":
            depth_p += 1
        elif tok == ")":
            depth_p -= 1
        elif tok == "{":
            depth_b += 1
        elif tok == "}":
            depth_b -= 1
    lines: list[list[str]] = [segments[0]]
    for seg in segments[1:]:
        trial = lines[-1] + seg
        width = len(indent if len(lines) == 1 else more) + len(_join(trial, paren, None)[0])
        if width <= MAX_WIDTH:
            lines[-1] = trial
        else:
            lines.append(list(seg))
    return lines


def format_text(text: str, file: str = "<string>") -> str:
    """The canonical layout of a spec's text. Raises SpecError if the text does not parse, and
    SpecError (an internal one) if the layout would change the AST or lose a comment."""
    from ..frontend.parse import parse_text

    before = parse_text(text, file)  # refuse what does not parse, with the parser's message
    raw = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    lines = [_tokenize(l, n + 1, file) for n, l in enumerate(raw)]
    _move_trailing_arrows(lines)

    rows: list[tuple[str, str, str | None]] = []  # (indent, code, comment); ("", "", None) is blank
    brace = paren = 0
    prev: str | None = None  # the last code token so far
    for line in lines:
        toks = line.tokens
        if not toks and line.comment is None:
            rows.append(("", "", None))
            continue
        level = brace - (1 if toks and toks[0] == "}" else 0)
        indent = INDENT * max(level, 0)
        continues = paren > 0 or prev in _CONTINUES
        if toks and (continues and toks[0] != ")" or toks[0] == "->") or not toks and continues:
            indent += CONTINUATION
            more = indent
        else:
            more = indent + CONTINUATION
        if toks:
            pieces = _split_chain(toks, paren, indent, more) if _too_long(indent, toks, paren,
                                                                          prev) else [toks]
            for k, piece in enumerate(pieces):
                code, _ = _join(piece, paren, prev)
                rows.append((indent if k == 0 else more, code, line.comment if k == 0 else None))
            for tok in toks:
                if tok == "{":
                    brace += 1
                elif tok == "}":
                    brace -= 1
                elif tok == "(":
                    paren += 1
                elif tok == ")":
                    paren = max(paren - 1, 0)
            prev = toks[-1]
        else:
            rows.append((indent, "", line.comment))
    out = _layout(rows)
    _check_same(before, out, text, file)
    return out


def _too_long(indent: str, toks: list[str], paren: int, prev) -> bool:
    return len(indent) + len(_join(toks, paren, prev)[0]) > MAX_WIDTH and "->" in toks[1:]


def _move_trailing_arrows(lines: list[_Line]) -> None:
    """`a ->` at a line end becomes `-> b` at the start of the next line with code."""
    for i, line in enumerate(lines):
        if line.tokens and line.tokens[-1] == "->" and line.comment is None and len(line.tokens) > 1:
            nxt = next((l for l in lines[i + 1:] if l.tokens or l.comment), None)
            if nxt is not None and nxt.tokens and nxt.tokens[0] != "->":
                line.tokens.pop()
                nxt.tokens.insert(0, "->")


def _layout(rows: list[tuple[str, str, str | None]]) -> str:
    # blank lines: at most one, none at the ends of the file or just inside braces
    kept: list[tuple[str, str, str | None]] = []
    for i, row in enumerate(rows):
        if row == ("", "", None):
            if not kept or kept[-1] == ("", "", None) or kept[-1][1].endswith("{"):
                continue
            nxt = next((r for r in rows[i + 1:] if r != ("", "", None)), None)
            if nxt is None or nxt[1].startswith("}"):
                continue
        kept.append(row)
    # trailing comments: one column per run of consecutive lines with code and a comment
    out: list[str] = []
    i = 0
    while i < len(kept):
        indent, code, comment = kept[i]
        if code and comment:
            j = i
            while j < len(kept) and kept[j][1] and kept[j][2]:
                j += 1
            col = max(len(r[0]) + len(r[1]) for r in kept[i:j]) + 2
            for ind, c, com in kept[i:j]:
                out.append(f"{ind}{c}".ljust(col) + com)
            i = j
            continue
        out.append(f"{indent}{code}" if code else (f"{indent}{comment}" if comment else ""))
        i += 1
    return "\n".join(out) + "\n"


def _plain(node):
    """An AST node without its spans, for comparing two parses of the same program."""
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(_plain(getattr(node, f.name)) for f in dataclasses.fields(node)
                                              if f.name not in ("span", "name_span"))
    if isinstance(node, tuple):
        return tuple(_plain(x) for x in node)
    return node


def _comments(text: str) -> list[str]:
    return [l.comment for l in (_tokenize(t, 0, "") for t in text.split("\n")) if l.comment]


def _check_same(before, out: str, text: str, file: str) -> None:
    from ..frontend.parse import parse_text

    try:
        after = parse_text(out, file)
    except SpecError as e:
        raise SpecError(
            f"fmt would break this file (a bug in incdsl fmt; nothing was written): {e.message}") from None
    try:
        same = _plain(after.items) == _plain(before.items)
    except RecursionError:
        raise SpecError(
            f"{file}: nested too deeply for fmt to check its layout; nothing was written") from None
    if not same:
        raise SpecError(
            f"{file}: fmt would change what the file means (a bug in incdsl fmt; nothing was written)")
    if _comments(out) != _comments(text.replace("\r\n", "\n")):
        raise SpecError(f"{file}: fmt would lose a comment (a bug in incdsl fmt; nothing was written)")
