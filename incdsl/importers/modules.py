"""Folding the imported graph the way a person writes it: `defaults` and modules.

- `hoist_defaults`: for each op, an argument value that a strict majority of its layers share (and
  that is not the op's own default) goes into the network's `defaults`, as TF-slim's arg_scope
  would (specs/README.md, Defaults); the layers then write only what differs.
- `group_items`: the main chain's top-level items grouped by the source's names (a block's output
  name, else what its layers' names share: `mixed5`, `block35_3`, `Mixed_5b`; for a model incdsl
  compiled, the first scope of the IR names); a group holding a branching block is a module call.
- `assign_modules`: calls whose bodies read the same except for channel counts (and scale
  factors) share one module; a count that differs between calls becomes an argument, counts that
  always move together one argument.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ..ops import ALIASES, DEFAULTS, OPS, normalize
from ..ops.groups import CONVS
from .flat import KEYWORDS, Flat
from .render import SLOT, Renderer, value_text
from .structure import Block, Layer

HOIST = {  # op -> arguments worth hoisting (never the ones that make each layer what it is)
    "conv": ("pad", "bias", "bn", "bn_scale", "bn_eps", "bn_momentum", "act"),
    "sepconv": ("pad", "bias", "bn", "bn_scale", "bn_eps", "bn_momentum", "act"),
    "dwconv": ("pad", "bias", "bn", "bn_scale", "bn_eps", "bn_momentum", "act"),
    "maxpool": ("pad", "ceil"),
    "avgpool": ("pad", "ceil", "count_pad"),
}


def hoist_defaults(flat: Flat) -> dict[str, dict]:
    """The `defaults` a person would write, per op: an argument value shared by most of at least three layers
    of that op (as TF-slim's arg_scope)."""
    out: dict[str, dict] = {}
    for op, args in HOIST.items():
        nodes = [n for n in flat.nodes.values() if n.op == op]
        if len(nodes) < 3:
            continue
        for arg in args:
            if arg.startswith("bn_"):
                pool = [n for n in nodes if n.attrs["bn"]]
            elif arg == "pad" and op in CONVS:
                pool = [n for n in nodes if not _pad_free(n)] or nodes
            else:
                pool = nodes
            if not pool:
                continue
            value, count = Counter(_key(n.attrs[arg]) for n in pool).most_common(1)[0]
            value = next(n.attrs[arg] for n in pool if _key(n.attrs[arg]) == value)
            if 2 * count > len(pool) and value != DEFAULTS[op][arg]:
                out.setdefault(op, {})[arg] = value
    # batch-norm arguments of a conv without batch norm change nothing, nor does the padding of a
    # 1x1 conv: give them the defaults in force, so that no line writes them
    for n in flat.nodes.values():
        if n.op in CONVS:
            h = out.get(n.op, {})
            keep = {k: h.get(k, DEFAULTS[n.op][k]) for k in ("bn_scale", "bn_eps",
                                                             "bn_momentum") if not n.attrs["bn"]}
            if _pad_free(n):
                keep["pad"] = h.get("pad", DEFAULTS[n.op]["pad"])
            if keep:
                n.attrs = normalize(OPS[n.op], {**n.attrs, **keep})
    return out


def _pad_free(n) -> bool:
    """A 1x1 kernel reads no neighbours: `same`, `valid` and zero padding give the same output
    (TF's same padding is (ceil(n/s) - 1) * s + 1 - n <= 0 for any stride). A model incdsl compiled
    keeps what its spec wrote (node.want)."""
    pad = n.attrs["pad"]
    zero = pad in ("same", "valid") or (isinstance(pad, tuple) and not any(pad))
    return n.want is None and n.attrs["kernel"] == (1, 1) and zero


def _key(v):
    return (type(v).__name__, v)


def identifier(name: str) -> str | None:
    """The source's name as a spec identifier, or None when it cannot be one (empty, a leading digit, an op,
    an activation word or a keyword)."""
    out = re.sub(r"\W", "_", name).strip("_")
    if not out or out[0].isdigit() or out in OPS or out in ALIASES or out in KEYWORDS:
        return None
    return out


# --- grouping the main chain into module calls ----------------------------------------------

@dataclass
class Group:
    """A run of chain items that becomes one module call (`call`) or stays inline; `key` is its structure, for
    finding repeats."""
    items: list
    key: tuple | None
    call: bool
    name: str | None = None


def nodes_of(item) -> list[str]:
    """Every flat node a chain item covers, the join node last."""
    if isinstance(item, Layer):
        return [item.node]
    out = []
    for br in item.branches:
        for it in br:
            out += nodes_of(it)
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
    nodes = [flat.nodes[n] for n in nodes_of(item)]
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
    """Split the main chain into groups: items that share a name scope (or, in want mode, the IR names a
    compiled model carries) form one call."""
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
    """One module call being written: its group, the body's lines, the argument slots whose values differ
    between calls, and the module it calls."""
    group: Group
    lines: list[str]
    slots: list[tuple[str, object]]
    order: list[str]
    module: str = ""
    args: list = field(default_factory=list)


def render_call(flat, group, defaults, use_names, subst) -> Call:
    """One call's body as text with slots for its channel counts, and its layers in emission order."""
    prefix = group.name if use_names and any(flat.nodes[n].want for n in nodes_of(group.items[0])) else ""
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


