"""Arguments to their parameters: a network's parameters (with `--set` overrides), a module call's
arguments, a layer's arguments (explicit, from `defaults`, an alias's preset) and the entries of a
`defaults` statement; and the error that names the one argument at fault.
"""
from __future__ import annotations

import functools
import math

from ..errors import ArgumentError, Note, Span, SpecError, UsageError, did_you_mean
from ..frontend import ast
from ..ops import (
    ACTIVATION_NAMES,
    ACTIVATIONS,
    ALIASES,
    FITS,
    KEYWORD_ONLY,
    KINDS,
    OPS,
    REQUIRED,
    ArgError,
    Op,
    Symbol,
    initializers,
    normalize,
    show_value,
)
from .choices import allowed_values, check_in_spec, check_override
from .evaluate import Evaluator, coerce_override, known_list
from .foreign_names import argument_hint, op_hint
from .scopes import DefaultsInForce, Given, Scope


def bind_network_params(net: ast.Definition, overrides: dict, ev: Evaluator) -> dict:
    """The network's parameter values: each default evaluated in order (a default may use the
    parameters before it), or the override (`--set` text read as the default's type). Raises
    `UsageError` for an unknown override, `ArgumentError` for an override of the wrong kind or not
    finite, `SpecError` for a parameter without a default."""
    known = [p.name for p in net.params]
    for k in overrides:
        if k not in known:
            hint = did_you_mean(k, known)
            raise UsageError(f"network '{net.name}' has no parameter '{k}'"
                             + (f"; {hint}" if hint else f" (its parameters: {', '.join(known) or 'none'})"))
    values: dict = {}
    for p in net.params:
        allowed = allowed_values(p, values, ev)  # `pooling=none in (none, avg, max)`
        if p.name in overrides:
            v = coerce_override(p.name, overrides[p.name], ev.eval(p.default, values) if p.default else None)
            if isinstance(v, float) and not math.isfinite(v):
                raise ArgumentError(p.name, overrides[p.name], "a parameter must be a finite number")
            values[p.name] = check_override(p, v, allowed)
        elif p.default is None:
            raise SpecError(f"network parameter '{p.name}' needs a default value", p.span)
        else:
            values[p.name] = ev.eval(p.default, values)
            check_in_spec(f"network {net.name}", p, values[p.name], allowed, p.default.span)
    return values


def bind_module_args(mod: ast.Definition, el: ast.Call, env: dict, ev: Evaluator) -> dict:
    """A module call's arguments (evaluated in the caller's `env`) bound to the module's
    parameters, defaults filled in (evaluated among the parameters before them). Raises
    `SpecError` for too many arguments, an unknown or repeated one, or a missing one."""
    names = [p.name for p in mod.params]
    sig = f"{mod.name}({', '.join(names)})"
    if len(el.args) > len(names):
        raise SpecError(
            f"{mod.name} takes {len(names)} argument{'s' * (len(names) != 1)}, got {len(el.args)}",
                        el.args[len(names)].span, notes=[Note(f"module {sig}", mod.span)])
    given: dict[str, object] = {}
    for p, a in zip(mod.params, el.args):
        given[p.name] = ev.eval(a, env)
    for kw in el.kwargs:
        if kw.name not in names:
            raise SpecError(f"{mod.name} has no parameter '{kw.name}'", kw.span,
                            hint=did_you_mean(kw.name, names), notes=[Note(f"module {sig}", mod.span)])
        if kw.name in given:
            raise SpecError(f"'{kw.name}' is given twice", kw.span)
        given[kw.name] = ev.eval(kw.value, env)
    values: dict = {}
    spans = {p.name: a.span for p, a in zip(mod.params,
                                            el.args)} | {kw.name: kw.value.span for kw in el.kwargs}
    for p in mod.params:
        if p.name in given:
            values[p.name] = given[p.name]
            check_in_spec(mod.name, p, given[p.name], allowed_values(p, values, ev), spans[p.name], mod)
        elif p.default is not None:
            values[p.name] = ev.eval(p.default, values)
            check_in_spec(f"module {mod.name}", p, values[p.name], allowed_values(p, values, ev),
                          p.default.span)
        else:
            raise SpecError(f"{mod.name} needs a value for '{p.name}'", el.span,
                            notes=[Note(f"module {sig}", mod.span)])
    return values


def defaults_entries(st: ast.Defaults, scope: Scope, ev: Evaluator) -> tuple[DefaultsInForce, ...]:
    """The entries of a `defaults` statement, each value evaluated and checked against its
    argument's kind. An activation word (`defaults leaky_relu(slope=0.05)`) sets defaults for the
    act layers of that function only. Raises `SpecError` for an unknown op or argument, or a bad value."""
    added = []
    for entry in st.entries:
        opname, preset = ALIASES.get(entry.op, (entry.op, {}))
        op = OPS.get(opname)
        if op is None:
            raise SpecError(f"defaults for unknown op '{entry.op}'", entry.span,
                            hint=op_hint(entry.op, list(OPS) + list(ALIASES)))
        values = {}
        settable = [a.name for a in op.args if a.name not in preset]
        for kw in entry.kwargs:
            arg = op.arg(kw.name)
            if arg is None or kw.name in preset:
                raise SpecError(
                    f"{entry.op} has no argument '{kw.name}'",
                    kw.span,
                    hint=argument_hint(kw.name, settable) or f"it takes: {', '.join(settable) or 'nothing'}",
                )
            if kw.name == "slope" and preset and preset["fn"] != "leaky_relu":
                raise SpecError(f"{entry.op} takes no slope: only leaky_relu has one", kw.span,
                                hint="write defaults leaky_relu(slope=...)")
            v = ev.eval(kw.value, scope.vars)
            try:
                if not (v is None and arg.default is None):
                    KINDS[arg.kind](v)
            except ValueError as e:
                raise bad_arg(f"defaults {op.name}", entry.span, op, kw.name, str(e),
                              Given(v, kw.value.span), scope.vars) from None
            values[kw.name] = Given(v, entry.span)  # a layer's error points at the entry that set it
        added.append(DefaultsInForce(f"act:{preset['fn']}" if preset else op.name, values, entry.span))
    return tuple(added)


@functools.cache
def _call_form(name: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], dict]:
    """How a layer called `name` (an op, or an alias such as `relu` for act(fn=relu)) takes its
    arguments: the settable ones, the positional ones, the required ones, and the preset values.
    Worked out once per name: a sweep elaborates the same calls thousands of times."""
    opname, preset = ALIASES.get(name, (name, {}))
    op = OPS[opname]
    settable = tuple(a.name for a in op.args if a.name not in preset)
    positional = tuple(a for a in settable if a not in KEYWORD_ONLY)
    required = tuple(a.name for a in op.args if a.default is REQUIRED)
    return settable, positional, required, {k: Given(v, None) for k, v in preset.items()}


def layer_attrs(el: ast.Call, op: Op, preset: dict, scope: Scope, ev: Evaluator) -> dict:
    """The checked attributes of the layer `el` calls (`op`, or an alias of it with `preset`
    arguments, e.g. `relu` for act(fn=relu)): positional and keyword arguments, then the active
    defaults under them (an explicit argument always wins), normalized by `ops.normalize`.
    Raises `SpecError` naming the argument at fault: too many, unknown, given twice, missing, or
    a value of the wrong kind (pointing at the expression, or the `defaults` entry, that gave it)."""
    settable, positional, required, preset_given = _call_form(el.name)
    if len(el.args) > len(positional):
        raise SpecError(
            f"{el.name} takes at most {len(positional)} positional argument{'s' * (len(positional) != 1)}",
                        el.args[len(positional)].span, hint=signature(op))
    env = scope.vars
    explicit: dict[str, Given] = {}
    for arg, expr in zip(positional, el.args):
        explicit[arg] = Given(ev.eval(expr, env), expr.span)
    for kw in el.kwargs:
        if kw.name not in settable:
            raise SpecError(f"{el.name} has no argument '{kw.name}'", kw.span,
                            hint=argument_hint(kw.name, list(settable)) or signature(op))
        if kw.name in explicit:
            raise SpecError(f"argument '{kw.name}' is given twice", kw.span,
                            notes=[Note("first given here", explicit[kw.name].span)])
        explicit[kw.name] = Given(ev.eval(kw.value, env), kw.value.span)
    raw: dict[str, Given] = {}
    # an act layer's function
    fn = preset["fn"] if "fn" in preset else explicit["fn"].value if "fn" in explicit else None
    fn = ACTIVATION_NAMES.get(fn, fn) if isinstance(fn, str) else fn
    for d in scope.defaults:  # outermost first: inner defaults overwrite
        if d.op == op.name or (op.name == "act" and d.op == f"act:{fn}"):
            for k, given in d.values.items():
                if k == "slope" and op.name == "act" and fn != "leaky_relu":
                    continue  # `defaults act(slope=...)` sets leaky_relu's slope; relu has none
                raw[k] = given
    raw.update(explicit)  # an explicit argument always wins
    raw.update(preset_given)
    for name in required:
        if name not in raw:
            raise SpecError(f"{el.name} needs '{name}'", el.span, hint=signature(op))
    try:
        return normalize(op, {k: g.value for k, g in raw.items()})
    except ArgError as e:
        arg = e.arg if e.arg in raw else "?"
        raise bad_arg(el.name, el.span, op, arg, str(e), raw.get(arg), env) from None


def bad_arg(what: str, where: Span, op: Op, arg: str, msg: str, given: Given | None, env: dict) -> SpecError:
    """The error for argument `arg` of `what` (a call or a defaults entry at `where`) whose value
    `given` is wrong as `msg` says: a misspelt name, a word that is no value of the argument's
    kind, a size with sides that are not integers, a float where a count is wanted. `env` holds
    the names in scope, for the hints. Error path only."""
    span = (given.span if given is not None else None) or where
    v = given.value if given is not None else None
    kind = op.arg(arg).kind if op.arg(arg) else None
    if isinstance(v, Symbol):
        words = {"pad": ("same", "valid"), "act": ("none",) + ACTIVATIONS + tuple(ACTIVATION_NAMES),
                 "init": initializers.NAMES,
                 "fit": ("none",) + FITS}.get(kind)
        # a known initializer used wrongly (truncated_normal without stddev)
        if kind == "init" and v in words:
            return SpecError(f"{what}: 'init' {msg}", span)
        if words is None and kind in ("size", "size0") and "x" in v.strip("x"):
            return _not_a_size(what, arg, v, span, env)
        if words is None:  # a number or true/false was wanted: the word is a misspelt name
            return SpecError(f"unknown name '{v}'", span, label=f"{what}'s '{arg}' needs a value",
                             hint=did_you_mean(v, env) or known_list("names known here", sorted(env)))
        return SpecError(f"{what}: '{arg}' cannot be '{v}'", span,
                         hint=did_you_mean(v, words) or f"use one of: {', '.join(words)}")
    hint = None
    if isinstance(v, float) and kind == "count":
        src = _source_text(span)
        hint = f"wrap it in int() or round(): int({src})" if src else "wrap it in int() or round()"
    return SpecError(f"{what}: '{arg}' {msg}", span, hint=hint)


def _not_a_size(what: str, arg: str, v: str, span: Span, env: dict) -> SpecError:
    ints = sorted(k for k, x in env.items() if isinstance(x, int) and not isinstance(x, bool))
    wrong = [(p, env[p]) for p in v.split("x") if p in env and p not in ints]
    if wrong:  # `m(8, 2.0)` for `1xn`: the side is bound, to something that is not an integer
        p, x = wrong[0]
        return SpecError(f"'{v}' is not a size here: {p} is {show_value(x)}, not an integer", span,
                         label=f"{what}'s '{arg}' needs a size",
                         hint=f"pass a whole number for {p}, or write the size as a tuple with "
                         f"int(): ({', '.join(f'int({q})' if q == p else q for q in v.split('x'))})")
    return SpecError(f"'{v}' is not a size here: its sides must be numbers or names of integers",
                     span, label=f"{what}'s '{arg}' needs a size",
                     hint=f"integers known here: {', '.join(ints)}" if ints else
                     "bind the side first, e.g. a module parameter n for 1xn, or write (1, 7)")


def _source_text(span: Span) -> str | None:
    line = span.source_line()
    if line is None or span.end_line != span.line:
        return None
    return line[span.col - 1:span.end_col - 1] or None


def signature(op: Op) -> str:
    """How an op is called, for hints: `conv(filters, kernel, stride=1, ...)` (keyword-only training arguments
    left out)."""
    parts = [
        a.name if a.default is REQUIRED else f"{a.name}={show_value(a.default).strip(chr(39))}"
        for a in op.args
        if a.name not in KEYWORD_ONLY
    ]
    return f"{op.name}({', '.join(parts)})"
