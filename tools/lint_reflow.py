#!/usr/bin/env python3
"""Fix the lines ruff reports as too long (E501) that `ruff check --fix` cannot; run by
`tools/lint --fix` after ruff's own fixes.

    tools/lint_reflow.py [--ruff RUFF] [--width 110] PATH...

Per file, bottom-up (so that the line numbers above stay valid):
- a full-line comment or a docstring line: the words past the width move to the start of the next
  line of the same paragraph (a new line where the paragraph ends), and so on down; the words and
  their order never change, and the other paragraphs are left as they are;
- a code line with a trailing comment: the comment moves above the code, as its own line(s), when
  the code then fits;
- any other code line: broken after a comma inside brackets, the rest aligned past the bracket (the
  code's own layout), or after an open bracket; else `ruff format --range` on that statement alone,
  kept when it then fits.
What none of these can fix (a long string literal, a long URL) is listed for a hand fix. Each file
is checked afterwards: its syntax tree, with docstrings compared word by word, must be the one it
had before, else the file is restored and listed. Exit status 0 when nothing is left to fix by hand.
"""
from __future__ import annotations

import argparse
import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# a line that opens a list item: its continuation lines are indented past the marker
BULLET = re.compile(r"(?:[-*+]|\d+[.)]) ")
# comments that tools read: never moved or re-wrapped
PRAGMA = re.compile(r"#\s*(noqa|type:|fmt:|pragma|isort:|pyright:|ruff:)")
QUOTES = re.compile(r'[rRuUbB]{0,2}("""|\'\'\'|"|\')')


@dataclass(frozen=True)
class Kind:
    """How a line is made: 'comment' (a full-line comment at column `col`), 'docstring' (a line of
    a docstring whose opening quotes are at (`first`, `col`) and whose last line is `last`),
    'trailing' (code, then a comment at `col`), 'string' (inside another multi-line string:
    never touched) or 'code' (the default)."""
    name: str
    col: int = 0
    first: int = 0
    last: int = 0


def line_kinds(source: str) -> dict[int, Kind]:
    """The kind of each 1-based row that is not plain code, from Python's tokens (a '#' inside a
    string is never taken for a comment)."""
    kinds: dict[int, Kind] = {}
    docstrings = docstring_starts(source)
    code_rows: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        (r0, c0), (r1, _) = tok.start, tok.end
        if tok.type == tokenize.COMMENT:
            kinds[r0] = Kind("trailing", c0) if r0 in code_rows else Kind("comment", c0)
        elif tok.type == tokenize.STRING and (tok.start in docstrings or r0 != r1):
            for row in range(r0, r1 + 1):
                kinds[row] = (Kind("docstring", c0, r0, r1) if tok.start in docstrings
                              else Kind("string"))
            code_rows.update((r0, r1))
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER):
            code_rows.update(range(r0, r1 + 1))
    return kinds


def docstring_starts(source: str) -> set[tuple[int, int]]:
    """(row, col) where each module, class and function docstring starts."""
    return {(d.lineno, d.col_offset) for d in _docstring_nodes(ast.parse(source))}


def _docstring_nodes(tree: ast.AST) -> list[ast.Constant]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                found.append(first.value)
    return found


def same_program(before: str, after: str) -> bool:
    """Whether two sources parse to the same tree, docstrings compared word by word (their line
    breaks are what the reflow changes)."""
    def dump(source: str) -> str:
        tree = ast.parse(source)
        for doc in _docstring_nodes(tree):
            doc.value = " ".join(doc.value.split())
        return ast.dump(tree)
    try:
        return dump(before) == dump(after)
    except SyntaxError:
        return False


def lead(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" "))]


def hang(line: str, prefix: str) -> str:
    """The lead of a line continuing `line`: its prefix, plus a list item's hanging indent."""
    m = BULLET.match(line[len(prefix):])
    return prefix + " " * len(m.group(0)) if m else prefix


def cut(text: str, room: int) -> tuple[str, str] | None:
    """text split at the last space that leaves at most `room` characters before it (the spaces
    there dropped); None when there is none (one long word)."""
    at = text.rfind(" ", 0, room + 1)
    head = text[:at].rstrip(" ") if at > 0 else ""
    if not head.strip():
        return None
    return head, text[at:].lstrip(" ")


def push_down(lines: list[str], row: int, last: int, width: int, prefix: str, next_lead: str,
              joins: Callable[[str, str], bool]) -> bool:
    """Move the words past `width` on lines[row] (0-based; its first `len(prefix)` characters kept
    as they are) to the start of the next line when `joins(that line, its lead)` says it is the
    same paragraph and it is not past `last`, else onto a new line led by `next_lead`; repeat on
    the line that grew. Returns False, changing nothing, when a line has no space to cut at."""
    work = list(lines)
    i = row
    while len(work[i]) > width:
        parts = cut(work[i][len(prefix):], width - len(prefix))
        if parts is None:
            return False
        work[i] = prefix + parts[0]
        cont = hang(work[i], next_lead) if i == row else next_lead
        if i + 1 <= last and i + 1 < len(work) and joins(work[i + 1], cont):
            work[i + 1] = cont + parts[1].rstrip(" ") + " " + work[i + 1][len(cont):]
        else:
            work.insert(i + 1, cont + parts[1])
            last += 1
        i += 1
        prefix = next_lead = cont
    lines[:] = work
    return True


def _joins(line: str, cont: str) -> bool:
    body = line[len(cont):]
    return (line.startswith(cont) and bool(body.strip()) and not body.startswith(" ")
            and not BULLET.match(body) and not PRAGMA.match(body)
            and not body.startswith(('"""', "'''", "```", ">>>", "$ ")))


def fix_line(lines: list[str], row: int, kind: Kind, width: int) -> bool:
    """Fix the too-long 0-based `row` in place when it is a comment, a docstring line or a code
    line with a trailing comment; False when it is left for ruff format or a hand fix."""
    line = lines[row]
    if kind.name == "comment":
        prefix = line[:kind.col] + "# "
        if not line.startswith(prefix) or PRAGMA.match(line[kind.col:]):
            return False
        return push_down(lines, row, len(lines) - 1, width, prefix, prefix,
                         lambda nxt, cont: _joins(nxt, cont) and nxt.startswith(prefix))
    if kind.name == "docstring":
        last = kind.last - 1
        if row == kind.first - 1:
            quote = QUOTES.match(line[kind.col:])
            prefix, next_lead = line[:kind.col + quote.end()], " " * kind.col
            if lines[row][len(prefix):].startswith(" "):
                return False
        else:
            prefix = next_lead = lead(line)
        return push_down(lines, row, last, width, prefix, next_lead, _joins)
    if kind.name == "trailing":
        code, comment = line[:kind.col].rstrip(), line[kind.col:]
        if (len(code) > width or PRAGMA.match(comment) or not comment.startswith("# ")
                or (row and lines[row - 1].rstrip().endswith("\\"))):
            return False
        indent = lead(line)
        lines[row:row + 1] = [indent + comment, code]
        if len(lines[row]) > width:
            pushed = push_down(lines, row, row, width, indent + "# ", indent + "# ", lambda *_: False)
            if not pushed:
                lines[row:row + 2] = [line]
                return False
        return True
    return False


def long_lines(ruff: str, paths: list[Path]) -> dict[Path, list[int]]:
    """The rows ruff reports as too long, by file (ruff's settings and file choice: pyproject.toml,
    .gitignore)."""
    done = subprocess.run([ruff, "check", "--select", "E501", "--output-format", "json", "--exit-zero",
                           *map(str, paths)], capture_output=True, text=True, check=True)
    found: dict[Path, set[int]] = {}
    for d in json.loads(done.stdout):
        found.setdefault(Path(d["filename"]), set()).add(d["location"]["row"])
    return {f: sorted(rows) for f, rows in sorted(found.items())}


def too_long(ruff: str, path: Path) -> list[int]:
    return long_lines(ruff, [path]).get(path.resolve(), [])


def wrap_code(lines: list[str], row: int, width: int) -> bool:
    """Break the too-long code line at 0-based `row` after its last comma inside brackets that
    leaves the head within `width`, the rest aligned one column past the open bracket (the code's
    own layout) or, when the bracket ends its line, at this line's indent; else after its
    outermost open bracket, the rest 4 columns in; repeat on the rest. False, changing nothing,
    when neither serves."""
    work = list(lines)
    i = row
    while len(work[i]) > width:
        source = "\n".join(work) + "\n"
        stack: list[tuple[int, int, bool]] = []  # open brackets: row, col, whether its line ends there
        best: tuple[int, int, int] | None = None  # column to break at, the next line's indent, depth
        opener: tuple[int, int, int] | None = None
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        # depths inside a comprehension's `for` target or a lambda's parameters: no break there
        binding: set[int] = set()
        for k, tok in enumerate(tokens):
            if tok.type == tokenize.NAME and tok.string in ("for", "lambda"):
                binding.add(len(stack))
            elif (tok.type == tokenize.NAME and tok.string == "in") or (tok.type == tokenize.OP
                                                                      and tok.string == ":"):
                binding.discard(len(stack))
            if tok.type == tokenize.OP and tok.string in "([{":
                nxt = next(t for t in tokens[k + 1:] if t.type not in (tokenize.NL, tokenize.COMMENT))
                stack.append((tok.start[0], tok.start[1], nxt.start[0] != tok.start[0]))
                # else: after the outermost open bracket that leaves its line, the rest on the next
                # line 4 columns in (Python's hanging indent)
                if (tok.start[0] == i + 1 and nxt.start[0] == i + 1 and tok.end[1] <= width
                        and (opener is None or len(stack) < opener[2])):
                    opener = (tok.end[1], len(lead(work[i])) + 4, len(stack))
            elif tok.type == tokenize.OP and tok.string in ")]}":
                binding.discard(len(stack))
                stack.pop()
            elif (tok.type == tokenize.OP and tok.string == "," and tok.start[0] == i + 1 and stack
                    and len(stack) not in binding
                    and tok.end[1] <= width and tokens[k + 1].start[0] == i + 1
                    and tokens[k + 1].type not in (tokenize.COMMENT, tokenize.NL)):
                r, c, ends = stack[-1]
                indent = len(lead(work[i])) + 4 if ends and r == i + 1 else (
                    len(lead(work[i])) if ends else c + 1)
                # the shallowest comma that fits, the last one of those
                if best is None or len(stack) < best[2] or len(stack) == best[2]:
                    best = (tok.end[1], indent, len(stack))
            elif tok.start[0] > i + 1:
                break
        if best is None or best[1] >= best[0]:
            best = opener
        if best is None or best[1] >= best[0]:
            return False
        at, indent, _ = best
        head, rest = work[i][:at].rstrip(), work[i][at:].lstrip(" ")
        work[i:i + 1] = [head, " " * indent + rest]
        i += 1
    lines[:] = work
    return True


def format_statement(ruff: str, path: Path, row: int, width: int) -> None:
    """`ruff format` the statement at 1-based `row`, kept only when all its new lines fit (a long
    string stays long however ruff lays out the call around it, so the hand layout stays)."""
    old = path.read_text()
    subprocess.run([ruff, "format", "--quiet", f"--range={row}-{row + 1}", str(path)],
                   capture_output=True, text=True)
    a, b = old.split("\n"), path.read_text().split("\n")
    same_head = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    same_tail = next((i for i, (x, y) in enumerate(zip(a[::-1], b[::-1])) if x != y or i >= len(a) - same_head
                      or i >= len(b) - same_head), 0)
    if any(len(line) > width for line in b[same_head:len(b) - same_tail]):
        path.write_text(old)


def reflow_file(path: Path, ruff: str, width: int) -> list[str]:
    """Fix one file; return 'file:row: why' for each long line left for a hand fix."""
    before = path.read_text()
    rows = too_long(ruff, path)
    if not rows:
        return []
    lines = before.split("\n")
    kinds = line_kinds(before)
    for row in reversed(rows):
        fix_line(lines, row - 1, kinds.get(row, Kind("code")), width)
    text = "\n".join(lines)
    if text != before:
        path.write_text(text)
    # what is left that is code: ruff format on each statement, bottom-up
    # code: broken after a comma where one serves, else ruff format on that statement; bottom-up
    for row in reversed(too_long(ruff, path)):
        text = path.read_text()
        if line_kinds(text).get(row, Kind("code")).name not in ("code", "trailing"):
            continue
        lines = text.split("\n")
        if wrap_code(lines, row - 1, width):
            path.write_text("\n".join(lines))
        else:
            format_statement(ruff, path, row, width)
    after = path.read_text()
    if not same_program(before, after):
        path.write_text(before)
        return [f"{path}: not changed: the reflow would have changed the program (a bug here)"]
    return [f"{path}:{row}: {line_kinds(after).get(row, Kind('code')).name} line still too long"
            for row in too_long(ruff, path)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--ruff", default="ruff", help="the ruff executable")
    ap.add_argument("--width", type=int, default=110, help="the line length ruff checks")
    args = ap.parse_args(argv)
    left = [msg for f in long_lines(args.ruff, args.paths) for msg in reflow_file(f, args.ruff, args.width)]
    for msg in left:
        print(msg)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
