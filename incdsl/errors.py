"""One error type for everything wrong with a spec, rendered like a compiler's.

A `Span` points into a source file; the text of every file the loader read is kept in
`SOURCES` so an error can show the offending line with a caret under the culprit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import difflib

SOURCES: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Span:
    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def source_line(self) -> str | None:
        text = SOURCES.get(self.file)
        if text is None:
            return None
        lines = text.split("\n")  # as Lark counts lines: not splitlines(), which also breaks at \x0c, \u2028...
        return lines[self.line - 1].rstrip("\r") if 0 < self.line <= len(lines) else None


@dataclass(frozen=True, slots=True)
class Note:
    message: str
    span: Span | None = None


@dataclass
class SpecError(Exception):
    """Anything wrong with a spec: syntax, names, shapes, sizes, files."""

    message: str
    span: Span | None = None
    notes: list[Note] = field(default_factory=list)
    hint: str | None = None
    label: str | None = None  # short text printed after the caret

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        where = f"{self.span}: " if self.span else ""
        out = [f"{where}error: {self.message}"]
        out += _excerpt(self.span, self.label)
        for note in self.notes:
            at = f" ({note.span})" if note.span else ""
            out.append(f"note: {note.message}{at}")
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


class UsageError(Exception):
    """A bad request rather than a bad spec: an unknown network argument, a value of the wrong kind,
    an option out of range. The command line reports it with exit code 2."""


class ArgumentError(UsageError):
    """A network argument whose value is not of its parameter's kind (`width='wide'`).

    `str()` says it in Python's words (`width='wide': width is a number ...`); the command line
    says it in its own (`--set width=wide: ...`) through `cli_message()`.
    """

    def __init__(self, name: str, value, problem: str):
        super().__init__(f"{name}={value!r}: {problem}")
        self.name, self.value, self.problem = name, value, problem

    def cli_message(self) -> str:
        return f"--set {self.name}={self.value}: {self.problem}"


MAX_EXCERPT = 100  # characters of the source line shown; an error must fit one screen


def _excerpt(span: Span | None, label: str | None) -> list[str]:
    if span is None:
        return []
    line = span.source_line()
    if line is None:
        return []
    line = line.expandtabs(1).rstrip()
    num = str(span.line)
    pad = " " * len(num)
    start = max(span.col - 1, 0)
    end = span.end_col - 1 if span.end_line == span.line else len(line)
    if len(line) > MAX_EXCERPT:  # a window of the line around the culprit
        left = max(0, min(start - 20, len(line) - MAX_EXCERPT))
        shown = line[left:left + MAX_EXCERPT]
        prefix = "..." if left else ""
        line = prefix + shown + ("..." if left + MAX_EXCERPT < len(line) else "")
        start, end = start - left + len(prefix), min(end - left, MAX_EXCERPT) + len(prefix)
    width = max(min(end, len(line)) - start, 1)
    caret = " " * start + "^" * width + (f" {label}" if label else "")
    return [f" {num} | {line}", f" {pad} | {caret}"]


CLOSE = 0.75  # difflib similarity for "did you mean": `stddev` vs `stride` (0.67) is not close


def did_you_mean(name: str, known) -> str | None:
    """A suggestion for a misspelt name, or None when nothing is close: only near spellings, and a
    known name the word starts with or begins (`convolution` -> `conv`, `max` -> `maxpool`), not one
    that is only the first part of a compound (`kernel_regularizer` is not a `kernel`)."""
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1, cutoff=CLOSE)
    if not close and len(name) >= 3:
        close = [k for k in known if len(k) >= 3 and ((name.startswith(k) and name[len(k)] != "_") or
                                                     (k.startswith(name) and k[len(name)] != "_"))][:1]
    return f"did you mean '{close[0]}'?" if close else None
