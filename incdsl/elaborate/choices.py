"""Parameters that take one of a fixed set of values: `pooling=none in (none, avg, max)`.

A `network` or `module` parameter may list the values it takes after `in` (specs/README.md,
"Parameters"). A value outside the list is refused wherever it comes from: `--set` and the Python
API (`incdsl.load(..., pooling="mean")`: an `ArgumentError`, exit 2 on the command line, as any
bad `--set`), a module call or a `variant` in a spec (a `SpecError` at the value, exit 1), or the
parameter's own default. Each error lists the values and suggests the nearest one.
"""
from __future__ import annotations

from ..errors import ArgumentError, Note, Span, SpecError, did_you_mean
from ..frontend import ast
from ..ops import show_value


def allowed_values(param: ast.Param, env: dict, ev) -> tuple | None:
    """The values `param` may take, evaluated with `ev` (an `evaluate.Evaluator`) among the
    parameters bound before it (`env`); None when it lists none."""
    if param.choices is None:
        return None
    return tuple(ev.eval(e, env) for e in param.choices)


_MISSING = object()


def match(value, allowed: tuple):
    """The value of `allowed` that `value` is, or `_MISSING`: equal and of the same kind (true is not
    1; 1.0 is 1; a string is the word it spells, `"avg"` from Python is the word avg, `"none"` or `"None"` is
    none)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]  # `--set 'pooling="avg"'`: the spec's own quoting of the word
    def kind(v):
        return "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else \
            "word" if isinstance(v, str) else type(v).__name__
    for a in allowed:
        if a is None and isinstance(value, str) and value.lower() == "none":  # Python writes None
            return None
        if value == a and kind(value) == kind(a):
            return a
    return _MISSING


def is_allowed(value, allowed: tuple) -> bool:
    """Whether `value` is one of `allowed` (as `match` pairs them)."""
    return match(value, allowed) is not _MISSING


def _word(v) -> str:
    return str(v) if isinstance(v, str) and type(v) is not str else show_value(v, strings=lambda t: f'"{t}"')


def _listed(allowed: tuple) -> str:
    return ", ".join(_word(a) for a in allowed)


# other words for the same value, as other libraries and habit write them (torch's reduction="mean",
# "average" pooling): looked up when no near spelling is found
SYNONYMS = {"mean": "avg", "average": "avg", "avgpool": "avg", "maximum": "max", "maxpool": "max",
            "null": "none", "off": "none", "no": "none", "identity": "none"}


def _suggestion(value, allowed: tuple) -> str | None:
    words = [str(a) for a in allowed if isinstance(a, str)] + ["none" for a in allowed if a is None]
    if not isinstance(value, str) or not words:
        return None
    near = did_you_mean(value, words)
    other = SYNONYMS.get(value.lower())
    return near or (f"did you mean '{other}'?" if other in words else None)


def check_override(param: ast.Param, value, allowed: tuple | None):
    """A network parameter set from outside the spec (`--set`, `incdsl.load(..., name=value)`):
    returns the value as the spec writes it (the word avg for Python's "avg", none for "none").
    Raises `ArgumentError` (names the parameter; the CLI says `--set`) for a value not allowed."""
    if allowed is None:
        return value
    found = match(value, allowed)
    if found is not _MISSING:
        return found
    hint = _suggestion(value, allowed)
    raise ArgumentError(param.name, value,
                        f"{param.name} is one of {_listed(allowed)}" + (f"; {hint}" if hint else ""))


def check_in_spec(what: str, param: ast.Param, value, allowed: tuple | None, span: Span | None,
                  definition: ast.Definition | None = None) -> None:
    """A parameter's value given in a spec: a module call's argument, a variant's setting or the
    parameter's default (`what` names which, `span` is the value's place). Raises `SpecError` there,
    with the values listed, a did-you-mean and a note at the definition."""
    if allowed is None or is_allowed(value, allowed):
        return
    notes = [Note(f"{definition.kind} {definition.name}: {param.name} takes {_listed(allowed)}",
                  param.span)] \
        if definition is not None else []
    raise SpecError(f"{what}: '{param.name}' cannot be {_word(value)}", span or param.span,
                    label=f"{param.name} is one of {_listed(allowed)}", notes=notes,
                    hint=_suggestion(value, allowed) or f"use one of: {_listed(allowed)}")
