"""Argument kinds: each turns a value a spec gave into the op's normalized value (sizes as tuples,
padding as (top, bottom, left, right)), or raises ValueError saying what is wrong with it. Also the
words arguments may hold (activations, `Symbol`) and `Arg`, one argument of an op."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..text import shape_text
from .activations import ALIASES as ACTIVATION_NAMES
from .activations import NAMES as ACTIVATIONS

REQUIRED = object()
MAX_DIM = 1 << 20  # any single size above this is treated as a mistake



class Symbol(str):
    """A bare word in an argument (`same`, `relu`) that is not a bound name."""


# --- argument kinds: value -> normalized value, or ValueError with what is wrong ---------------

def _int(v, lo=1, hi=MAX_DIM):
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            raise ValueError(f"must be an integer, got {v!r}")
        raise ValueError(f"must be an integer, got {_show(v)}")
    if v < lo:
        raise ValueError(f"must be at least {lo}, got {v}")
    if v > hi:
        raise ValueError(f"{v:,} is absurdly large (the limit is {hi:,})")
    return v


def _pair(v, lo=1):
    if isinstance(v, tuple):
        if len(v) != 2:
            raise ValueError(f"must be one size or two (HxW), got {len(v)}")
        return (_int(v[0], lo), _int(v[1], lo))
    n = _int(v, lo)
    return (n, n)


def _pad(v):
    if isinstance(v, Symbol) or isinstance(v, str):
        if v in ("same", "valid"):
            return str(v)
        raise ValueError(f"must be same, valid, a number or a tuple, got {v}")
    if isinstance(v, tuple):
        if len(v) == 2:
            ph, pw = (_int(x, 0) for x in v)
            return (ph, ph, pw, pw)
        if len(v) == 4:
            return tuple(_int(x, 0) for x in v)
        raise ValueError("a padding tuple is (h, w) or (top, bottom, left, right)")
    p = _int(v, 0)
    return (p, p, p, p)


def _act(v):
    if v is None or v in ("none", "linear"):
        return None
    if isinstance(v, str) and v in ACTIVATIONS:
        return str(v)
    if isinstance(v, str) and v in ACTIVATION_NAMES:
        return ACTIVATION_NAMES[str(v)]
    raise ValueError(
        f"must be none or one of {', '.join(ACTIVATIONS + tuple(ACTIVATION_NAMES))}, got {_show(v)}")


FITS = ("shrink", "map")  # how a conv's kernel adapts to a small input map (rules.fitted_kernel)


def _fit(v):
    if v is None or v == "none":
        return None
    if isinstance(v, str) and v in FITS:
        return str(v)
    raise ValueError(f"must be none, shrink or map, got {_show(v)}")


def _bool(v):
    if isinstance(v, bool):
        return v
    raise ValueError(f"must be true or false, got {_show(v)}")


POSITIVE_MIN = 1e-12  # the smallest value a "positive" argument (an epsilon) may take


def _float(v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a number, got {_show(v)}")
    v = float(v)
    if lo is not None and v < lo:
        if hi is not None:
            raise ValueError(f"must be between {lo:g} and {hi:g}, got {v:g}")
        raise ValueError(f"must be greater than 0, got {v:g}" if lo == POSITIVE_MIN
                         else f"must be at least {lo:g}, got {v:g}")
    if hi is not None and v > hi:
        raise ValueError(f"must be between {lo:g} and {hi:g}, got {v:g}" if lo is not None
                         else f"must be at most {hi:g}, got {v:g}")
    return v


def _decay(v):
    v = _float(v)
    if not 0 <= v < float("inf"):
        raise ValueError(f"must be a finite number, 0 or more, got {v}")
    return v


def _init(v):
    from .initializers import NAMES, check
    if isinstance(v, Symbol) and v not in NAMES:
        raise ValueError(f"unknown initializer '{v}' (known: {', '.join(NAMES)})")
    return check(v)


def _slope(v) -> float:
    """leaky_relu's negative slope: any number >= 0, as keras.layers.LeakyReLU accepts (it refuses
    a negative one; torch.nn.LeakyReLU takes any). A slope above 1 is unusual but well defined."""
    v = _float(v)
    if v < 0:
        raise ValueError(f"must be at least 0 (Keras' LeakyReLU refuses a negative slope), got {v:g}")
    return v


def show_value(v, sizes: bool = True, strings: Callable = repr, floats: str = "",
               other: Callable = str) -> str:
    """A value as messages quote it, in the language's words: true/false, none, the word 'avg' (a
    bare word), 3x3 (a tuple as a size), 'he_normal' (a string, as Python writes it), other values
    as `str` does. The one copy for every message; where messages differ, a parameter says how:
    the argument checks here, which see any value, write a tuple as `(1, 1)` (`sizes=False`), a
    string as the spec does (`strings=SPEC_STRING`: "he_normal") and another value, such as a numpy
    scalar from Python, by its repr (`other=repr`: np.int64(3)); the channel-rounding functions'
    checks (incdsl.elaborate.functions) write floats in %g form (`floats="g"`)."""
    if isinstance(v, Symbol):
        return f"the word '{v}'"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, tuple):
        if sizes:
            return shape_text(v)
        return "(" + ", ".join(show_value(x, sizes, strings, floats, other) for x in v) + ")"
    if isinstance(v, str):
        return strings(v)
    if isinstance(v, float) and floats:
        return format(v, floats)
    return other(v)


SPEC_STRING = '"{}"'.format  # a string as a spec writes it


def _show(v) -> str:
    return show_value(v, sizes=False, strings=SPEC_STRING, other=repr)


def _floats(v, lo=None):
    return tuple(_float(x, lo) for x in (v if isinstance(v, tuple) else (v,)))


KINDS: dict[str, Callable] = {
    "floats": _floats,  # one number, or a tuple: one per channel
    "positives": lambda v: _floats(v, 1e-12),
    "count": _int,
    "size": _pair,
    "size0": lambda v: _pair(v, 0),
    "pad": _pad,
    "act": _act,
    "bool": _bool,
    "positive": lambda v: _float(v, POSITIVE_MIN, None),
    "rate": lambda v: _float(v, 0.0, 0.999999),
    "any_float": _float,
    "slope": lambda v: _slope(v),
    "decay": _decay,
    "init": _init,
    "fit": _fit,
}


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of an op: its `name`, its `kind` (a key of KINDS that checks and converts the
    value), its `default` (REQUIRED when it must be given) and a one-line `doc`.
    """
    name: str
    kind: str
    default: object = REQUIRED
    doc: str = ""


class ArgError(ValueError):
    """A bad argument value: `arg` names the argument, the message says what is wrong with it
    (`must be at least 1, got 0`)."""

    def __init__(self, arg: str, message: str):
        super().__init__(message)
        self.arg = arg
