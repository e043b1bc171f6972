"""AST -> graph IR: evaluate arguments, expand module calls, `repeat` and `if`, apply defaults.

Scoping rules (specs/README.md states them for users):
- expression names (parameters, `let`, loop variables) are lexical: a module sees only its own
  parameters and lets; a network sees its parameters;
- `defaults` are dynamic, like TF-slim's arg_scope: they apply to every layer elaborated after them
  in the enclosing block, including inside the modules called from there; the innermost wins and
  an explicit argument always wins;
- named values (`x = ...`) are visible for the rest of their body and inside its concat/add branches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import ast, functions, initializers
from .errors import ArgumentError, Note, Span, SpecError, UsageError, call_note, did_you_mean, shorten
from .literals import read_int, read_number, read_sizes
from .graph import Block, Graph, Layer, OutputSpec
from .ops import ACTIVATION_NAMES, ACTIVATIONS, ALIASES, KEYWORD_ONLY, KINDS, OPS, REQUIRED, ArgError, Op, Symbol, normalize
from .parse import Program
from .foreign_names import argument_hint, op_hint

MAX_LAYERS = 100_000
MAX_STEPS = 1_000_000  # statements and expressions evaluated; stops runaway nested repeats
MAX_CALL_DEPTH = 64
MAX_NUMBER = 10**15


@dataclass
class Scope:
    """Where elaboration stands inside a body: what one block of statements sees.

    `path` is the hierarchical name prefix (`inception3a`, `b2`) of the layers made here; `vars` the
    expression names in lexical scope (parameters, `let`s, loop variables); `nodes` the named values
    (`x = ...`) mapped to their graph node; `defaults` the active `defaults` entries as (op,
    {argument: value}, span), innermost last (dynamic, like TF-slim's arg_scope); `module` the name
    of the module being expanded (None in the network body).
    """
    path: tuple[str, ...]
    vars: dict
    nodes: dict[str, str]
    defaults: tuple[tuple[str, dict, Span], ...]  # (op, {arg: value}, span); innermost last
    module: str | None


def elaborate(prog: Program, network: str | None = None, overrides: dict | None = None) -> Graph:
    """Expand the parsed `prog` into the graph IR of one network (`Graph`): layers, outputs, module calls.

    `network` picks one by name when the file has several; `overrides` maps network parameters to
    new values (`--set`). Module calls, `repeat`, `if` and `defaults` are expanded; layers that
    reach no output are pruned. Raises `UsageError` for an unknown network or parameter (or several
    networks and no choice), `ArgumentError` for a value of the wrong kind, and `SpecError` (with
    file:line:col) for anything wrong in the spec, including past the limits (MAX_LAYERS layers,
    MAX_STEPS steps, MAX_CALL_DEPTH nested calls).
    """
    net = _pick_network(prog, network)
    try:
        return _Elaborator(prog).network(net, overrides or {})
    except _TooDeep as e:
        raise _too_deep(e.span) from None
    except RecursionError:  # deep nesting outside any statement: parameters, variants
        raise _too_deep(net.span) from None


def _pick_network(prog: Program, name: str | None) -> ast.Definition:
    nets = prog.networks
    if name is not None:
        for n in nets:
            if n.name == name:
                return n
        known = [n.name for n in nets]
        raise UsageError(f"no network '{name}' in {prog.path}" + (f"; {did_you_mean(name, known)}" if did_you_mean(name, known) else f" (it has: {', '.join(known) or 'none'})"))
    if not nets:
        raise SpecError(f"{prog.path} defines no network", hint="a spec needs `network NAME(...) { input ... }`; files with only modules are libraries to `use`")
    if len(nets) > 1:
        raise UsageError(f"{prog.path} defines several networks ({', '.join(n.name for n in nets)}); pick one with --network")
    return nets[0]


def network_params(prog: Program, network: str | None = None) -> dict:
    """The network's parameters and their default values (evaluated)."""
    net = _pick_network(prog, network)
    try:
        return _Elaborator(prog)._bind_network_params(net, {})
    except RecursionError:
        raise _too_deep(net.span) from None


class _TooDeep(Exception):
    def __init__(self, span: Span):
        self.span = span


def _too_deep(span: Span) -> SpecError:
    return SpecError("nested too deeply: more than a few hundred levels of blocks, branches or operators", span)


class _Elaborator:
    def __init__(self, prog: Program):
        self.prog = prog
        self.graph: Graph | None = None
        self.counters: dict[tuple, int] = {}
        self.calls: list[tuple[str, Span]] = []
        self.block_spans: dict[str, Span] = {}  # module calls by name, for duplicate-name errors
        self.steps = 0

    # -- entry ---------------------------------------------------------------------------
    def network(self, net: ast.Definition, overrides: dict) -> Graph:
        params = self._bind_network_params(net, overrides)
        self.graph = g = Graph(net.name, dict(params))
        for v in self.prog.variants:
            self._variant(v, params)
        scope = Scope((), dict(params), {}, (), None)
        for d in self.prog.defaults:
            self._defaults(d, scope)
        self.input_seen = False
        end = self._body(net.body, scope, None, in_network=True)
        if not any(not o.train_only for o in g.outputs):
            if end is None:
                raise SpecError(f"network '{net.name}' has no layers", net.span,
                                hint="start the body with `input HxWxC`")
            g.outputs.insert(0, OutputSpec(_output_name(end, g), end, False, 1.0, g.layers[end].span))
        self._prune(g)
        return g

    def _bind_network_params(self, net: ast.Definition, overrides: dict) -> dict:
        known = [p.name for p in net.params]
        for k in overrides:
            if k not in known:
                hint = did_you_mean(k, known)
                raise UsageError(f"network '{net.name}' has no parameter '{k}'"
                                 + (f"; {hint}" if hint else f" (its parameters: {', '.join(known) or 'none'})"))
        values: dict = {}
        for p in net.params:
            if p.name in overrides:
                values[p.name] = v = _coerce_override(p.name, overrides[p.name],
                                                      self._eval(p.default, values) if p.default else None)
                if isinstance(v, float) and not math.isfinite(v):
                    raise ArgumentError(p.name, overrides[p.name], "a parameter must be a finite number")
            elif p.default is None:
                raise SpecError(f"network parameter '{p.name}' needs a default value", p.span)
            else:
                values[p.name] = self._eval(p.default, values)
        return values

    def _variant(self, v: ast.Variant, params: dict):
        if v.name in self.graph.variants:
            raise SpecError(f"variant '{v.name}' is declared twice", v.span)
        sets = {}
        for kw in v.kwargs:
            if kw.name not in params:
                raise SpecError(f"variant '{v.name}' sets unknown parameter '{kw.name}'", kw.span,
                                hint=did_you_mean(kw.name, params))
            value = self._eval(kw.value, {})
            if isinstance(value, Symbol) and not isinstance(params[kw.name], str):
                raise SpecError(f"variant '{v.name}': '{value}' is not a value for {kw.name}", kw.value.span,
                                hint=f"variants take plain values; {kw.name}'s default is {_show(params[kw.name])}")
            sets[kw.name] = value
        self.graph.variants[v.name] = sets

    # -- statements ----------------------------------------------------------------------
    def _body(self, stmts, scope: Scope, cur: str | None, in_network=False) -> str | None:
        for st in stmts:
            try:
                self._step(st.span)
                if isinstance(st, ast.Chain):
                    cur = self._chain(st, scope, cur)
                elif isinstance(st, ast.Assign):
                    cur = self._assign(st, scope, cur)
                elif isinstance(st, ast.Defaults):
                    self._defaults(st, scope)
                elif isinstance(st, ast.Let):
                    scope.vars[st.name] = self._eval(st.value, scope.vars)
                elif isinstance(st, ast.If):
                    cond = self._eval(st.cond, scope.vars)
                    if not isinstance(cond, bool):
                        if isinstance(cond, Symbol):
                            raise self._unknown(cond, st.cond, scope.vars)
                        raise SpecError(f"`if` needs true or false, got {_show(cond)}", st.cond.span,
                                        hint="compare it to get true or false, e.g. `if depth > 0 { ... }`")
                    saved = scope.defaults  # defaults inside the block end with it
                    cur = self._body(st.then if cond else st.orelse, scope, cur, in_network)
                    scope.defaults = saved
                elif isinstance(st, ast.Repeat):
                    cur = self._repeat(st, None, scope, cur, in_network)
                elif isinstance(st, ast.Input):
                    cur = self._input(st, scope, in_network)
                elif isinstance(st, ast.Output):
                    self._output(st, scope, cur, in_network)
                elif isinstance(st, ast.Variant):
                    if not in_network:
                        raise SpecError("variants belong to a network or the top of its file", st.span)
                    self._variant(st, self.graph.params)
                else:  # pragma: no cover - the grammar has no other statements
                    raise SpecError(f"unexpected statement {type(st).__name__}", st.span)
            except (RecursionError, _TooDeep):  # Python's stack ran out: blame the outermost statement,
                raise _TooDeep(st.span) from None  # the same wherever the stack happened to end
        return cur

    def _step(self, span: Span):
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise SpecError(f"elaboration took more than {MAX_STEPS:,} steps; is a `repeat` count absurd?", span)

    def _defaults(self, st: ast.Defaults, scope: Scope):
        added = []
        for entry in st.entries:
            # an activation word (`defaults leaky_relu(slope=0.05)`) sets defaults for the act
            # layers of that function only
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
                    raise SpecError(f"{entry.op} has no argument '{kw.name}'", kw.span,
                                    hint=argument_hint(kw.name, settable) or f"it takes: {', '.join(settable) or 'nothing'}")
                if kw.name == "slope" and preset and preset["fn"] != "leaky_relu":
                    raise SpecError(f"{entry.op} takes no slope: only leaky_relu has one", kw.span,
                                    hint="write defaults leaky_relu(slope=...)")
                v = self._eval(kw.value, scope.vars)
                try:
                    if not (v is None and arg.default is None):
                        KINDS[arg.kind](v)
                except ValueError as e:
                    raise self._bad_arg(f"defaults {op.name}", entry.span, op, _BadArg(kw.name, str(e), kw.value.span),
                                        {kw.name: v}, scope) from None
                values[kw.name] = v
            added.append((f"act:{preset['fn']}" if preset else op.name, values, entry.span))
        scope.defaults = scope.defaults + tuple(added)

    def _input(self, st: ast.Input, scope: Scope, in_network: bool) -> str:
        if not in_network or scope.path or self.calls:
            raise SpecError("`input` belongs in the network body, not in a module", st.span)
        if self.input_seen:
            raise SpecError("the network already has an input", st.span,
                            notes=[Note("the first input", self.graph.layers["input"].span)]
                            if "input" in self.graph.layers else [])
        self.input_seen = True
        dims = [self._eval(d, scope.vars) for d in st.dims]
        raw = dict(zip(("height", "width", "channels"), dims))
        op = OPS["input"]
        for (k, v), d in zip(raw.items(), st.dims):
            if isinstance(v, Symbol):
                raise self._unknown(v, d, scope.vars)
            try:
                KINDS["count"](v)
                if k != "channels" and v > 65536:
                    raise ValueError(f"{v:,} is absurdly large (the limit is 65,536)")
            except ValueError as e:
                raise SpecError(f"input {k} {e}", d.span) from None
        return self._add(Layer("input", "input", normalize(op, raw), (), st.span), st.span)

    def _output(self, st: ast.Output, scope: Scope, cur, in_network: bool):
        if not in_network or self.calls:
            raise SpecError("outputs belong in the network body, not in a module", st.span)
        self._reserved(st.name, st.span)
        loss_weight = 1.0
        for kw in st.kwargs:
            if kw.name != "loss_weight":
                raise SpecError(f"train_output has no option '{kw.name}'", kw.span, hint="the only option is loss_weight")
            try:
                loss_weight = KINDS["any_float"](self._eval(kw.value, scope.vars))
            except ValueError as e:
                raise SpecError(f"loss_weight {e}", kw.value.span) from None
        first = next((o for o in self.graph.outputs if o.name == st.name), None)
        if first is not None:
            raise SpecError(f"output '{st.name}' is declared twice", st.span, notes=[Note("first declared here", first.span)])
        node = self._chain(st.chain, scope, cur, name=st.name)
        self.graph.outputs.append(OutputSpec(st.name, node, st.train_only, loss_weight, st.span))

    def _reserved(self, name: str, span: Span):
        """A value named after an op would hide the bare op (`gap`, `relu`) from every later chain.
        (A module call may share its module's name: `reduction_a = reduction_a(...)`; the call with
        parentheses still reaches the module.)"""
        if name in OPS or name in ALIASES or name == "identity":
            raise SpecError(f"'{name}' is an op; a value of that name would hide it", span,
                            hint=f"call it something else, e.g. '{name}_out'")

    def _assign(self, st: ast.Assign, scope: Scope, cur):
        self._reserved(st.name, st.name_span)
        node = "/".join(scope.path + (st.name,))
        if node in self.graph.layers or node in self.block_spans:
            first = self.graph.layers[node].span if node in self.graph.layers else self.block_spans[node]
            raise SpecError(f"the name '{st.name}' is already taken", st.name_span,
                            notes=[Note("first used here", first)] if first else [], hint="give this one another name")
        if isinstance(st.target, ast.Repeat):
            node = self._repeat(st.target, st.name, scope, cur, in_network=False)
        else:
            node = self._chain(st.target, scope, cur, name=st.name)
        if node is None:
            raise SpecError(f"'{st.name}' names nothing: there is no input before it", st.span)
        scope.nodes[st.name] = node
        return node

    def _repeat(self, st: ast.Repeat, name: str | None, scope: Scope, cur, in_network):
        n = self._eval(st.count, scope.vars)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise SpecError(f"repeat needs a whole number of times, got {_show(n)}", st.count.span)
        if n > MAX_LAYERS:
            raise SpecError(f"repeat {n:,} is absurd: a network is limited to {MAX_LAYERS:,} layers", st.count.span)
        single = len(st.body) == 1 and isinstance(st.body[0], ast.Chain)
        g = self.graph
        layers_before, steps_before = len(g.layers), self.steps
        for i in range(1, n + 1):
            if i == 2:  # nested repeats multiply: project the first pass instead of running them all
                per_pass = len(g.layers) - layers_before
                if len(g.layers) + per_pass * (n - 1) > MAX_LAYERS:
                    raise SpecError(f"repeat {n:,} would make about {per_pass * n:,} layers; a network is limited "
                                    f"to {MAX_LAYERS:,}", st.count.span, label=f"{per_pass:,} layers per pass")
                steps = self.steps - steps_before
                if self.steps + steps * (n - 1) > MAX_STEPS:
                    raise SpecError(f"repeat {n:,} would take about {steps * n:,} elaboration steps; the limit is "
                                    f"{MAX_STEPS:,}", st.count.span, hint="is a `repeat` count absurd?")
            self._step(st.span)
            if st.var:
                scope.vars[st.var] = i
            if name is None:
                saved = scope.defaults
                cur = self._body(st.body, scope, cur, in_network)
                scope.defaults = saved
            elif single:  # `b = repeat 3 { block() }` names the calls b_1, b_2, b_3
                cur = self._chain(st.body[0], scope, cur, name=f"{name}_{i}")
            else:
                inner = Scope(scope.path + (f"{name}_{i}",), scope.vars, dict(scope.nodes), scope.defaults, scope.module)
                cur = self._body(st.body, inner, cur, in_network)
        return cur

    # -- chains --------------------------------------------------------------------------
    def _chain(self, chain: ast.Chain, scope: Scope, cur, name: str | None = None):
        last = len(chain.elements) - 1
        for i, el in enumerate(chain.elements):
            nm = name if i == last else None
            if isinstance(el, ast.Branches):
                cur = self._branches(el, scope, cur, nm)
                continue
            if el.bare and el.name in scope.nodes:
                if i > 0:
                    raise SpecError(f"'{el.name}' is a named value; it can only start a chain", el.span,
                                    hint=f"to branch from it, start a new line with `{el.name} -> ...`")
                cur = scope.nodes[el.name]
                continue
            if el.name == "identity":
                if el.args or el.kwargs:
                    raise SpecError("identity takes no arguments", el.span)
                if cur is None:
                    raise self._no_input(el)
                continue
            if cur is None:
                raise self._no_input(el)
            if el.name in self.prog.modules:
                cur = self._call_module(el, scope, cur, nm)
            elif el.name in OPS or el.name in ALIASES:
                cur = self._layer(el, scope, (cur,), nm)
            else:
                known = list(scope.nodes) + list(self.prog.modules) + list(OPS) + list(ALIASES) + ["identity"]
                hint = op_hint(el.name, known)
                what = "op, module or named value" if not el.bare or i == 0 else "op or module"
                raise SpecError(f"unknown name '{el.name}': no {what} is called that", _name_span(el), hint=hint)
        return cur

    def _no_input(self, el) -> SpecError:
        return SpecError(f"'{el.name}' has no input: the network has none yet", el.span,
                         hint="a network body starts with `input HxWxC`, e.g. `input 224x224x3`")

    def _branches(self, br: ast.Branches, scope: Scope, cur, name: str | None) -> str:
        if cur is None:
            raise SpecError(f"{br.kind} has no input: the network has none yet", br.span)
        if br.kwargs:
            raise SpecError(f"{br.kind} takes no options", br.kwargs[0].span)
        if not br.chains:
            raise SpecError(f"empty {br.kind}: it needs at least one branch", br.span)
        base = scope.path + (name,) if name else scope.path
        outs = []
        for chain in br.chains:
            label = f"b{self._fresh(base, 'b')}"
            inner = Scope(base + (label,), scope.vars, dict(scope.nodes), scope.defaults, scope.module)
            outs.append(self._chain(chain, inner, cur))
        layer = Layer(self._id(scope.path, name, br.kind, br.span), br.kind, {}, tuple(outs), br.span, scope.module)
        return self._add(layer, br.span)

    def _call_module(self, el: ast.Call, scope: Scope, cur: str, name: str | None) -> str:
        mod, _file = self.prog.modules[el.name]
        if any(m == el.name for m, _ in self.calls):
            chain = " -> ".join([m for m, _ in self.calls] + [el.name])
            raise SpecError(f"module recursion: {chain}", _name_span(el),
                            notes=[Note(f"'{m}' called here", s) for m, s in self.calls],
                            hint="a module cannot call itself, directly or through others; use `repeat` to stack blocks")
        if len(self.calls) >= MAX_CALL_DEPTH:
            raise SpecError(f"modules nested more than {MAX_CALL_DEPTH} deep", el.span)
        values = self._bind_module_args(mod, el, scope)
        if name is None:
            path = tuple(self._id(scope.path, None, el.name, el.span).split("/"))
        else:
            path = scope.path + (name,)
            self._check_free("/".join(path), el.span)
        self.block_spans["/".join(path)] = el.span  # taken from now on, before its body
        inner = Scope(path, values, {}, scope.defaults, mod.name)
        self.calls.append((el.name, el.span))
        try:
            out = self._body(mod.body, inner, cur)
        except SpecError as err:
            if not err.message.startswith("module recursion"):  # that one lists the calls already
                err.notes.append(call_note(mod.name, "/".join(path), el.span))  # innermost first, like rustc
            raise
        self.calls.pop()
        self.graph.blocks.append(Block("/".join(path), mod.name, out, el.span))
        return out

    def _bind_module_args(self, mod: ast.Definition, el: ast.Call, scope: Scope) -> dict:
        names = [p.name for p in mod.params]
        sig = f"{mod.name}({', '.join(names)})"
        if len(el.args) > len(names):
            raise SpecError(f"{mod.name} takes {len(names)} argument{'s' * (len(names) != 1)}, got {len(el.args)}",
                            el.args[len(names)].span, notes=[Note(f"module {sig}", mod.span)])
        given: dict[str, object] = {}
        for p, a in zip(mod.params, el.args):
            given[p.name] = self._eval(a, scope.vars)
        for kw in el.kwargs:
            if kw.name not in names:
                raise SpecError(f"{mod.name} has no parameter '{kw.name}'", kw.span,
                                hint=did_you_mean(kw.name, names), notes=[Note(f"module {sig}", mod.span)])
            if kw.name in given:
                raise SpecError(f"'{kw.name}' is given twice", kw.span)
            given[kw.name] = self._eval(kw.value, scope.vars)
        values: dict = {}
        for p in mod.params:
            if p.name in given:
                values[p.name] = given[p.name]
            elif p.default is not None:
                values[p.name] = self._eval(p.default, values)
            else:
                raise SpecError(f"{mod.name} needs a value for '{p.name}'", el.span,
                                notes=[Note(f"module {sig}", mod.span)])
        return values

    def _layer(self, el: ast.Call, scope: Scope, inputs: tuple[str, ...], name: str | None) -> str:
        opname, preset = ALIASES.get(el.name, (el.name, {}))
        op = OPS[opname]
        if op.inputs == 0 or op.inputs is None:
            hint = "write `input HxWxC`" if op.name == "input" else f"write `{op.name} {{ ... }}` with one branch per line"
            raise SpecError(f"'{op.name}' cannot be called like a layer", el.span, hint=hint)
        settable = [a for a in op.args if a.name not in preset]
        positional = [a for a in settable if a.name not in KEYWORD_ONLY]
        if len(el.args) > len(positional):
            raise SpecError(f"{el.name} takes at most {len(positional)} positional argument{'s' * (len(positional) != 1)}",
                            el.args[len(positional)].span, hint=_signature(op))
        explicit: dict[str, tuple[object, Span]] = {}
        for arg, expr in zip(positional, el.args):
            explicit[arg.name] = (self._eval(expr, scope.vars), expr.span)
        for kw in el.kwargs:
            arg = op.arg(kw.name)
            if arg is None or kw.name in preset:
                raise SpecError(f"{el.name} has no argument '{kw.name}'", kw.span,
                                hint=argument_hint(kw.name, [a.name for a in settable]) or _signature(op))
            if kw.name in explicit:
                raise SpecError(f"argument '{kw.name}' is given twice", kw.span,
                                notes=[Note("first given here",
                                            explicit[kw.name][1])])
            explicit[kw.name] = (self._eval(kw.value, scope.vars), kw.value.span)
        raw = {}
        fn = preset.get("fn", explicit.get("fn", (None,))[0])  # an act layer's function
        fn = ACTIVATION_NAMES.get(fn, fn) if isinstance(fn, str) else fn
        for dop, values, dspan in scope.defaults:  # outermost first: inner defaults overwrite
            if dop == op.name or (op.name == "act" and dop == f"act:{fn}"):
                for k, v in values.items():
                    if k == "slope" and op.name == "act" and fn != "leaky_relu":
                        continue  # `defaults act(slope=...)` sets leaky_relu's slope; relu has none
                    raw[k] = (v, dspan)
        raw.update(explicit)  # an explicit argument always wins
        raw.update(preset)
        for arg in op.args:
            if arg.name not in raw and arg.default is REQUIRED:
                raise SpecError(f"{el.name} needs '{arg.name}'", el.span, hint=_signature(op))
        try:
            attrs = _normalize(op, raw)
        except _BadArg as e:
            raise self._bad_arg(el.name, el.span, op, e, raw, scope) from None
        return self._add(Layer(self._id(scope.path, name, op.name if not preset else el.name, el.span), op.name,
                               attrs, inputs, el.span, scope.module), el.span)

    def _bad_arg(self, what: str, where: Span, op: Op, e: "_BadArg", raw: dict, scope: Scope) -> SpecError:
        """Say what is wrong with one argument of `what` (a call or a defaults entry); error path only."""
        span = e.span or where
        v = raw.get(e.arg)
        v = v[0] if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], Span) else v
        kind = op.arg(e.arg).kind if op.arg(e.arg) else None
        if isinstance(v, Symbol):
            words = {"pad": ("same", "valid"), "act": ("none",) + ACTIVATIONS + tuple(ACTIVATION_NAMES), "init": initializers.NAMES}.get(kind)
            if kind == "init" and v in words:  # a known initializer used wrongly (truncated_normal without stddev)
                return SpecError(f"{what}: 'init' {e.msg}", span)
            if words is None and kind in ("size", "size0") and "x" in v.strip("x"):
                ints = sorted(k for k, x in scope.vars.items() if isinstance(x, int) and not isinstance(x, bool))
                wrong = [(p, scope.vars[p]) for p in v.split("x") if p in scope.vars and p not in ints]
                if wrong:  # `m(8, 2.0)` for `1xn`: the side is bound, to something that is not an integer
                    p, x = wrong[0]
                    return SpecError(f"'{v}' is not a size here: {p} is {_show(x)}, not an integer", span,
                                     label=f"{what}'s '{e.arg}' needs a size",
                                     hint=f"pass a whole number for {p}, or write the size as a tuple with "
                                     f"int(): ({', '.join(f'int({q})' if q == p else q for q in v.split('x'))})")
                return SpecError(f"'{v}' is not a size here: its sides must be numbers or names of integers",
                                 span, label=f"{what}'s '{e.arg}' needs a size",
                                 hint=f"integers known here: {', '.join(ints)}" if ints else
                                 "bind the side first, e.g. a module parameter n for 1xn, or write (1, 7)")
            if words is None:  # a number or true/false was wanted: the word is a misspelt name
                return SpecError(f"unknown name '{v}'", span, label=f"{what}'s '{e.arg}' needs a value",
                                 hint=did_you_mean(v, scope.vars) or _known(scope.vars))
            return SpecError(f"{what}: '{e.arg}' cannot be '{v}'", span,
                             hint=did_you_mean(v, words) or f"use one of: {', '.join(words)}")
        hint = None
        if isinstance(v, float) and kind == "count":
            src = _source_text(span)
            hint = f"wrap it in int() or round(): int({src})" if src else "wrap it in int() or round()"
        return SpecError(f"{what}: '{e.arg}' {e.msg}", span, hint=hint)

    # -- names and nodes -------------------------------------------------------------------
    def _fresh(self, path: tuple, base: str) -> int:
        key = (path, base)
        n = self.counters.get(key, 0) + 1
        self.counters[key] = n
        return n

    def _id(self, path: tuple, name: str | None, base: str, span: Span) -> str:
        if name is not None:
            node = "/".join(path + (name,))
            self._check_free(node, span)
            return node
        while True:
            node = "/".join(path + (f"{base}_{self._fresh(path, base)}",))
            if not self._taken(node):
                return node

    def _taken(self, node: str) -> bool:
        return node in self.graph.layers or node in self.block_spans

    def _check_free(self, node: str, span: Span):
        g = self.graph
        if self._taken(node):
            first = g.layers[node].span if node in g.layers else self.block_spans[node]
            raise SpecError(f"the name '{node}' is already taken", span,
                            notes=[Note("first used here", first)] if first else [],
                            hint="give this one another name")

    def _add(self, layer: Layer, span: Span) -> str:
        g = self.graph
        if len(g.layers) >= MAX_LAYERS:
            raise SpecError(f"the network has more than {MAX_LAYERS:,} layers; is a `repeat` count absurd?", span)
        g.layers[layer.name] = layer
        return layer.name

    def _prune(self, g: Graph):
        """Drop layers that reach no output (a tap nobody uses); remember their names."""
        needed: set[str] = set()
        stack = [o.node for o in g.outputs]
        while stack:
            n = stack.pop()
            if n not in needed:
                needed.add(n)
                stack.extend(g.layers[n].inputs)
        if len(needed) != len(g.layers):
            g.unused = [n for n in g.layers if n not in needed]
            calls = sorted(g.blocks, key=lambda b: -len(b.name))  # the outermost call wins below
            for n in g.unused:
                outer = [b for b in calls if n.startswith(b.name + "/")]
                g.unused_spans[n] = outer[-1].span if outer else g.layers[n].span
            g.layers = {n: l for n, l in g.layers.items() if n in needed}
            g.blocks = [b for b in g.blocks if b.output in needed]

    # -- expressions ---------------------------------------------------------------------
    def _eval(self, e: ast.Expr, env: dict):
        self._step(e.span)
        t = type(e)
        if t is ast.Const:
            return e.value
        if t is ast.Name:
            if e.name in env:
                return env[e.name]
            if e.name == "none":
                return None
            size = named_size(e.name, env)
            return Symbol(e.name) if size is None else size
        if t is ast.BinOp:
            return self._binop(e, self._eval(e.left, env), self._eval(e.right, env), env)
        if t is ast.UnaryOp:
            v = self._eval(e.operand, env)
            if e.op == "not":
                return not self._bool(v, e.operand, env)
            self._num(v, e.operand, env)
            return -v if e.op == "-" else v
        if t is ast.BoolOp:
            left = self._bool(self._eval(e.operands[0], env), e.operands[0], env)
            if (e.op == "and") != left:  # short-circuit: false and ..., true or ...
                return left
            return self._bool(self._eval(e.operands[1], env), e.operands[1], env)
        if t is ast.Func:
            return self._func(e, [self._eval(a, env) for a in e.args], env)
        if t is ast.Tuple:
            return tuple(self._eval(x, env) for x in e.items)
        raise SpecError(f"cannot evaluate {t.__name__}", e.span)  # pragma: no cover

    def _unknown(self, v, expr, env) -> SpecError:
        hint = did_you_mean(str(v), env)
        return SpecError(f"unknown name '{shorten(str(v))}'", expr.span, hint=hint or _known_list("known here", env))

    def _num(self, v, expr, env):
        if isinstance(v, Symbol):
            raise self._unknown(v, expr, env)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecError(f"expected a number, got {_show(v)}", expr.span)
        return v

    def _bool(self, v, expr, env):
        if isinstance(v, Symbol):
            raise self._unknown(v, expr, env)
        if not isinstance(v, bool):
            raise SpecError(f"expected true or false, got {_show(v)}", expr.span)
        return v

    def _binop(self, e: ast.BinOp, a, b, env):
        op = e.op
        if op in ("==", "!="):
            for word, other, expr in ((a, b, e.left), (b, a, e.right)):
                # `widht == 1.0`: a typo; `pooling == avg` with pooling=none compares two words
                if isinstance(word, Symbol) and not isinstance(other, str) and other is not None:
                    raise self._unknown(word, expr, env)
            return (a == b) == (op == "==")
        a, b = self._num(a, e.left, env), self._num(b, e.right, env)
        if op in ("<", "<=", ">", ">="):
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        if op in ("/", "//", "%") and b == 0:
            raise SpecError("division by zero", e.right.span, label="this is 0")
        r = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
             "//": lambda: a // b, "%": lambda: a % b}[op]()
        if abs(r) > MAX_NUMBER:
            raise SpecError(f"number too large: {r:.3g}", e.span)
        return r

    def _func(self, e: ast.Func, args: list, env):
        if e.name in initializers.NAMES:  # init=truncated_normal(0.1): a value for `init=`
            return self._initializer(e, args, env)
        b = functions.BUILTINS.get(e.name)
        if b is None:
            known = list(functions.BUILTINS) + list(initializers.CALLS)
            raise SpecError(f"unknown function '{e.name}'", e.span,
                            hint=did_you_mean(e.name, known) or f"functions: {', '.join(known)}")
        bound = functions.bind(b, e, args, {kw.name: self._eval(kw.value, env) for kw in e.kwargs})
        for v, x in bound.values():
            self._num(v, x, env)
        functions.check(b, bound)
        try:
            return functions.call(b, bound)
        except (ValueError, OverflowError):  # int(nan), round(inf): only reachable from Python overrides
            shown = ', '.join(_show(v) for v, _ in bound.values())
            raise SpecError(f"{e.name}() cannot take {shown}", e.span) from None

    def _initializer(self, e: ast.Func, args: list, env) -> str:
        """`truncated_normal(0.1)` or `truncated_normal(stddev=0.1)`, TF-slim's keyword."""
        param = initializers.CALLS.get(e.name)
        for kw in e.kwargs:
            if kw.name != param or args:
                why = f"{e.name}() takes {f'one argument, {param}' if param else 'no arguments'}"
                raise SpecError(why, kw.span)
            args = [self._eval(kw.value, env)]
        try:
            return initializers.make(e.name, args)
        except ValueError as err:
            raise SpecError(str(err), e.span) from None


def _output_name(end: str, g: Graph) -> str:
    """The implicit output's name: its node, or, when the last statement is a module call
    (`r2 = blk(8)`, node `r2/relu_1`), the call's name `r2`: Keras and ONNX names cannot hold '/'
    (keras.layers.Layer refuses it), and the call is what the spec names."""
    name = end.split("/", 1)[0]
    return name if name not in {o.name for o in g.outputs} else end.replace("/", "_")


def named_size(word: str, env: dict) -> tuple[int, ...] | None:
    """`1xn`, `nx1`, `kxk`: a size written with sides that are numbers or names bound to integers
    (module parameters, `let`s). None when the word is not one, or reads as a size more than one way."""
    def side(part: str):
        if part.isdigit():
            return int(part)
        v = env.get(part)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def readings(rest: str) -> list[tuple[int, ...]]:
        out = [(v,)] if (v := side(rest)) is not None else []
        for i, ch in enumerate(rest):
            if ch == "x" and 0 < i < len(rest) - 1 and (head := side(rest[:i])) is not None:
                out += [(head,) + tail for tail in readings(rest[i + 1:])]
        return out

    if "x" not in word:
        return None
    sizes = [r for r in readings(word) if len(r) > 1]
    return sizes[0] if len(sizes) == 1 else None


class _BadArg(Exception):
    def __init__(self, arg, msg, span):
        self.arg, self.msg, self.span = arg, msg, span


def _normalize(op: Op, raw: dict) -> dict:
    """Like ops.normalize, but remembers which expression gave each bad value."""
    values = {k: (v[0] if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], Span) else v) for k, v in raw.items()}
    try:
        return normalize(op, values)
    except ArgError as e:
        src = raw.get(e.arg)
        span = src[1] if isinstance(src, tuple) and len(src) == 2 and isinstance(src[1], Span) else None
        raise _BadArg(e.arg if e.arg in raw else "?", str(e), span) from None


def _known(env) -> str | None:
    return _known_list("names known here", sorted(env))


def _known_list(what: str, names) -> str | None:
    """`what: a, b, c` with at most 20 names, each shortened: a hint stays on one screen."""
    names = list(names)
    if not names:
        return None
    shown = ", ".join(shorten(n) for n in names[:20])
    return f"{what}: {shown}" + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _source_text(span: Span) -> str | None:
    line = span.source_line()
    if line is None or span.end_line != span.line:
        return None
    return line[span.col - 1:span.end_col - 1] or None


def _name_span(el) -> Span:
    """Just the name of a call, for a caret under `convv` rather than the whole call."""
    s = el.span
    return Span(s.file, s.line, s.col, s.line, s.col + len(el.name))


def _signature(op: Op) -> str:
    parts = [a.name if a.default is REQUIRED else f"{a.name}={_show(a.default).strip(chr(39))}" for a in op.args
             if a.name not in KEYWORD_ONLY]
    return f"{op.name}({', '.join(parts)})"


def _show(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, Symbol):
        return f"the word '{v}'"
    if isinstance(v, tuple):
        return "x".join(str(x) for x in v)
    return repr(v) if isinstance(v, str) else str(v)


def _coerce_override(name: str, text, default):
    """`--set width=0.75`: read the value as the default's type, in the spec's own number syntax
    (incdsl.literals: no `1_0`, no non-ASCII digits)."""
    if not isinstance(text, str):
        return text
    s = text.strip()
    low = s.lower()
    try:
        if isinstance(default, bool):
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return read_int(s)
        if isinstance(default, float):
            return float(read_number(s))
        if isinstance(default, tuple):
            sizes = read_sizes(s)
            return sizes[0] if len(sizes) == 1 else sizes  # `--set k=5` is a square 5x5
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number", tuple: "sizes like 3x3"}[type(default)]
        raise ArgumentError(name, shorten(text), f"{name} is {kind} (its default is {_show(default)})") from None
    try:
        return read_number(s)
    except ValueError:
        pass
    if low in ("true", "false"):
        return low == "true"
    return Symbol(s)
