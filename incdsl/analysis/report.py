"""Text and JSON reports on a checked network: summary table, summary dict, flat expansion."""
from __future__ import annotations

from ..ir.graph import Layer
from ..ops import DEFAULTS, OPS, REQUIRED, Count, applies, describe  # noqa: F401 (describe: report.describe for its importers)
from ..text import attr_text, counts_dict, shape_text, si


def _rf(net, node: str) -> dict:
    f = net.fields[node]
    return {"rf": list(f.size), "rf_stride": list(f.stride)}


def summary_dict(net) -> dict:
    """`incdsl summary --json`: a checked network `net` as a dict of plain JSON values.

    Network name, spec path, parameters (`--set` values), input shape (HWC, batch left out), params
    (total, trainable, non-trainable), MACs and FLOPs (2 x MACs) for one image, the same for
    inference (training-only heads left out), outputs and heads with their shapes and loss weights,
    depth, and per module call and per layer: output shape (NHWC, batch left out), params, MACs,
    whether it is training-only, and the receptive field size and stride in input pixels.
    """
    full, inf = net.total(), net.total(inference=True)
    blocks = net.group_counts()
    return {
        "network": net.name,
        "spec": net.path,
        "set": dict(_plain(net.params)),
        "input": list(net.input_shape),
        "params": counts_dict(full),
        "macs": full.macs,
        "flops": 2 * full.macs,
        "inference": {"params": counts_dict(inf), "macs": inf.macs, "flops": 2 * inf.macs},
        "outputs": {h.name: list(h.shape) for h in net.heads},
        "heads": [{"name": h.name, "node": h.node, "shape": list(h.shape), "train_only": h.train_only,
                   "loss_weight": h.loss_weight} for h in net.heads],
        "depth": net.depth,
        "blocks": [{"name": b.name, "module": b.module, "shape": list(net.shapes[b.output]),
                    "params": counts_dict(blocks.get(b.name, Count())),
                    "macs": blocks.get(b.name, Count()).macs,
                    "train_only": net.is_train_only(b.output),
                    **_rf(net, b.output)} for b in net.graph.blocks],
        "layers": [{"name": n, "op": l.op, "shape": list(net.shapes[n]), "params": net.counts[n].params,
                    "trainable": net.counts[n].trainable, "non_trainable": net.counts[n].non_trainable,
                    "macs": net.counts[n].macs, "inputs": list(l.inputs), "train_only": net.is_train_only(n),
                    **_rf(net, n)}
                   for n, l in net.layers.items()],
    }


def _plain(params: dict):
    for k, v in params.items():
        yield k, (str(v) if isinstance(v, str) else list(v) if isinstance(v, tuple) else v)


# --- the table ----------------------------------------------------------------------------

def summary_table(net, depth: int | None = None, rf: bool = False, columns=(), footer=(),
                  ops: dict | None = None, ops_label: str = "MACs") -> str:
    """The per-layer (or, with `depth`, per-module) table. `rf` adds each row's receptive field and
    effective stride (input pixels); `columns`: extra (header, fn(layer names of the row) -> text)
    columns; `footer`: extra lines; `ops`: per-layer figures for the MACs column under another
    counting convention, headed `ops_label`. Consecutive calls of one module with the same arguments
    fold into one row at `depth` ("block35 x10"; fold_repeats)."""
    block_modules = {b.name: b for b in net.graph.blocks}
    rows: list[list] = []  # [name, op, shape, layer names, training only, the node whose output it shows]
    seen: dict[str, int] = {}
    for name, layer in net.layers.items():
        path = name.split("/")
        train = net.is_train_only(name)
        if depth is not None and len(path) > depth:
            key = "/".join(path[:depth])
            block = block_modules.get(key)
            node = block.output if block else name
            if key in seen:  # a plain group (a branch) shows its last layer's shape
                rows[seen[key]][2] = shape_text(net.shapes[node])
                rows[seen[key]][3].append(name)
                rows[seen[key]][5] = node
            else:
                seen[key] = len(rows)
                rows.append([key, block.module if block else "(group)", shape_text(net.shapes[node]), [name],
                             train, node])
            continue
        if name in seen:  # `mixed = concat {...}`: the folded branches and the concat are one row
            rows[seen[name]][1:4] = [describe(layer), shape_text(net.shapes[name]),
                                     rows[seen[name]][3] + [name]]
            rows[seen[name]][5] = name
            continue
        rows.append([name, describe(layer), shape_text(net.shapes[name]), [name], train, name])
    if depth is not None:
        rows = fold_repeats(rows, set(block_modules), net)
    macs = ops if ops is not None else {n: c.macs for n, c in net.counts.items()}
    full = net.total()
    tot_ops = sum(macs.values()) or 1
    pct = lambda part, whole: f"{part * 100 / whole:.1f}" if whole else "-"
    head = ("layer" if depth is None else "layer / module", "op", "output", "params", "% params", ops_label,
            f"% {ops_label}") + (("RF", "stride") if rf else ()) + tuple(h for h, _ in columns)
    body = []
    for n, o, sh, members, t, node in rows:
        p, m = sum(net.counts[x].params for x in members), sum(macs[x] for x in members)
        field = (shape_text(net.fields[node].size), shape_text(net.fields[node].stride)) if rf else ()
        body.append((n + (" *" if t else ""), o, sh, f"{p:,}", pct(p, full.params), f"{m:,}", pct(m, tot_ops))
                    + field + tuple(fn(members) for _, fn in columns))
    k = len(head)
    widths = [max(len(r[i]) for r in [head] + body) for i in range(k)]
    line = lambda r: "  ".join(
        r[i].ljust(widths[i]) if i < 3 else r[i].rjust(widths[i]) for i in range(k)).rstrip()
    rule = "-" * len(line(tuple("-" * w for w in widths)))
    out = [f"network {net.name}  ({net.path})", rule, line(head), rule] + [line(r) for r in body] + [rule]
    inf = net.total(inference=True)
    out.append(_total_line("total", full))
    if full != inf:
        out.append(_total_line("inference (without * training-only heads)", inf))
    for h in net.heads:
        extra = f", training only, loss weight {h.loss_weight:g}" if h.train_only else ""
        out.append(f"output {h.name}: {shape_text(h.shape)}{extra}")
    if rf:
        out.append("RF: receptive field, stride: effective stride, in input pixels (height x width)")
    return "\n".join(out + list(footer))


def fold_repeats(rows: list[list], blocks: set[str], net=None) -> list[list]:
    """Consecutive calls of one module with the same arguments become one row holding all their
    layers, whatever the calls are named: "NAME xN" for `repeat`'s NAME_1 .. NAME_N, "FIRST..LAST
    xN" otherwise (mixed5..mixed6 x2). Same arguments is read off what the calls built: the same
    layers (named relative to the call) with the same ops, arguments and shapes. A call with other
    arguments (Inception-ResNet's last block8: scale 1.0, no activation) is its own row."""
    import re
    out: list[list] = []
    last_sig = None
    for row in rows:
        prev = out[-1] if out else None
        sig = _call_signature(net, row) if row[0] in blocks else None
        if prev is not None and sig is not None and sig == last_sig and prev[4] == row[4]:
            start, n = prev[6] or (prev[0], 1)  # the first call's name, calls folded so far
            a, b = re.fullmatch(r"(.+)_1", start), re.fullmatch(r"(.+)_(\d+)", row[0])
            label = (
                f"{a.group(1)} x{n + 1}" if a and b and b.group(1) == a.group(1) and int(b.group(2)) == n + 1
                     else f"{start}..{row[0]} x{n + 1}")
            out[-1] = [label, prev[1], prev[2], prev[3] + row[3], prev[4], row[5], (start, n + 1)]
        else:
            out.append(list(row) + [None])
        last_sig = sig
    return [r[:6] for r in out]


def _call_signature(net, row) -> tuple | None:
    """What a module call built, independent of its name: (module, [(layer name relative to the call,
    op, arguments, shape)]); equal for two calls of one module with the same arguments."""
    if net is None:
        return None
    key = row[0] + "/"
    return (row[1], tuple((n[len(key):] if n.startswith(key) else "", net.layers[n].op,
                           tuple(sorted((k, repr(v)) for k, v in net.layers[n].attrs.items())), net.shapes[n])
                          for n in row[3]))


def _total_line(label: str, c: Count) -> str:
    return (f"{label}: {c.params:,} params ({c.trainable:,} trainable, {c.non_trainable:,} non-trainable), "
            f"{c.macs:,} MACs ({si(2 * c.macs)}FLOPs)")


# --- expand -------------------------------------------------------------------------------

def call_text(layer: Layer) -> str:
    """The layer as a canonical call: required arguments, then those that differ from the op's defaults."""
    op = OPS[layer.op]
    args = []
    for arg in op.args:
        v = layer.attrs.get(arg.name)
        if arg.default is REQUIRED:
            args.append(attr_text(v))
        elif arg.name == "stride" and arg.default is None:
            if v != layer.attrs.get("kernel"):
                args.append(f"stride={attr_text(v)}")
        elif v != DEFAULTS[layer.op][arg.name] and applies(layer.attrs, arg.name):
            args.append(f"{arg.name}={attr_text(v)}")
    return f"{layer.op}({', '.join(args)})" if args else layer.op


def expand_text(net) -> str:
    """`incdsl expand`: the flat network as text, one `name = op(args) <- inputs  # shape` line per layer
    (shape HWC, batch left out; `[train]` marks training-only layers), then one line per output.
    """
    lines = [f"# network {net.name}" + "".join(f" {k}={attr_text(v)}" for k, v in net.params.items())]
    width = max(len(n) for n in net.layers)
    for name, layer in net.layers.items():
        src = f" <- {', '.join(layer.inputs)}" if layer.inputs else ""
        train = "  [train]" if net.is_train_only(name) else ""
        lines.append(
            f"{name.ljust(width)} = {call_text(layer)}{src}  # {shape_text(net.shapes[name])}{train}")
    for h in net.heads:
        kind = f"train_output {h.name}(loss_weight={h.loss_weight:g})" if h.train_only else f"output {h.name}"
        lines.append(f"{kind} = {h.node}  # {shape_text(h.shape)}")
    return "\n".join(lines)
