"""`incdsl diff A B`: what changed between two networks, layer by layer and module call by module call.

Alignment: the two layer lists (in network order) are matched by a longest common subsequence on
their structure (op, kernel, stride and output shape; difflib's SequenceMatcher), so a renamed layer
(pool1 / maxpool1) or an inserted one still lines up; in the stretches that do not match, layers
pair by hierarchical name first, then by op and output shape, in order. What is left is added or
removed. A matched pair is "changed" when its name, arguments, shape or counts differ.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..ops import ZERO, Count, applies
from ..text import attr_text, shape_text, signed_text
from .report import describe


@dataclass(frozen=True)
class LayerDiff:
    """One aligned pair of layers: `a` (name in network A) and `b` (in B), None where absent.

    `status` is "same", "changed", "added" (only in B) or "removed" (only in A); `changes` maps what
    differs ("name", "op", an argument, "shape", "counts") to its (in A, in B) values.
    """
    status: str  # same, changed, added, removed
    a: str | None
    b: str | None
    changes: dict = field(default_factory=dict)  # argument (or "name", "shape", "op") -> (in A, in B)


def _key(net, name):
    layer = net.layers[name]
    return (layer.op, layer.attrs.get("kernel"), layer.attrs.get("stride"), net.shapes[name])


def _changes(na, a, nb, b) -> dict:
    la, lb = na.layers[a], nb.layers[b]
    out = {}
    if a != b:
        out["name"] = (a, b)
    if la.op != lb.op:
        out["op"] = (la.op, lb.op)
    for k in dict.fromkeys(list(la.attrs) + list(lb.attrs)):
        va, vb = la.attrs.get(k), lb.attrs.get(k)
        # a bn_* option of a conv without bn: moot
        if va != vb and applies(la.attrs, k) and applies(lb.attrs, k):
            out[k] = (attr_text(va), attr_text(vb))
    if na.shapes[a] != nb.shapes[b]:
        out["shape"] = (shape_text(na.shapes[a]), shape_text(nb.shapes[b]))
    return out


def _pair_gap(na, ga: list[str], nb, gb: list[str]) -> list[tuple[str | None, str | None]]:
    """Pair the layers of one unmatched stretch: same name, then same op and shape, in order."""
    pairs: dict[str, str] = {}
    left_b = [n for n in gb]
    for a in ga:
        if a in left_b:
            pairs[a] = a
            left_b.remove(a)
    for a in ga:
        if a in pairs:
            continue
        for b in left_b:
            if na.layers[a].op == nb.layers[b].op and na.shapes[a] == nb.shapes[b]:
                pairs[a] = b
                left_b.remove(b)
                break
    out: list[tuple[str | None, str | None]] = []
    used = set(pairs.values())
    bi = 0
    for a in ga:  # keep B's order: emit B's unpaired layers before the pair that follows them
        if a in pairs:
            target = gb.index(pairs[a])
            while bi < target:
                if gb[bi] not in used:
                    out.append((None, gb[bi]))
                bi += 1
            out.append((a, pairs[a]))
            bi = max(bi, target + 1)
        else:
            out.append((a, None))
    out += [(None, b) for b in gb[bi:] if b not in used]
    return out


def align(na, nb) -> list[LayerDiff]:
    """Every layer of A and B once, in network order (module docstring says how they pair)."""
    la, lb = list(na.layers), list(nb.layers)
    sm = difflib.SequenceMatcher(None, [_key(na, n) for n in la], [_key(nb, n) for n in lb], autojunk=False)
    pairs: list[tuple[str | None, str | None]] = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            pairs += list(zip(la[i1:i2], lb[j1:j2]))
        else:
            pairs += _pair_gap(na, la[i1:i2], nb, lb[j1:j2])
    out = []
    for a, b in pairs:
        if a is None:
            out.append(LayerDiff("added", None, b))
        elif b is None:
            out.append(LayerDiff("removed", a, None))
        else:
            ch = _changes(na, a, nb, b)
            if na.counts[a] != nb.counts[b]:
                ch.setdefault("counts", ("", ""))
            out.append(LayerDiff("changed" if ch else "same", a, b, ch))
    return out


@dataclass(frozen=True)
class BlockDiff:
    """One module call matched by name between A and B (see `blocks`).

    `status` is "same", "changed", "added" or "removed"; `module_a`/`module_b` are the called module
    names (None where absent); `a` and `b` are its params and MACs (`Count`) in each network.
    """
    status: str
    name: str
    module_a: str | None
    module_b: str | None
    a: Count
    b: Count


def blocks(na, nb) -> list[BlockDiff]:
    """Module calls matched by name (depth 1 and below), in A's order with B's new ones after."""
    ga, gb = na.group_counts(), nb.group_counts()
    ba = {x.name: x for x in na.graph.blocks}
    bb = {x.name: x for x in nb.graph.blocks}
    out = []
    for name in list(ba) + [n for n in bb if n not in ba]:
        x, y = ba.get(name), bb.get(name)
        ca, cb = ga.get(name, ZERO) if x else ZERO, gb.get(name, ZERO) if y else ZERO
        status = "removed" if y is None else "added" if x is None else (
            "same" if ca == cb and x.module == y.module and na.shapes[
                x.output] == nb.shapes[y.output] else "changed")
        out.append(BlockDiff(status, name, x.module if x else None, y.module if y else None, ca, cb))
    return out


# --- outputs -------------------------------------------------------------------------------

def _layer_fields(na, nb, d: LayerDiff) -> dict:
    ca = na.counts[d.a] if d.a else ZERO
    cb = nb.counts[d.b] if d.b else ZERO
    return {"status": d.status, "a": d.a, "b": d.b,
            "op_a": describe(na.layers[d.a]) if d.a else None,
            "op_b": describe(nb.layers[d.b]) if d.b else None,
            "shape_a": list(na.shapes[d.a]) if d.a else None,
            "shape_b": list(nb.shapes[d.b]) if d.b else None,
            "params_a": ca.params, "params_b": cb.params, "macs_a": ca.macs, "macs_b": cb.macs,
            "delta": {"params": cb.params - ca.params, "macs": cb.macs - ca.macs},
            "changes": {k: list(v) for k, v in d.changes.items() if k != "counts"}}


def to_json(na, nb) -> dict:
    """`incdsl diff --json`: the layer and module-call diff of networks `na` and `nb` as a dict.

    Layers (status, names, ops, output shapes NHWC without batch, params, MACs and their delta, what
    changed), module calls, how many layers are same/changed/added/removed, and the totals (params,
    trainable params, MACs, inference params and MACs) of A and B.
    """
    layers = align(na, nb)
    ta, tb = na.total(), nb.total()
    ia, ib = na.total(inference=True), nb.total(inference=True)
    return {
        "a": {"spec": na.path, "network": na.name}, "b": {"spec": nb.path, "network": nb.name},
        "layers": [_layer_fields(na, nb, d) for d in layers],
        "blocks": [{"status": b.status, "name": b.name, "module_a": b.module_a, "module_b": b.module_b,
                    "params_a": b.a.params, "params_b": b.b.params, "macs_a": b.a.macs, "macs_b": b.b.macs}
                   for b in blocks(na, nb)],
        "counts": {s: sum(d.status == s for d in layers) for s in ("same", "changed", "added", "removed")},
        "totals": {"params": [ta.params, tb.params], "trainable": [ta.trainable, tb.trainable],
                   "macs": [ta.macs, tb.macs], "inference_params": [ia.params, ib.params],
                   "inference_macs": [ia.macs, ib.macs]},
    }


def _what(f: dict) -> str:
    ch = f["changes"]
    parts = []
    if "name" in ch:
        parts.append(f"renamed from {ch['name'][0]}")
    parts += [f"{k} {a} -> {b}" for k, (a, b) in ch.items() if k != "name"]
    return ", ".join(parts)


def _rows(data: dict) -> list[list[str]]:
    rows = []
    for f in data["layers"]:
        if f["status"] == "same":
            continue
        mark = {"changed": "~", "added": "+", "removed": "-"}[f["status"]]
        name = f["b"] or f["a"]
        shape = shape_text(f["shape_b"] or f["shape_a"])
        op = f["op_b"] if f["status"] == "added" else f["op_a"] if f["status"] == "removed" else (
            f["op_a"] if f["op_a"] == f["op_b"] else f"{f['op_a']} -> {f['op_b']}")
        rows.append([mark, name, op, shape, signed_text(f["delta"]["params"]),
                     signed_text(f["delta"]["macs"]),
                     _what(f) if f["status"] == "changed" else ""])
    return rows


def _block_rows(data: dict) -> list[list[str]]:
    out = []
    for b in data["blocks"]:
        if b["status"] == "same":
            continue
        mark = {"changed": "~", "added": "+", "removed": "-"}[b["status"]]
        mod = b[
            "module_a"] if b[
                "module_a"] == b["module_b"] else f"{b['module_a'] or '-'} -> {b['module_b'] or '-'}"
        out.append([mark, b["name"], mod, f"{b['params_a']:,} -> {b['params_b']:,}",
                    signed_text(b["params_b"] - b["params_a"]), signed_text(b["macs_b"] - b["macs_a"])])
    return out


def _totals(data: dict) -> list[str]:
    out = []
    for key, label in (("params", "params"), ("trainable", "trainable"), ("macs", "MACs"),
                       ("inference_params", "inference params"), ("inference_macs", "inference MACs")):
        a, b = data["totals"][key]
        pct = f" ({(b - a) * 100 / a:+.1f}%)" if a else ""
        out.append(f"{label}: {a:,} -> {b:,}  {signed_text(b - a)}{pct}")
    return out


LAYER_HEAD = ["", "layer", "op", "output", "Δ params", "Δ MACs", "what changed"]
BLOCK_HEAD = ["", "module call", "module", "params", "Δ params", "Δ MACs"]


def to_text(na, nb) -> str:
    """`incdsl diff`: plain-text tables of the changed/added/removed layers and module calls (deltas in params
    and MACs), then A -> B totals with percent change."""
    data = to_json(na, nb)
    c = data["counts"]
    out = [f"diff {na.path} ({na.name}) -> {nb.path} ({nb.name})",
           f"layers: {len(na.layers)} -> {len(nb.layers)}: {c['changed']} changed, {c['added']} added, "
           f"{c['removed']} removed, {c['same']} the same"]
    for head, rows in ((LAYER_HEAD, _rows(data)), (BLOCK_HEAD, _block_rows(data))):
        if not rows:
            continue
        widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
        right = {"Δ params", "Δ MACs", "params"}
        line = lambda r: "  ".join(x.rjust(w) if h in right else x.ljust(w) for x, w, h in zip(r, widths,
                                                                                               head)).rstrip()
        out += ["", line(head)] + [line(r) for r in rows]
    return "\n".join(out + [""] + _totals(data))


def to_markdown(na, nb) -> str:
    """The tables of `to_text` as GitHub Markdown, with the A -> B totals as a bullet list."""
    data = to_json(na, nb)
    esc = lambda s: s.replace("|", "\\|")
    out = [f"**diff** `{na.path}` ({na.name}) → `{nb.path}` ({nb.name})", ""]
    for title, head, rows in (("layers", LAYER_HEAD, _rows(data)),
                              ("module calls", BLOCK_HEAD, _block_rows(data))):
        if rows:
            out += [f"**{title}**", "", "| " + " | ".join(head) + " |",
                    "|" + "|".join("---" for _ in head) + "|"]
            out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in rows] + [""]
    return "\n".join(out + ["- " + t for t in _totals(data)])
