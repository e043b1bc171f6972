"""Source text and places in it: `Source(name, text)`, `Span(source, line, col, ...)`, and the
excerpt (the line with a caret under the culprit) that an error shows.

Each span points to the Source it came from, so an error renders its own line without any table
of files kept by the module: parsing an edited buffer a thousand times keeps nothing alive once
its AST is dropped (the language server parses for hours), and two threads parsing files of the
same name never see each other's text. As in xDSL, whose `Span(start, end, input)` prints itself.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Source:
    """The text of one spec: `name` is what errors show (`specs/x.inc`, `<string>`), `text` what was
    parsed (None for a place whose text is not at hand: a span a caller made from a file name).
    Two Sources are equal when name and text are."""
    name: str
    text: str | None = None

    def line(self, number: int) -> str | None:
        """The 1-based line `number` without its line break, or None when out of range or there is
        no text. Lines end at "\\n" only, as Lark counts them (not `splitlines()`, which also
        breaks at \\x0c, \\u2028...); a trailing "\\r" is dropped."""
        text = self.text
        if text is None or number < 1:
            return None
        start = 0
        for _ in range(number - 1):  # walk to the line instead of splitting a 4 MiB file
            start = text.find("\n", start) + 1
            if start == 0:
                return None
        end = text.find("\n", start)
        return (text[start:] if end == -1 else text[start:end]).rstrip("\r")


@dataclass(frozen=True, slots=True)
class Span:
    """A place in a Source: 1-based line and column of the first character, and of the character
    after the last (Lark's `meta` convention). `str()` is `file:line:col`; `file` is the source's
    name. `Span("x.inc", 1, 1, 1, 2)` (a name instead of a Source) makes a span without text."""
    source: Source
    line: int
    col: int
    end_line: int
    end_col: int

    def __post_init__(self) -> None:
        if isinstance(self.source, str):  # the older spelling Span(file, ...): a name without text
            object.__setattr__(self, "source", Source(self.source))

    @property
    def file(self) -> str:
        """The name of the span's source, as errors show it (`specs/x.inc`)."""
        return self.source.name

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.col}"

    def source_line(self) -> str | None:
        """The text of the span's first line (without its line break) from its own Source, or None
        when the source has no text or the line is out of range."""
        return self.source.line(self.line)


MAX_EXCERPT = 100  # characters of the source line shown; an error must fit one screen
# A control character of the spec is shown as its Unicode control picture (ESC as U+241B), one
# character for one, so carets stay in place and a hostile file cannot drive the terminal.
_PICTURES = {
    c: 0x2400 + c for c in range(0x20) if c != 0x09} | {0x7F: 0x2421} | {c: 0xFFFD for c in range(0x80, 0xA0)}
_PICTURES_BUT_LINES = {c: p for c, p in _PICTURES.items() if c != 0x0A}


def visible(text: str) -> str:
    """`text` with its control characters (but line breaks and tabs) as their Unicode control
    pictures: what an error echoes of a file name or a spec never drives the terminal."""
    return text.translate(_PICTURES_BUT_LINES)


def visible_name(text: str) -> str:
    """A name read from a user's file (an ONNX node or tensor, a Keras layer) with every control
    character as its picture, line feed and tab included: a name shown in a message can never start
    a line of its own (a forged `error:` line) nor drive the terminal."""
    return text.translate(_PICTURES | {0x09: 0x2409})


def excerpt(span: Span | None, label: str | None = None) -> list[str]:
    """The two lines an error shows under its message: the span's source line (a window of
    MAX_EXCERPT characters around the culprit when longer, tabs as one space) and a caret line
    `^^^ label` under the span's first line. Empty when there is no span or no text."""
    if span is None:
        return []
    line = span.source_line()
    if line is None:
        return []
    line = line.expandtabs(1).rstrip().translate(_PICTURES)
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
