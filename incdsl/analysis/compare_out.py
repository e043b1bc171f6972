"""The outputs of `incdsl compare`: JSON, CSV, text and Markdown tables of measured variants."""
from __future__ import annotations

from ..ops import Count
from ..text import counts_dict, param_text, sets_text, signed_text
from .sweep import BlockRow, Row, pareto

# --- outputs -------------------------------------------------------------------------------

def _plain(v):
    if isinstance(v, bool) or v is None or isinstance(v, (int, float)):
        return v
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return str(v)


def vs_first_basis(rows: list[Row]) -> str:
    """Which counts the "vs first" percentages compare: "inference" when some variant has
    training-only heads (like with like: the heads come and go with `aux`), else "total"."""
    return "inference" if any(r.total != r.inference for r in rows) else "total"


def _vs_first(rows: list[Row], r: Row) -> tuple[Count, Count]:
    if vs_first_basis(rows) == "inference":
        return r.inference, rows[0].inference
    return r.total, rows[0].total


def _pct(new: int, base: int) -> float | None:
    return None if base == 0 else (new - base) * 100 / base


def to_json(rows: list[Row], blocks: list[BlockRow]) -> dict:
    """`incdsl compare --json`: the measured variants `rows` and per-block `blocks` as a dict.

    Each row: label, spec, network, `--set` values, params (total, trainable, non-trainable), MACs,
    inference params and MACs (training-only heads left out), output shapes (NHWC, batch left out),
    depth, whether it is on the params/MACs Pareto front, and its change against the first row in
    percent (on inference counts when some variant has training-only heads, see `vs_first_basis`).
    Each block: per variant whether the module call is present, its params and MACs and the delta.
    """
    front = set(pareto(rows))
    basis = vs_first_basis(rows)
    return {
        "rows": [{"label": r.label, "spec": r.spec, "network": r.network,
                  "set": {k: _plain(v) for k, v in r.sets.items()},
                  "params": counts_dict(r.total), "macs": r.total.macs,
                  "inference": {"params": counts_dict(r.inference), "macs": r.inference.macs},
                  "outputs": {k: list(s) for k, s in r.outputs.items()},
                  "train_only": r.train_only, "depth": r.depth, "pareto": i in front,
                  "vs_first": {"counts": basis, "params_pct": _pct(p.params, bp.params),
                               "macs_pct": _pct(p.macs, bp.macs)}}
                 for i, r in enumerate(rows) for p, bp in [_vs_first(rows, r)]],
        "blocks": [{"name": b.name, "module": b.module, "variants": [
            {"label": r.label, "present": c is not None, "block": c.name if c else None,
             "params": counts_dict(c.count) if c else None, "macs": c.count.macs if c else None,
             "train_only": c.train_only if c else None,
             "delta": {"params": d.params, "macs": d.macs}}
            for i, (r, c) in enumerate(zip(rows, b.cells)) for d in [b.delta(i)]]} for b in blocks],
    }


ROW_FIELDS = ("label", "spec", "network", "params_total", "params_trainable", "params_non_trainable", "macs",
              "inference_params_total", "inference_params_trainable", "inference_params_non_trainable",
              "inference_macs", "depth", "outputs")
# the "vs first" columns name their basis: params_vs_first_pct or inference_params_vs_first_pct
BLOCK_FIELDS = ("block", "module", "label", "present", "params_total", "params_trainable",
                "params_non_trainable", "macs", "delta_params", "delta_macs", "train_only")


def write_csv(rows: list[Row], blocks: list[BlockRow] | None, stream) -> None:
    """The variant rows (one column per parameter set, `set.NAME`), or with `blocks`, the per-block
    comparison in long form (one line per block and variant)."""
    import csv
    w = csv.writer(stream, lineterminator="\n")
    if blocks is not None:
        w.writerow(BLOCK_FIELDS)
        for b in blocks:
            for i, (r, c) in enumerate(zip(rows, b.cells)):
                d = b.delta(i)
                if c is None:
                    w.writerow([b.name, b.module or "", r.label, 0, "", "", "", "", d.params, d.macs, ""])
                else:
                    w.writerow([b.name, b.module or "", r.label, 1, c.count.params, c.count.trainable,
                                c.count.non_trainable, c.count.macs, d.params, d.macs, int(c.train_only)])
        return
    keys = _set_keys(rows)
    pre = "inference_" if vs_first_basis(rows) == "inference" else ""
    w.writerow(ROW_FIELDS[:3] + tuple(f"set.{k}" for k in keys) + ROW_FIELDS[3:]
               + (f"{pre}params_vs_first_pct", f"{pre}macs_vs_first_pct"))
    for r in rows:
        p, bp = _vs_first(rows, r)
        pcts = ["" if x is None else f"{x:.6g}" for x in (_pct(p.params, bp.params), _pct(p.macs, bp.macs))]
        w.writerow([r.label, r.spec, r.network] + [param_text(r.sets[k]) if k in r.sets else "" for k in keys]
                   + [r.total.params, r.total.trainable, r.total.non_trainable, r.total.macs,
                      r.inference.params, r.inference.trainable, r.inference.non_trainable, r.inference.macs,
                      r.depth, _outputs_text(r)] + pcts)


def _set_keys(rows: list[Row]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r.sets if k not in keys]
    return keys


def _outputs_text(r: Row) -> str:
    return "; ".join(f"{k} {'x'.join(map(str, s))}" + (" (train)" if k in r.train_only else "")
                     for k, s in r.outputs.items())


def pct_text(new: int, base: int) -> str:
    """'+12.5%', '-0.034%' (small changes keep two significant digits), '=' or 'new'."""
    if base == 0:
        return "new" if new else "="
    if new == base:
        return "="
    pct = (new - base) * 100 / base
    return f"{pct:+.1f}%" if abs(pct) >= 1 else f"{pct:+.2g}%"


def _tables(rows: list[Row],
            blocks: list[BlockRow] | None) -> list[tuple[str | None, list[str], list[list[str]], str]]:
    """(title, header, body, alignment) for each table; text and markdown render the same tables."""
    base = rows[0]
    show_spec = len({r.spec for r in rows}) > 1
    show_out = len({_outputs_text(r) for r in rows}) > 1
    has_train = any(r.total != r.inference for r in rows)
    # a `set` column when labels do not already say what each variant sets (named variants)
    show_set = any(sets_text(r.sets).replace(",", "") not in r.label for r in rows)
    head = ["variant"] + (["spec"] if show_spec else []) + (["set"] if show_set else []) + ["params",
                                                                                            "trainable",
                                                                                            "MACs"]
    if has_train:
        head += ["inference params", "inference MACs"]
    pre = "inference " if has_train else ""  # the label says which params the percentage compares
    head += ["depth", f"{pre}params vs first", f"{pre}MACs vs first"] + (["outputs"] if show_out else [])
    body = []
    for r in rows:
        line = [r.label] + ([r.spec] if show_spec else []) + ([sets_text(r.sets)] if show_set else []) + [
            f"{r.total.params:,}", f"{r.total.trainable:,}", f"{r.total.macs:,}"]
        if has_train:
            line += [f"{r.inference.params:,}", f"{r.inference.macs:,}"]
        # compare like with like: inference figures when some variant has training-only heads
        p, bp = _vs_first(rows, r)
        line += [str(r.depth), pct_text(p.params, bp.params), pct_text(p.macs, bp.macs)]
        if show_out:
            line.append(_outputs_text(r))
        body.append(line)
    align = "l" * (
        1 + show_spec + show_set) + "r" * (len(head) - 1 - show_spec - show_set - show_out) + "l" * show_out
    tables = [(None, head, body, align)]
    if blocks is None:
        return tables
    for what, get in (("params", lambda c: c.params), ("MACs", lambda c: c.macs)):
        head = ["block", "module", rows[0].label] + [x for r in rows[1:] for x in (r.label, "Δ")]
        body = []
        for b in blocks:
            line = [b.name + (" *" if any(c and c.train_only for c in b.cells) else ""), b.module or ""]
            for i, c in enumerate(b.cells):
                line.append(f"{get(c.count):,}" if c else "—")
                if i:
                    line.append(signed_text(get(b.delta(i))))
            body.append(line)
        tot = ["total", ""]
        for i, r in enumerate(rows):
            tot.append(f"{get(r.total):,}")
            if i:
                tot.append(signed_text(get(r.total) - get(base.total)))
        body.append(tot)
        tables.append((f"per-block {what} (Δ against '{base.label}'; — = block absent, * = training only)",
                       head, body, "ll" + "r" * (len(head) - 2)))
    return tables


def to_text(rows: list[Row], blocks: list[BlockRow] | None) -> str:
    """`incdsl compare` as plain-text tables: one row per variant (params, MACs, depth, % vs the first),
    then, given `blocks`, the per-block params and MACs deltas; a footer names the shared outputs and spec.
    """
    out = []
    for title, head, body, align in _tables(rows, blocks):
        widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
        line = lambda cells: "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                                       for c, w, a in zip(cells, widths, align)).rstrip()
        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        if title:
            out += ["", title]
        out += [rule, line(head), rule] + [line(x) for x in body] + [rule]
    out += _footer(rows)
    return "\n".join(out)


def to_markdown(rows: list[Row], blocks: list[BlockRow] | None) -> str:
    """The tables of `to_text` as GitHub Markdown (pipes escaped, numbers right-aligned), with the same
    footer."""
    out = []
    for title, head, body, align in _tables(rows, blocks):
        if title:
            out += ["", f"**{title}**", ""]
        esc = lambda s: s.replace("|", "\\|")
        out.append("| " + " | ".join(esc(h) for h in head) + " |")
        out.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
        out += ["| " + " | ".join(esc(c) for c in x) + " |" for x in body]
    foot = _footer(rows)
    if foot:
        out += [""] + foot
    return "\n".join(out)


def _footer(rows: list[Row]) -> list[str]:
    out = []
    if len({_outputs_text(r) for r in rows}) == 1:
        out.append(f"outputs: {_outputs_text(rows[0])}")
    if len({r.spec for r in rows}) == 1:
        out.append(f"spec: {rows[0].spec}")
    return out
