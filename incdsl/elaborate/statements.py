"""AST -> graph IR: expand module calls, `repeat` and `if`, apply defaults, emit one layer per call.

This file holds the statements; the rooms around it hold the rest: evaluate.py (expressions),
binding.py (arguments to parameters, and the errors that name the argument at fault), naming.py
(layer ids), scopes.py (what a block sees: the scoping rules are stated there). Layers that reach no
output are dropped afterwards by the prune pass (passes/prune.py), which Network runs first.
"""
from __future__ import annotations

import dataclasses

from ..errors import Note, OptionError, Span, SpecError, UsageError, call_note, did_you_mean
from ..frontend import ast
from ..frontend.program import Program
from ..ir.graph import Block, Graph, Layer, OutputSpec
from ..ops import ALIASES, KINDS, OPS, Symbol, normalize, show_value
from .binding import bind_module_args, bind_network_params, defaults_entries, layer_attrs
from .choices import allowed_values, check_in_spec
from .evaluate import MAX_STEPS, Evaluator, input_size, unknown_name
from .foreign_names import op_hint
from .naming import Names, check_not_op, output_name
from .scopes import Scope

MAX_LAYERS = 100_000
MAX_CALL_DEPTH = 64

__all__ = ["elaborate", "network_params", "pick_network", "MAX_LAYERS", "MAX_STEPS", "MAX_CALL_DEPTH"]


def elaborate(prog: Program, network: str | None = None, overrides: dict | None = None) -> Graph:
    """Expand the parsed `prog` into the graph IR of one network (`Graph`): layers, outputs, module calls.

    `network` picks one by name when the file has several; `overrides` maps network parameters to
    new values (`--set`). Module calls, `repeat`, `if` and `defaults` are expanded; layers that
    reach no output stay in the graph until the prune pass (passes/prune.py) drops them. Raises
    `UsageError` for an unknown network or parameter (or several networks and no choice),
    `ArgumentError` for a value of the wrong kind, and `SpecError` (with file:line:col) for
    anything wrong in the spec, including past the limits (MAX_LAYERS layers, MAX_STEPS steps,
    MAX_CALL_DEPTH nested calls).
    """
    net = pick_network(prog, network)
    try:
        return _Elaborator(prog).network(net, overrides or {})
    except _TooDeep as e:
        raise _too_deep(e.span) from None
    except RecursionError:  # deep nesting outside any statement: parameters, variants
        raise _too_deep(net.span) from None


def pick_network(prog: Program, name: str | None) -> ast.Definition:
    """The network definition called `name` in `prog`, or its only one when `name` is None.
    Raises `UsageError` for an unknown name or several networks and no name, `SpecError` for a
    file without a network (a library)."""
    nets = prog.networks
    if name is not None:
        for n in nets:
            if n.name == name:
                return n
        known = [n.name for n in nets]
        raise UsageError(
            f"no network '{name}' in {prog.path}"
            + (
                f"; {did_you_mean(name, known)}"
                if did_you_mean(name, known)
                else f" (it has: {', '.join(known) or 'none'})"
            )
        )
    if not nets:
        raise SpecError(f"{prog.path} defines no network",
                        hint="a spec needs `network NAME(...) { input ... }`; files with only modules are "
                             "libraries to `use`")
    if len(nets) > 1:
        raise OptionError("{file} defines several networks ({names}); pick one with {network}",
                          words={"network": "network=NAME"}, file=prog.path,
                          names=", ".join(n.name for n in nets))
    return nets[0]


def network_params(prog: Program, network: str | None = None) -> dict:
    """The network's parameters and their default values (evaluated): `{"classes": 1000, "width": 1.0}`.
    Raises as `pick_network`, and `SpecError` for a default that does not evaluate."""
    net = pick_network(prog, network)
    try:
        return bind_network_params(net, {}, Evaluator())
    except RecursionError:
        raise _too_deep(net.span) from None


class _TooDeep(Exception):
    def __init__(self, span: Span):
        self.span = span


def _too_deep(span: Span) -> SpecError:
    return SpecError("nested too deeply: more than a few hundred levels of blocks, branches or operators",
                     span)


class _Elaborator:
    """The statements of one network's body, and the module bodies it calls, into one Graph."""

    def __init__(self, prog: Program):
        self.prog = prog
        self.ev = Evaluator()
        self.calls: list[tuple[str, Span]] = []  # the module calls being expanded, outermost first
        self.input_seen = False

    # -- entry ---------------------------------------------------------------------------
    def network(self, net: ast.Definition, overrides: dict) -> Graph:
        params = bind_network_params(net, overrides, self.ev)
        self.net = net
        self.graph = g = Graph(net.name, dict(params))
        self.names = Names(g)
        for v in self.prog.variants:
            self._variant(v, params, net)
        scope = Scope((), dict(params), None)
        for d in self.prog.defaults:
            scope.add_defaults(defaults_entries(d, scope, self.ev))
        end = self._body(net.body, scope, None, in_network=True)
        if not any(not o.train_only for o in g.outputs):
            if end is None:
                raise SpecError(f"network '{net.name}' has no layers", net.span,
                                hint="start the body with `input HxWxC`")
            g.outputs.insert(0, OutputSpec(output_name(end, g), end, False, 1.0, g.layers[end].span))
        return g

    def _variant(self, v: ast.Variant, params: dict, net: ast.Definition):
        if v.name in self.graph.variants:
            raise SpecError(f"variant '{v.name}' is declared twice", v.span)
        sets = {}
        for kw in v.kwargs:
            if kw.name not in params:
                raise SpecError(f"variant '{v.name}' sets unknown parameter '{kw.name}'", kw.span,
                                hint=did_you_mean(kw.name, params))
            value = self.ev.eval(kw.value, {})
            if isinstance(value, Symbol) and not isinstance(params[kw.name], str):
                raise SpecError(
                    f"variant '{v.name}': '{value}' is not a value for {kw.name}",
                    kw.value.span,
                    hint=f"variants take plain values; {kw.name}'s default is {show_value(params[kw.name])}",
                )
            param = next(p for p in net.params if p.name == kw.name)
            check_in_spec(f"variant '{v.name}'", param, value, allowed_values(param, params, self.ev),
                          kw.value.span, net)
            sets[kw.name] = value
        self.graph.variants[v.name] = sets

    # -- statements ----------------------------------------------------------------------
    def _body(self, stmts, scope: Scope, cur: str | None, in_network=False) -> str | None:
        for st in stmts:
            try:
                self.ev.step(st.span)
                if isinstance(st, ast.Chain):
                    cur = self._chain(st, scope, cur)
                elif isinstance(st, ast.Assign):
                    cur = self._assign(st, scope, cur)
                elif isinstance(st, ast.Defaults):
                    scope.add_defaults(defaults_entries(st, scope, self.ev))
                elif isinstance(st, ast.Let):
                    scope.vars[st.name] = self.ev.eval(st.value, scope.vars)
                elif isinstance(st, ast.If):
                    cond = self.ev.eval(st.cond, scope.vars)
                    if not isinstance(cond, bool):
                        if isinstance(cond, Symbol):
                            raise unknown_name(cond, st.cond, scope.vars)
                        raise SpecError(f"`if` needs true or false, got {show_value(cond)}", st.cond.span,
                                        hint="compare it to get true or false, e.g. `if depth > 0 { ... }`")
                    cur = self._body(st.then if cond else st.orelse, scope.block(), cur, in_network)
                elif isinstance(st, ast.Repeat):
                    cur = self._repeat(st, None, scope, cur, in_network)
                elif isinstance(st, ast.Input):
                    cur = self._input(st, scope, in_network)
                elif isinstance(st, ast.Output):
                    self._output(st, scope, cur, in_network)
                elif isinstance(st, ast.Variant):
                    if not in_network:
                        raise SpecError("variants belong to a network or the top of its file", st.span)
                    self._variant(st, self.graph.params, self.net)
                else:  # pragma: no cover - the grammar has no other statements
                    raise SpecError(f"unexpected statement {type(st).__name__}", st.span)
            except (RecursionError, _TooDeep):  # Python's stack ran out: blame the outermost statement,
                raise _TooDeep(st.span) from None  # the same wherever the stack happened to end
        return cur

    def _input(self, st: ast.Input, scope: Scope, in_network: bool) -> str:
        if not in_network or scope.path or self.calls:
            raise SpecError("`input` belongs in the network body, not in a module", st.span)
        if self.input_seen:
            raise SpecError("the network already has an input", st.span,
                            notes=[Note("the first input", self.graph.layers["input"].span)]
                            if "input" in self.graph.layers else [])
        self.input_seen = True
        dims = [self.ev.eval(d, scope.vars) for d in st.dims]
        exprs = list(st.dims)
        if len(dims) == 2:  # input(size, channels): a square side or HxW (`--set size=350x400`)
            dims, exprs = input_size(dims[0], st.dims[0]) + [dims[1]], [st.dims[0]] * 2 + [st.dims[1]]
        raw = dict(zip(("height", "width", "channels"), dims))
        for (k, v), d in zip(raw.items(), exprs):
            if isinstance(v, Symbol):
                raise unknown_name(v, d, scope.vars)
            try:
                KINDS["count"](v)
                if k != "channels" and v > 65536:
                    raise ValueError(f"{v:,} is absurdly large (the limit is 65,536)")
            except ValueError as e:
                hint = ("a size of HxW goes in the two-argument form, input(size, channels)"
                        if isinstance(v, tuple) and len(st.dims) == 3 else None)
                raise SpecError(f"input {k} {e}", d.span, hint=hint) from None
        return self._add(Layer("input", "input", normalize(OPS["input"], raw), (), st.span), st.span)

    def _output(self, st: ast.Output, scope: Scope, cur, in_network: bool):
        if not in_network or self.calls:
            raise SpecError("outputs belong in the network body, not in a module", st.span)
        check_not_op(st.name, st.span)
        loss_weight = 1.0
        for kw in st.kwargs:
            if kw.name != "loss_weight":
                raise SpecError(f"train_output has no option '{kw.name}'", kw.span,
                                hint="the only option is loss_weight")
            try:
                loss_weight = KINDS["any_float"](self.ev.eval(kw.value, scope.vars))
            except ValueError as e:
                raise SpecError(f"loss_weight {e}", kw.value.span) from None
        first = next((o for o in self.graph.outputs if o.name == st.name), None)
        if first is not None:
            raise SpecError(f"output '{st.name}' is declared twice", st.span,
                            notes=[Note("first declared here", first.span)])
        node = self._chain(st.chain, scope, cur, name=st.name)
        self.graph.outputs.append(OutputSpec(st.name, node, st.train_only, loss_weight, st.span))

    def _assign(self, st: ast.Assign, scope: Scope, cur):
        check_not_op(st.name, st.name_span)
        self.names.check_free("/".join(scope.path + (st.name,)), st.name_span, shown=st.name)
        if isinstance(st.target, ast.Repeat):
            node = self._repeat(st.target, st.name, scope, cur, in_network=False)
        else:
            node = self._chain(st.target, scope, cur, name=st.name)
        if node is None:
            raise SpecError(f"'{st.name}' names nothing: there is no input before it", st.span)
        scope.bind(st.name, node)
        return node

    def _repeat(self, st: ast.Repeat, name: str | None, scope: Scope, cur, in_network):
        n = self.ev.eval(st.count, scope.vars)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise SpecError(f"repeat needs a whole number of times, got {show_value(n)}", st.count.span)
        if n > MAX_LAYERS:
            raise SpecError(f"repeat {n:,} is absurd: a network is limited to {MAX_LAYERS:,} layers",
                            st.count.span)
        single = len(st.body) == 1 and isinstance(st.body[0], ast.Chain)
        g, ev = self.graph, self.ev
        layers_before, steps_before = len(g.layers), ev.steps
        for i in range(1, n + 1):
            if i == 2:  # nested repeats multiply: project the first pass instead of running them all
                per_pass = len(g.layers) - layers_before
                if len(g.layers) + per_pass * (n - 1) > MAX_LAYERS:
                    raise SpecError(
                        f"repeat {n:,} would make about {per_pass * n:,} layers; a network is limited "
                                    f"to {MAX_LAYERS:,}", st.count.span,
                                    label=f"{per_pass:,} layers per pass")
                steps = ev.steps - steps_before
                if ev.steps + steps * (n - 1) > MAX_STEPS:
                    raise SpecError(
                        f"repeat {n:,} would take about {steps * n:,} elaboration steps; the limit is "
                                    f"{MAX_STEPS:,}", st.count.span, hint="is a `repeat` count absurd?")
            ev.step(st.span)
            if st.var:
                scope.vars[st.var] = i
            if name is None:
                cur = self._body(st.body, scope.block(), cur, in_network)
            elif single:  # `b = repeat 3 { block() }` names the calls b_1, b_2, b_3
                cur = self._chain(st.body[0], scope, cur, name=f"{name}_{i}")
            else:
                cur = self._body(st.body, scope.child(scope.path + (f"{name}_{i}",)), cur, in_network)
        return cur

    # -- chains --------------------------------------------------------------------------
    def _chain(self, chain: ast.Chain, scope: Scope, cur, name: str | None = None):
        last = len(chain.elements) - 1
        for i, el in enumerate(chain.elements):
            nm = name if i == last else None
            if isinstance(el, ast.Branches):
                cur = self._branches(el, scope, cur, nm)
                continue
            node = scope.node(el.name) if el.bare else None
            if node is not None:
                if i > 0:
                    raise SpecError(f"'{el.name}' is a named value; it can only start a chain", el.span,
                                    hint=f"to branch from it, start a new line with `{el.name} -> ...`")
                cur = node
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
                known = scope.names() + list(self.prog.modules) + list(OPS) + list(ALIASES) + ["identity"]
                hint = op_hint(el.name, known)
                what = "op, module or named value" if not el.bare or i == 0 else "op or module"
                raise SpecError(f"unknown name '{el.name}': no {what} is called that", _name_span(el),
                                hint=hint)
        return cur

    def _no_input(self, el) -> SpecError:
        return SpecError(f"'{el.name}' has no input: the network has none yet", el.span,
                         hint="a network body starts with `input HxWxC`, e.g. `input 224x224x3`")

    def _branches(self, br: ast.Branches, scope: Scope, cur, name: str | None) -> str:
        if cur is None:
            raise SpecError(f"{br.kind} has no input: the network has none yet", br.span)
        # its only option, `tap=true`, is checked like a layer's arguments (before the branches run)
        attrs = layer_attrs(ast.Call(br.kind, (), br.kwargs, False, br.span), OPS[br.kind], {}, scope,
                            self.ev)
        if not br.chains:
            raise SpecError(f"empty {br.kind}: it needs at least one branch", br.span)
        base = scope.path + (name,) if name else scope.path
        outs = []
        for chain in br.chains:
            label = f"b{self.names.fresh(base, 'b')}"
            outs.append(self._chain(chain, scope.child(base + (label,)), cur))
        layer = Layer(self.names.id(scope.path, name, br.kind, br.span), br.kind, attrs, tuple(outs), br.span,
                      scope.module)
        return self._add(layer, br.span)

    def _call_module(self, el: ast.Call, scope: Scope, cur: str, name: str | None) -> str:
        mod, _file = self.prog.modules[el.name]
        if any(m == el.name for m, _ in self.calls):
            chain = " -> ".join([m for m, _ in self.calls] + [el.name])
            raise SpecError(
                f"module recursion: {chain}",
                _name_span(el),
                notes=[Note(f"'{m}' called here", s) for m, s in self.calls],
                hint="a module cannot call itself, directly or through others; use `repeat` to stack blocks",
            )
        if len(self.calls) >= MAX_CALL_DEPTH:
            raise SpecError(f"modules nested more than {MAX_CALL_DEPTH} deep", el.span)
        values = bind_module_args(mod, el, scope.vars, self.ev)
        if name is None:
            path = tuple(self.names.id(scope.path, None, el.name, el.span).split("/"))
        else:
            path = scope.path + (name,)
            self.names.check_free("/".join(path), el.span)
        self.names.blocks["/".join(path)] = el.span  # taken from now on, before its body
        self.calls.append((el.name, el.span))
        try:
            out = self._body(mod.body, scope.call(path, values, mod.name), cur)
        except SpecError as err:
            if not err.message.startswith("module recursion"):  # that one lists the calls already
                err.notes.append(call_note(mod.name, "/".join(path), el.span))  # innermost first, like rustc
            raise
        self.calls.pop()
        self.graph.blocks.append(Block("/".join(path), mod.name, out, el.span))
        return out

    def _layer(self, el: ast.Call, scope: Scope, inputs: tuple[str, ...], name: str | None) -> str:
        opname, preset = ALIASES.get(el.name, (el.name, {}))
        op = OPS[opname]
        if op.inputs == 0 or op.inputs is None:
            hint = (
                "write `input HxWxC`"
                if op.name == "input"
                else f"write `{op.name} {{ ... }}` with one branch per line"
            )
            raise SpecError(f"'{op.name}' cannot be called like a layer", el.span, hint=hint)
        attrs = layer_attrs(el, op, preset, scope, self.ev)
        return self._add(Layer(self.names.id(scope.path, name, op.name if not preset else el.name, el.span),
                               op.name,
                               attrs, inputs, el.span, scope.module), el.span)

    def _add(self, layer: Layer, span: Span) -> str:
        g = self.graph
        if len(g.layers) >= MAX_LAYERS:
            raise SpecError(f"the network has more than {MAX_LAYERS:,} layers; is a `repeat` count absurd?",
                            span)
        g.layers[layer.name] = layer
        return layer.name


def _name_span(el) -> Span:
    """Just the name of a call, for a caret under `convv` rather than the whole call."""
    s = el.span
    return dataclasses.replace(s, end_line=s.line, end_col=s.col + len(el.name))
