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

from ..ops import ALIASES, DEFAULTS, OPS, normalize
from .flat import Flat
from .render import SLOT, NameMismatch, Renderer, value_text
from .structure import Block, Layer, Tap

HOIST = {  # op -> arguments worth hoisting (never the ones that make each layer what it is)
    "conv": ("pad", "bias", "bn", "bn_scale", "bn_eps", "bn_momentum", "act"),
    "sepconv": ("pad", "bias", "bn", "bn_scale", "bn_eps", "bn_momentum", "act"),
    "dwconv": ("pad", "bias", "bn", "bn_scale", "bn_eps", "bn_momentum", "act"),
    "maxpool": ("pad", "ceil"),
    "avgpool": ("pad", "ceil", "count_pad"),
}
KEYWORDS = {"module", "network", "use", "defaults", "variant", "let", "input", "output", "train_output", "if",
            "elif", "else", "repeat", "as", "identity", "true", "false", "none", "and", "or", "not", "concat", "add"}


@dataclass
class Written:
    text: str
    order: list[str]                 # flat nodes in the order elaboration emits their layers
    modules: dict[str, int] = field(default_factory=dict)  # module -> calls
    defaults: dict = field(default_factory=dict)
    names_kept: bool = True


def hoist_defaults(flat: Flat) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for op, args in HOIST.items():
        nodes = [n for n in flat.nodes.values() if n.op == op]
        if len(nodes) < 3:
            continue
        for arg in args:
            if arg.startswith("bn_"):
                pool = [n for n in nodes if n.attrs["bn"]]
            else:
                pool = nodes
            if not pool:
                continue
            value, count = Counter(_key(n.attrs[arg]) for n in pool).most_common(1)[0]
            value = next(n.attrs[arg] for n in pool if _key(n.attrs[arg]) == value)
            if 2 * count > len(pool) and value != DEFAULTS[op][arg]:
                out.setdefault(op, {})[arg] = value
    # batch-norm arguments of a conv without batch norm change nothing: give them the defaults in force
    for n in flat.nodes.values():
        if n.op in ("conv", "sepconv", "dwconv") and not n.attrs["bn"]:
            h = out.get(n.op, {})
            n.attrs = normalize(OPS[n.op], {**n.attrs, **{k: h.get(k, DEFAULTS[n.op][k])
                                                           for k in ("bn_scale", "bn_eps", "bn_momentum")}})
    return out


def _key(v):
    return (type(v).__name__, v)


def identifier(name: str) -> str | None:
    out = re.sub(r"\W", "_", name).strip("_")
    if not out or out[0].isdigit() or out in OPS or out in ALIASES or out in KEYWORDS:
        return None
    return out


# --- grouping the main chain into module calls ----------------------------------------------

@dataclass
class Group:
    items: list
    key: tuple | None
    call: bool
    name: str | None = None


def _nodes(item) -> list[str]:
    if isinstance(item, Layer):
        return [item.node]
    out = []
    for br in item.branches:
        for it in br:
            out += _nodes(it)
    return out + [item.node]


def _common(paths) -> tuple:
    paths = list(paths)
    if not paths:
        return ()
    first = paths[0]
    n = 0
    while n < len(first) and all(len(p) > n and p[n] == first[n] for p in paths):
        n += 1
    return first[:n]


def _key_of(flat: Flat, item, want_mode: bool) -> tuple | None:
    nodes = [flat.nodes[n] for n in _nodes(item)]
    if want_mode:
        wants = [n.want for n in nodes if n.want]
        firsts = {w.split("/")[0] for w in wants}
        if len(firsts) != 1:
            return None
        first = firsts.pop()
        deep = all("/" in w for w in wants)
        named_block = isinstance(item, Block) and flat.nodes[item.node].want == first
        return (first,) if deep or named_block else None
    if isinstance(item, Block) and flat.nodes[item.node].path:
        return flat.nodes[item.node].path
    return _common(n.path for n in nodes if n.path) or None


def group_items(flat: Flat, chain: list, want_mode: bool) -> list[Group]:
    groups: list[Group] = []
    for item in chain:
        key = _key_of(flat, item, want_mode)
        last = groups[-1] if groups else None
        if last is not None and key and last.key:
            related = (key == last.key) if want_mode else (key[:len(last.key)] == last.key or
                                                           last.key[:len(key)] == key)
            if related:
                last.items.append(item)
                last.key = min(key, last.key, key=len)
                continue
        groups.append(Group([item], key, False))
    for g in groups:
        has_block = any(isinstance(i, Block) for i in g.items)
        if want_mode:
            named_block = (len(g.items) == 1 and isinstance(g.items[0], Block)
                           and flat.nodes[g.items[0].node].want == (g.key or ("",))[0])
            g.call = g.key is not None and not named_block
        else:
            g.call = has_block
    return groups


# --- modules ------------------------------------------------------------------------------------

@dataclass
class Call:
    group: Group
    lines: list[str]
    slots: list[tuple[str, object]]
    order: list[str]
    module: str = ""
    args: list = field(default_factory=list)


def _render_call(flat, group, defaults, use_names, subst) -> Call:
    prefix = group.name if use_names and any(flat.nodes[n].want for n in _nodes(group.items[0])) else ""
    r = Renderer(flat, defaults, prefix=prefix, use_names=use_names, subst=subst)
    lines = []
    for stmt, _ in r.statements(group.items):
        lines += stmt
    return Call(group, lines, r.slots, r.order)


def _base(name: str) -> str:
    base = re.sub(r"_?\d+[a-z]?$", "", name) or "block"
    return base if identifier(base) else f"{base}_block"


def assign_modules(calls: list[Call]) -> dict[str, tuple[list[str], str]]:
    """Give each call its module and arguments; returns module -> (parameters, body text)."""
    sigs: dict[str, list[Call]] = {}
    for c in calls:
        sig = "\n".join(c.lines) + "|" + ",".join(k for k, _ in c.slots)
        sigs.setdefault(sig, []).append(c)
    by_base: dict[str, list[str]] = {}
    for sig, members in sigs.items():
        by_base.setdefault(_base(members[0].group.name or "block"), []).append(sig)
    modules: dict[str, tuple[list[str], str]] = {}
    for base, sig_list in by_base.items():
        for k, sig in enumerate(sig_list):
            name = base if len(sig_list) == 1 else f"{base}_{chr(ord('a') + k)}"
            members = sigs[sig]
            params, body = _parameterize(members)
            for c in members:
                c.module = name
            modules[name] = (params, body)
    return modules


def _parameterize(members: list[Call]) -> tuple[list[str], str]:
    n = len(members[0].slots)
    vectors = [tuple(c.slots[i][1] for c in members) for i in range(n)]
    params: dict[tuple, str] = {}
    kinds = Counter()
    texts = []
    for i, vec in enumerate(vectors):
        if len(set(vec)) == 1:
            texts.append(value_text(vec[0]))
            continue
        if vec not in params:
            kind = members[0].slots[i][0]
            kinds[kind] += 1
            params[vec] = ("c" if kind in ("filters", "units") else "s") + str(kinds[kind])
        texts.append(params[vec])
    for c in members:
        c.args = [value_text(vec[members.index(c)]) for vec in params]
    body_lines = []
    it = iter(texts)
    for line in members[0].lines:
        body_lines.append(re.sub(SLOT, lambda m: next(it), line))
    names = list(params.values())
    # c1, c2, ... in order of first use, which is the order of `params`
    return names, "\n".join(body_lines)


# --- the spec -------------------------------------------------------------------------------

def write_spec(flat: Flat, chain: list, taps: list[Tap], header: str, use_names: bool = True) -> Written:
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
        wants = [flat.nodes[n].want or "" for it in tap.chain for n in _nodes(it)]
        if want_mode and wants and all(w.startswith(tap.head + "/") for w in wants):
            tap_groups[tap.head] = Group(tap.chain, (tap.head,), True, tap.head)
    calls = [_render_call(flat, g, defaults, want_mode, {}) for g in groups + list(tap_groups.values()) if g.call]
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
                    automatic = nm and re.fullmatch(r"[a-z_0-9]+_\d+", nm) and nm.rsplit("_", 1)[0] in {**OPS, **ALIASES}
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
            if len(run) >= 3 and [x.group.name for x in run] == [f"{base}_{i}" for i in range(1, len(run) + 1)]:
                stmts.append(([f"{base} = repeat {len(run)} {{ {c.module}({', '.join(c.args)}) }}"], run[-1].order[-1]))
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
    text = _assemble(flat, header, modules, defaults, params, stmts)
    return Written(text, order, dict(counts), defaults, want_mode)


def _fill(lines: list[str], slots) -> None:
    """Top-level statements take their numbers as they are."""
    it = iter(slots)
    for i, line in enumerate(lines):
        lines[i] = re.sub(SLOT, lambda m: value_text(next(it)[1]), line)


def _top_name(flat, node, groups, named, want_mode) -> str:
    for g in groups:
        if g.call and _nodes(g.items[-1])[-1] == node:
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
    rows = []
    for lines, node in stmts:
        for line in lines[:-1]:
            rows.append(("  " + line, None))
        rows.append(("  " + lines[-1], "x".join(str(d) for d in flat.shapes[node]) if node else None))
    width = min(max((len(r) for r, s in rows if s), default=0) + 2, 72)
    for r, s in rows:
        out.append(f"{r.ljust(width)}# {s}" if s else r)
    out.append("}")
    return "\n".join(out) + "\n"


def _param_text(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v) if len(v) == 2 else "(" + ", ".join(str(x) for x in v) + ")"
    return value_text(v)
