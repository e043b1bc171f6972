"""One error type for everything wrong with a spec, rendered like a compiler's.

A `SpecError` has a span (a place in a `source.Source`), notes and a hint; it renders the offending
line with a caret under the culprit from the span's own Source. Nothing here keeps state between
errors or parses.
"""
from __future__ import annotations

import difflib
import errno
import os
import re
import string
from dataclasses import dataclass, field

from .source import Source, Span, excerpt, visible  # noqa: F401 (Source, Span: re-exported, importers use errors.Span)
from .text import strip_ansi  # noqa: F401 (re-exported)


@dataclass(frozen=True, slots=True)
class Note:
    """A `note:` line under an error: extra context (the module call an error happened in, the
    other definition of a duplicate name), with its own optional spec place."""
    message: str
    span: Span | None = None


def call_note(module: str, name: str, span: Span) -> Note:
    """The note (rustc style, innermost call first) that says which module call an error inside a
    module body came from: "in module v3_d, called as 'mixed8' (specs/inception_v3.inc:32:12)"."""
    return Note(f"in module {module}, called as '{name}'", span)


@dataclass
class SpecError(Exception):
    """Anything wrong with a spec: syntax, names, shapes, sizes, files.

    Raised by parsing, elaboration and the passes (so by `incdsl.load` and every command), and by
    the backends for a weights file that does not fit. `message` says what is wrong; `span` where
    (file:line:col, None when there is no spec place); `notes` add context (the module calls it sits
    in); `hint` suggests a fix; `label` is the short text after the caret. `str()` is `render()`:
    rustc-style text that fits one screen. The command line prints it and exits 1."""

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
        """The error in one screen: every name or value it quotes is clipped (`clip`), and at
        most MAX_NOTES notes are shown."""
        where = f"{visible(str(self.span))}: " if self.span else ""
        out = [f"{where}error: {clip(self.message)}"]
        out += excerpt(self.span, clip(self.label) if self.label else None)
        for note in self.notes[:MAX_NOTES]:
            at = f" ({note.span})" if note.span else ""
            out.append(f"note: {clip(note.message)}{at}")
        if len(self.notes) > MAX_NOTES:
            out.append(f"note: ... and {len(self.notes) - MAX_NOTES} more")
        if self.hint:
            out.append(f"hint: {clip(self.hint)}")
        return "\n".join(out)


@dataclass
class DataError(Exception):
    """A training run that failed while it ran, for a reason outside the spec: the loss became
    NaN or infinite, the data folder or one of its images vanished or does not decode, a file to
    load is not a model. Kept apart from `SpecError` (a fault of the spec, found before anything
    runs) so that `except SpecError` does not catch it; the command line prints it the same way,
    `error: ...` with its hint, and exits 1. `message` and `hint` may be `ParamText`, naming
    parameters (the command line words them as flags)."""

    message: str
    hint: str | None = None
    span = None  # no spec place: what failed is the data or the run, not a line of the spec
    label = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        """One screen: `error: message`, then `hint: ...`, each clipped as `SpecError.render` does."""
        return SpecError(self.message, hint=self.hint).render()


class MissingFileError(SpecError, FileNotFoundError):
    """A file or folder that is not there: a spec, a `use`d file, a weights file, a data folder.

    A `SpecError` (the command line prints it the same way, exit 1) that is also Python's own
    `FileNotFoundError` (so `except FileNotFoundError` and `except OSError` catch it), with
    `errno` ENOENT and `filename` the path as given."""

    def __init__(self, message, path=None, span: Span | None = None, hint=None, notes=None):
        SpecError.__init__(self, message, span, list(notes or []), hint)
        self.errno, self.strerror = errno.ENOENT, os.strerror(errno.ENOENT)
        self.filename = None if path is None else str(path)


def missing_file(role: str, path, missing: str = "not found") -> SpecError:
    """The error for a `role` file ("weights file") at `path` that is not a regular file:
    `MissingFileError` (a `FileNotFoundError`) when nothing is there, else a `SpecError` saying
    it is not a file (a directory, a device)."""
    shown = shorten(str(path), 200)
    if not os.path.exists(path):
        return MissingFileError(f"{role} {shown} {missing}", path)
    return SpecError(
        f"{role} {shown} is not a regular file" + (" (it is a directory)" if os.path.isdir(path) else ""))


class UsageError(Exception):
    """A bad request rather than a bad spec: an unknown network argument, a value of the wrong kind,
    an option out of range. The command line reports it with exit code 2."""


class NothingFits(UsageError):
    """No value meets the budgets (`incdsl fit`): a well-formed request whose answer is empty, not
    bad usage. The command line says "nothing fits: ..." and exits 1 (`fit --vary`, `--scale` and
    the Pareto set of a grid alike)."""


class ArgumentError(UsageError):
    """A network argument whose value is not of its parameter's kind (`width='wide'`).

    `str()` says it in Python's words (`width='wide': width is a number ...`); the command line
    says it in its own (`--set width=wide: ...`) through `cli_message()`.
    """

    def __init__(self, name: str, value, problem: str):
        super().__init__(f"{name}={value!r}: {problem}")
        self.name, self.value, self.problem = name, value, problem

    def cli_message(self) -> str:
        """The message in the command line's words: `--set name=value: problem`."""
        return f"--set {self.name}={self.value}: {self.problem}"


class OptionError(UsageError):
    """An option of a library call that is out of range (`TrainConfig(epochs=0)`,
    `backends.onnx.export(..., layout="nhcw")`): the library names the parameter, the command line
    names its flag.

    `template` is a `str.format` template whose fields are parameter names, except those given in
    `values` (the offending values, filled in as they are). `str()` writes each parameter as its
    Python name (`epochs must be at least 1`) or as `words` says (`{"no_verify": "verify=False"}`);
    `worded(flags)` writes each as the command line's flag (`--epochs must be at least 1`; the table
    is `incdsl.cli.commands.flags.FLAGS`).
    """

    def __init__(self, template: str, words: dict[str, str] | None = None, **values):
        self.template, self.values, self.words = template, values, dict(words or {})
        super().__init__(self.worded(self.words))

    @property
    def params(self) -> list[str]:
        """The parameter names the message mentions, in order."""
        return [f for _, f, _, _ in string.Formatter().parse(self.template) if f and f not in self.values]

    def worded(self, words: dict[str, str]) -> str:
        """The message with each parameter written as `words` gives it (its own name if absent)."""
        return self.template.format(**{n: words.get(n, n) for n in self.params}, **self.values)


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours (optimal string alignment)."""
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _close(name: str, known: str) -> bool:
    """A slip of the keyboard: at most one edit in a short name, two in a longer one, three past 12
    characters. `stddev` is four edits from `stride`: not close."""
    n = max(len(name), len(known))
    return edit_distance(name, known) <= (1 if n <= 4 else 2 if n <= 12 else 3)


MAX_ECHO = 60  # characters of a name or value quoted in a message
MAX_WORD = 120  # a longer run of non-blanks in a message is clipped by `clip`
MAX_LINE = 400  # characters of one message, note or hint line
MAX_NOTES = 12
_LONG_WORD = re.compile(r"\S{%d,}" % (MAX_WORD + 1))


def shorten(text: str, limit: int = MAX_ECHO) -> str:
    """`text` as quoted in a message: whole if short, else its start, '...' and its length, so
    that a 100,000-character name still gives a one-screen error. Terminal escapes are dropped."""
    text = strip_ansi(str(text))
    if len(text) <= limit:
        return text
    return f"{text[:limit - 20]}...({len(text):,} characters)"


def _clip_word(m: re.Match) -> str:
    word = m.group()
    core = word.lstrip("'\"`(")
    lead = word[: len(word) - len(core)]
    core2 = core.rstrip("'\"`:,;.)")
    return lead + shorten(core2, MAX_ECHO) + core[len(core2):]


def clip(text: str) -> str:
    """A message with every word over MAX_WORD characters shortened (a 100,000-character name is
    echoed as its start and its length) and the whole capped at MAX_LINE: one screen, always;
    terminal escapes (Keras' bold names) are dropped, other control characters are shown as
    pictures (source.visible)."""
    text = visible(_LONG_WORD.sub(_clip_word, strip_ansi(text)))
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE - 30] + f"... ({len(text):,} characters)"
    return text


def did_you_mean(name: str, known) -> str | None:
    """A suggestion for a misspelt name, or None when nothing is close: near spellings only, and a
    known name the word starts with or begins (`convolution` -> `conv`, `max` -> `maxpool`), not one
    that is only the first part of a compound (`kernel_regularizer` is not a `kernel`). Case does
    not count (`Dense` -> `dense`, `MaxPool` -> `maxpool`)."""
    if len(name) > MAX_WORD:  # no one mistypes 100 letters; and edit distances would take their time
        return None
    known = sorted(set(known))
    same = [k for k in known if k.lower() == name.lower()]  # `Dense`, `ReLU`: Keras' and torch's capitals
    if same:
        return f"did you mean '{same[0]}'?"
    lower = {k.lower(): k for k in reversed(known)}
    name, keys = name.lower(), sorted(lower)
    close = [k for k in difflib.get_close_matches(name, keys, n=3, cutoff=0.5) if _close(name, k)][:1]
    if not close and len(name) >= 3:
        close = [k for k in keys if len(k) >= 3 and ((name.startswith(k) and name[len(k)] != "_") or
                                                    (k.startswith(name) and k[len(name)] != "_"))][:1]
    return f"did you mean '{lower[close[0]]}'?" if close else None


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
