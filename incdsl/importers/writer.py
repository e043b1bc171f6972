"""The imported graph as a readable spec: modules for repeated blocks, hoisted defaults, shapes.

- Module calls: the main chain's top-level items are grouped by the source's names (a block's
  output name, else what its layers' names share: `mixed5`, `block35_3`, `Mixed_5b`); a group with
  a branching block is one module call named after it. Calls whose bodies read the same except for
  channel counts (and scale factors) share one module; a count that differs between calls becomes
  an argument, counts that always move together one argument (Inception v3's mixed4-7 take one
  `c1` for their seven 128/160/192 convs). Runs of identical calls named `x_1 .. x_n` become
  `x = repeat n { ... }`.
- `defaults`: for each op, an argument value that a strict majority of its layers share (and that
  is not the op's own default) is hoisted, as TF-slim's arg_scope would (specs/README.md: Defaults).
- Each top-level statement carries its output shape as a comment.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ..ops import ALIASES, OPS
from ..text import shape_text
from .flat import Flat
from .modules import Group, assign_modules, group_items, hoist_defaults, identifier, nodes_of, render_call
from .render import SLOT, NameMismatch, Renderer, value_text
from .structure import Layer, Tap


@dataclass
class Written:
    """A written spec: its text, the nodes in elaboration order, module call counts, hoisted defaults, and
    which spec line ends with which node."""
    text: str
    order: list[str]                 # flat nodes in the order elaboration emits their layers
    modules: dict[str, int] = field(default_factory=dict)  # module -> calls
    defaults: dict = field(default_factory=dict)
    names_kept: bool = True
    line_nodes: dict[int, str] = field(default_factory=dict)  # spec line -> the node its statement ends with


# --- the spec -------------------------------------------------------------------------------

def write_spec(flat: Flat, chain: list, taps: list[Tap], header: str, use_names: bool = True) -> Written:
    """The spec text for a decomposed model: header, modules for repeated structure, hoisted defaults, the
    network with shape comments and its taps."""
    want_mode = use_names and any(n.want for n in flat.nodes.values())
    defaults = hoist_defaults(flat)
    params, subst = _network_params(flat, chain)
    groups = group_items(flat, chain, want_mode)
    taken: set[str] = set()
    for g in groups:
        if g.call and g.key:
            name = identifier("_".join(g.key)) if not want_mode else g.key[0]
            g.name = name if name and name not in taken else None
            if g.name:
                taken.add(g.name)
    # a head that is one module call of a model incdsl compiled (`train_output aux1 = x -> aux(...)`)
    tap_groups = {}
    for tap in taps:
        wants = [flat.nodes[n].want or "" for it in tap.chain for n in nodes_of(it)]
        if want_mode and wants and all(w.startswith(tap.head + "/") for w in wants):
            tap_groups[tap.head] = Group(tap.chain, (tap.head,), True, tap.head)
    calls = [render_call(flat, g, defaults, want_mode,
                         {}) for g in groups + list(tap_groups.values()) if g.call]
    modules = assign_modules(calls)
    counts = Counter(c.module for c in calls)
    numbered = Counter()
    for c in calls:
        if c.group.name is None:
            numbered[c.module] += 1
            c.group.name = f"{c.module}_{numbered[c.module]}"

    top = Renderer(flat, defaults, use_names=want_mode, subst=subst)
    order: list[str] = []
    stmts: list[tuple[list[str], str | None]] = []  # (lines, node whose shape the comment gives)
    call_of = {id(c.group): c for c in calls}
    head = flat.heads[0]
    named = {}
    if not want_mode:
        for g in groups:
            for it in g.items if not g.call else []:
                if isinstance(it, Layer) and flat.nodes[it.node].path:
                    nm = identifier("_".join(flat.nodes[it.node].path))
                    automatic = (
                        nm
                        and re.fullmatch(r"[a-z_0-9]+_\d+", nm)
                        and nm.rsplit("_", 1)[0] in {**OPS, **ALIASES}
                    )
                    if nm and not automatic and nm not in taken and nm != head.name:
                        named[it.node] = nm
                        taken.add(nm)
    pending = list(groups)
    k = 0
    while k < len(pending):
        g = pending[k]
        if g.call:
            c = call_of[id(g)]
            run = [c]
            while k + len(run) < len(pending) and pending[k + len(run)].call:
                nxt = call_of[id(pending[k + len(run)])]
                if nxt.module != c.module or nxt.args != c.args:
                    break
                run.append(nxt)
            base = re.sub(r"_1$", "", c.group.name)
            if len(run) >= 3 and [x.group.name for x in run] == [f"{base}_{i}" for i in range(1,
                                                                                              len(run) + 1)]:
                stmts.append(([f"{base} = repeat {len(run)} {{ {c.module}({', '.join(c.args)}) }}"],
                              run[-1].order[-1]))
            else:
                run = [c]
                stmts.append(([f"{c.group.name} = {c.module}({', '.join(c.args)})"], c.order[-1]))
            for x in run:
                order += x.order
            k += len(run)
            continue
        for it in g.items:
            before, slots_before = len(top.order), len(top.slots)
            if isinstance(it, Layer) and it.node == head.node and it is chain[-1]:
                _, text = top.layer(it.node, (), True, force=head.name)
                stmts.append(([f"output {head.name} = {text}"], it.node))
            else:
                (lines, node), = top.statements([it], (), named)
                stmts.append((lines, node))
            _fill(stmts[-1][0], top.slots[slots_before:])
            order += top.order[before:]
        k += 1
    for tap in taps:
        src = _top_name(flat, tap.src, groups, named, want_mode)
        before, slots_before = len(top.order), len(top.slots)
        h = next(x for x in flat.heads if x.name == tap.head)
        parts = [src]
        if tap.head in tap_groups:
            c = call_of[id(tap_groups[tap.head])]
            parts.append(f"{c.module}({', '.join(c.args)})")
            order += c.order
        for j, it in enumerate(tap.chain if tap.head not in tap_groups else []):
            if j == len(tap.chain) - 1 and isinstance(it, Layer):
                parts.append(top.layer(it.node, (), True, force=h.name)[1])
            elif isinstance(it, Layer):
                parts.append(top.layer(it.node, (), False)[1])
            else:
                raise NameMismatch(tap.head)
        kind = f"train_output {h.name}(loss_weight={h.loss_weight!r})" if h.train_only else f"output {h.name}"
        stmts.append(([f"{kind} = {' -> '.join(parts)}"], h.node))
        _fill(stmts[-1][0], top.slots[slots_before:])
        order += top.order[before:]
    text, line_nodes = _assemble(flat, header, modules, defaults, params, stmts)
    return Written(text, order, dict(counts), defaults, want_mode, line_nodes)


def _fill(lines: list[str], slots) -> None:
    """Top-level statements take their numbers as they are."""
    it = iter(slots)
    for i, line in enumerate(lines):
        lines[i] = re.sub(SLOT, lambda m: value_text(next(it)[1]), line)


def _top_name(flat, node, groups, named, want_mode) -> str:
    for g in groups:
        if g.call and nodes_of(g.items[-1])[-1] == node:
            return g.name
    if node in named:
        return named[node]
    want = flat.nodes[node].want
    if want_mode and want and "/" not in want:
        return want
    raise NameMismatch(node)


def _network_params(flat: Flat, chain: list) -> tuple[dict, dict]:
    """The network's parameters and where they replace numbers: `size` in the input, `classes` in
    the last dense layer of the main head."""
    params = dict(flat.params)
    subst: dict[str, dict] = {}
    h, w, _ = flat.shapes["input"]
    head = flat.nodes[flat.heads[0].node]
    if not flat.params:
        if head.op == "dense":
            params["classes"] = head.attrs["units"]
        if h == w:
            params["size"] = h
    if params.get("classes") == (head.attrs.get("units") if head.op == "dense" else None):
        subst[head.name] = {"units": "classes"}
    if params.get("size") == h == w:
        subst["input"] = {"height": "size", "width": "size"}
    return params, subst


def _assemble(flat, header, modules, defaults, params, stmts) -> str:
    out = [header, ""]
    for name, (ps, body) in modules.items():
        out.append(f"module {name}({', '.join(ps)}) {{" if ps else f"module {name} {{")
        out += ["  " + line for line in body.split("\n")]
        out += ["}", ""]
    ptext = ", ".join(f"{k}={_param_text(v)}" for k, v in params.items())
    out.append(f"network {flat.name}({ptext}) {{" if ptext else f"network {flat.name} {{")
    if defaults:
        entries = ", ".join(f"{op}({', '.join(f'{k}={value_text(v)}' for k, v in args.items())})"
                            for op, args in defaults.items())
        out.append(f"  defaults {entries}")
    h, w, c = flat.shapes["input"]
    size = "size, size" if params.get("size") == h == w else f"{h}, {w}"
    out.append(f"  input({size}, {c})")
    rows, line_nodes = [], {}
    first = sum(part.count("\n") + 1 for part in out) + 1  # the header is one entry of two lines
    for lines, node in stmts:
        for line in lines:
            line_nodes[first + len(rows)] = node
            rows.append(("  " + line, None))
        rows[-1] = (rows[-1][0], shape_text(flat.shapes[node]) if node else None)
    width = min(max((len(r) for r, s in rows if s), default=0) + 2, 72)
    for r, s in rows:
        out.append(f"{r.ljust(width)}# {s}" if s else r)
    out.append("}")
    return "\n".join(out) + "\n", line_nodes


def _param_text(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return shape_text(v) if len(v) == 2 else "(" + ", ".join(str(x) for x in v) + ")"
    return value_text(v)
