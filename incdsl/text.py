"""Formatters shared by reports, errors and commands: one copy of each, so that a shape, a pad, a
parameter value or an exception reads the same wherever incdsl prints it. Plain functions of
plain values; nothing here imports the rest of incdsl."""
from __future__ import annotations

import re
import string

ARGUMENTS = {"set": "network argument"}  # ParamText words for `{set}` where "set" would not read as a verb
SCALAR = "a scalar"  # how a weight's shape () reads in messages: shape_text((), SCALAR)


def shape_text(shape, empty: str = "") -> str:
    """A shape as `35x35x288` (NHWC, batch left out); `empty` for a shape with no dimensions (a
    scalar weight: callers that print weights pass SCALAR)."""
    return "x".join(str(d) for d in shape) or empty


# Terminal escape sequences (ANSI CSI: colours, bold) that Keras puts in its own messages
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences (Keras 3 writes names in its errors in bold,
    ESC[1m...ESC[0m): relayed messages must read as plain text."""
    return _ANSI.sub("", text)


def first_line(e: BaseException, default: str | None = None) -> str:
    """The first non-blank line of an exception's message: libraries (Keras, onnx, h5py) put pages of
    context after it, and an incdsl error must fit one screen. For an empty message: `default`, or
    the exception's class name when `default` is None. Terminal escapes (Keras' bold) are dropped."""
    lines = strip_ansi(str(e)).strip().splitlines()
    if lines:
        return lines[0]
    return type(e).__name__ if default is None else default


def pad_text(p) -> str:
    """A layer's padding as `describe` and `expand` print it: 'same'/'valid' as they are, explicit
    (top, bottom, left, right) pixels as `pad 1`, `pad (1, 2)` (top=bottom, left=right) or
    `pad (0, 1, 0, 1)`."""
    if isinstance(p, str):
        return p
    t, b, l, r = p
    if t == b == l == r:
        return f"pad {t}"
    if t == b and l == r:
        return f"pad ({t}, {l})"
    return f"pad ({t}, {b}, {l}, {r})"


def attr_text(v) -> str:
    """An attribute value as the language writes it (`incdsl expand`): true/false/none, `3x3` for a
    size pair, `(1, 2, 1, 2)` for four pads, per-channel floats as `(0.485, 0.456, 0.406)`, floats in
    their shortest form (%g)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, tuple):
        if any(isinstance(x, float) for x in v):  # per-channel values (affine, normalize)
            return "(" + ", ".join(f"{x:g}" for x in v) + ")"
        if len(v) == 4:
            return pad_text(v).replace("pad ", "")
        return shape_text(v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def param_text(v) -> str:
    """A network parameter's value as the user would write it back in `--set`: floats keep their point
    (width=1.0, not 1), everything else as `attr_text`."""
    return repr(v) if isinstance(v, float) else attr_text(v)


def sets_text(sets: dict) -> str:
    """Parameter settings as `width=0.5, aux=true` (`param_text` for each value)."""
    return ", ".join(f"{k}={param_text(v)}" for k, v in sets.items())


def number_text(v) -> str:
    """A number as Python writes it back (`repr` for floats: 0.1, 1.0; `str` for the rest): the values
    `fit` reports and its budgets' bounds."""
    return repr(v) if isinstance(v, float) else str(v)


def si(n: int) -> str:
    """A count with an SI prefix and two decimals, followed by a space: 11_426_000_000 -> '11.43 G',
    999 -> '999 ' (the summary's FLOPs figure, `{si(n)}FLOPs`)."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} "


def counts_dict(c) -> dict:
    """A `Count` as JSON reports give params: {"total", "trainable", "non_trainable"}."""
    return {"total": c.params, "trainable": c.trainable, "non_trainable": c.non_trainable}


def signed_text(n: int) -> str:
    """A difference with its sign and thousands separators (+1,024, -96), and a bare 0 for none."""
    return f"{n:+,}" if n else "0"


class ParamText(str):
    """A message or hint of the library that names its parameters, as `incdsl.errors.OptionError`
    does for a whole error: `template` is a `str.format` template whose fields are parameter names,
    except those given in `values` (filled in as they are). As a `str` it reads in Python's words,
    each parameter as its name or as `words` says (`{"resume": "resume=True"}`); `worded(flags)`
    gives the command line's words (`incdsl.cli.commands.flags.FLAGS`: `--resume`), which the CLI
    writes into a SpecError's message and hint before printing it (`flags.cli_error`)."""

    def __new__(cls, template: str, words: dict[str, str] | None = None, **values):
        params = [f for _, f, _, _ in string.Formatter().parse(template) if f and f not in values]
        words = dict(words or {})
        self = super().__new__(cls, template.format(**{n: words.get(n, n) for n in params}, **values))
        self.template, self.values, self.params = template, values, params
        return self

    def worded(self, words: dict[str, str]) -> str:
        """The text with each parameter written as `words` gives it (its own name if absent)."""
        return self.template.format(**{n: words.get(n, n) for n in self.params}, **self.values)
