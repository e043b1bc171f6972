"""Drawing a network: Graphviz DOT text written by our own code; SVG and PNG through the `dot` program.

The drawing follows the IR, never recomputes it: shapes come from `net.shapes`, totals from
`net.group_counts()`, module calls from `net.graph.blocks`, training-only parts from
`net.is_train_only`.

- every module call is a cluster titled with its name, module, params and MACs; nested calls nest;
- with `depth=N`, a module call whose name has N or more parts ("mixed7" has one, "mixed7/b_1"
  two) is drawn as one box with its totals and output shape;
- a node shows its op compactly (`conv 3x3/2 valid`) and its output shape; edges carry the shape of
  the tensor they carry; training-only heads are dashed;
- the branches of a concat (or add) are laid out left to right in input order: their first layers
  share a rank and are chained by invisible edges, which Graphviz keeps left to right.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError
from ..io import atomic_path, inputs_of
from ..ops import Count, describe
from ..ops.groups import WEIGHTED
from ..text import attr_text, shape_text
from .dot_labels import (  # noqa: F401
    BOX_COLOUR,
    CLUSTER_COLOURS,
    FAMILIES,
    FAMILY_COLOURS,
    FONT,
    TRAIN_COLOUR,
    attr_list,
    attr_statements,
    given_name,
    html_label,
    op_text,
    quoted,
    si,
)
from .graphviz import find_dot, render  # noqa: F401 (find_dot: dot.find_dot for its callers)

FORMATS = ("dot", "svg", "png")
TITLE = ":title"  # suffix of the node that titles a module call's cluster

# --- what is drawn ----------------------------------------------------------------------------

@dataclass
class _Cluster:
    name: str | None                       # the module call, None for the top level
    items: list["str | _Cluster"] = field(default_factory=list)  # node ids and nested calls, in layer order


class _Plan:
    """Which module calls are clusters and which are collapsed into one box, and where each layer goes."""

    def __init__(self, net, depth: int | None, only: str | None):
        self.net = net
        self.blocks = {b.name: b for b in net.graph.blocks}
        if only is not None and only not in self.blocks:
            known = ", ".join(self.blocks) or "none"
            raise OptionError("{only} {name}: no module call of that name (module calls: {known})", name=only,
                              known=known)
        self.only = only
        self.depth = depth
        self.groups = net.group_counts()
        self.box_of: dict[str, str] = {}   # layer -> collapsed module call that hides it
        for name in net.layers:
            box = self._collapsed(name, depth)
            if box is not None:
                self.box_of[name] = box
        self.boxes = set(self.box_of.values())

    def calls(self, name: str) -> list[str]:
        """Module calls containing `name`, outermost first."""
        parts = name.split("/")
        return [p for p in ("/".join(parts[:k]) for k in range(1, len(parts))) if p in self.blocks]

    def _collapsed(self, layer: str, depth: int | None) -> str | None:
        if depth is None:
            return None
        for block in self.calls(layer):
            if len(block.split("/")) >= depth and block != self.only:
                return block
        return None

    def node_id(self, layer: str) -> str:
        return self.box_of.get(layer, layer)

    def parent(self, node_id: str) -> str | None:
        """The innermost module call drawn as a cluster around this node (a layer, a box or a
        cluster); None at the top level. A drawn node is never inside a box, so that is the
        innermost module call containing it (clipped to the `only` call when there is one)."""
        inside = self.calls(node_id)
        if self.only is not None:
            inside = [b for b in inside if (b + "/").startswith(self.only + "/")]
        return inside[-1] if inside else None

    def visible(self, layer: str) -> bool:
        return self.only is None or layer.startswith(self.only + "/")

    def block_count(self, block: str) -> Count:
        return self.groups.get(block, Count())

    def train_only(self, node_id: str) -> bool:
        b = self.blocks[node_id] if node_id in self.boxes else None
        return self.net.is_train_only(b.output if b else node_id)


# --- DOT --------------------------------------------------------------------------------------

def to_dot(net, depth: int | None = None, only: str | None = None, rankdir: str = "TB") -> str:
    """The network as DOT text. `depth`: collapse module calls at that nesting depth or deeper
    into one box each; `only`: draw just that module call (its external inputs become stubs)."""
    if depth is not None and depth < 1:
        raise OptionError("{depth} must be at least 1")
    plan = _Plan(net, depth, only)
    layers = [n for n in net.layers if plan.visible(n)]

    # Place every visible node (layer or collapsed box) in its cluster, in layer order.
    clusters: dict[str | None, _Cluster] = {None: _Cluster(None)}

    def cluster(name: str | None) -> _Cluster:
        if name not in clusters:
            c = clusters[name] = _Cluster(name)
            cluster(plan.parent(name)).items.append(c)
        return clusters[name]

    drawn: set[str] = set()
    for layer in layers:
        nid = plan.node_id(layer)
        if nid not in drawn:
            drawn.add(nid)
            cluster(plan.parent(nid)).items.append(nid)

    # Branches of each concat/add side by side: their first drawn nodes share a rank, chained in input
    # order by invisible edges. newrank=true lets a rank be shared across clusters (a branch may start
    # inside a nested module call).
    same_rank: list[list[str]] = []
    for layer in layers:
        lay = net.layers[layer]
        if lay.op not in ("concat", "add", "multiply") or len(lay.inputs) < 2 or layer in plan.box_of:
            continue
        firsts = [_branch_head(net, plan, layer, src) for src in lay.inputs]
        firsts = [f for f in firsts if f is not None]
        if len(firsts) >= 2 and len(set(firsts)) == len(firsts):
            same_rank.append(firsts)

    out = [f"digraph {quoted(net.name)} {{"]
    title = _network_title(net, depth, only)
    out.append("  graph " + attr_list(rankdir=rankdir, fontname=FONT, fontsize="16", label=title,
                                      labelloc="t",
                                   newrank="true", nodesep="0.25", ranksep="0.35", ordering="out",
                                   tooltip=net.name) + ";")
    out.append("  node " + attr_list(shape="box", style="rounded,filled", fontname=FONT, fontsize="11",
                                  margin="0.10,0.04", height="0.3", penwidth="0.8") + ";")
    out.append("  edge " + attr_list(fontname=FONT, fontsize="8", fontcolor="#666666", color="#555555",
                                  arrowsize="0.6", penwidth="0.8") + ";")

    # Shapes appear once: on the edges that carry them, and on a node only when no edge leaves it.
    feeding = {
        plan.node_id(i) for n in layers for i in net.layers[n].inputs if plan.node_id(i) != plan.node_id(n)}
    if only is not None:
        feeding.add(plan.node_id(plan.blocks[only].output))
    titles: dict[str, list[str]] = {}  # first node of a module call -> the titles left of it, outermost first
    mid_row = {i for ids in same_rank for i in ids[1:]}

    def emit(c: _Cluster, indent: str, level: int) -> None:
        for child in c.items:
            if isinstance(child, str):
                out.append(indent + _node(net, plan, child, child not in feeding))
                continue
            b = plan.blocks[child.name]
            cnt = plan.block_count(child.name)
            train = plan.train_only(b.output)
            label = html_label([("b", f"{child.name.rsplit('/', 1)[-1]}: {b.module}"),
                           ("small", f"{si(cnt.params)} params · {si(cnt.macs)} MACs")])
            heads = _entries(net, plan, child.name, layers)
            # The title is a node inside the cluster, left of the first layer its inputs enter:
            # Graphviz routes edges around nodes, but straight through a cluster's own label. A call
            # that starts mid-row (a nested call in a later branch) keeps a plain label: Graphviz
            # does not keep a row's order when a title node joins it there.
            as_node = bool(heads) and heads[0] not in mid_row
            out.append(f"{indent}subgraph {quoted('cluster_' + child.name)} {{")
            out.append(indent + "  " + attr_statements(
                label="" if as_node else label, labeljust="l", tooltip=_block_tooltip(net, plan, child.name),
                style="rounded,filled" + (",dashed" if train else ""),
                fillcolor=CLUSTER_COLOURS[level % len(CLUSTER_COLOURS)],
                color=TRAIN_COLOUR if train else "#7f95b5", fontname=FONT, fontsize="11"))
            if as_node:
                title = child.name + TITLE
                out.append(indent + "  " + quoted(title) + " " + attr_list(
                    label=label, shape="plaintext", style="", margin="0.02",
                    tooltip=_block_tooltip(net, plan, child.name)))
                titles.setdefault(heads[0], []).append(title)
            emit(child, indent + "  ", level + 1)
            out.append(indent + "}")

    emit(clusters[None], "  ", 0)
    for ids in same_rank:
        # one short edge per line: Graphviz's parser fails on a chain of thousands of `->` in one
        # statement ("syntax error in line 3007" for a 3,000-branch concat)
        out.append("  { rank=same;")
        out += [f"    {quoted(a)} -> {quoted(b)} [style=invis];" for a, b in zip(ids, ids[1:])]
        out.append("  }")
    for head, names in titles.items():  # a title on the row of its first layer, wherever it fits
        out.append("  { rank=same; " + "; ".join(quoted(i) for i in names + [head]) + "; }")

    # One edge per layer input (external inputs of an `only` call come from stub nodes).
    edges: list[str] = []
    seen: set[tuple[str, str]] = set()
    for layer in layers:
        dst = plan.node_id(layer)
        for port, src_layer in enumerate(net.layers[layer].inputs):
            src = plan.node_id(src_layer)
            if src == dst:
                continue  # inside one collapsed box
            if src not in drawn:
                drawn.add(src)
                out.append("  " + quoted(src) + " " + attr_list(
                    label=f"from {_top(plan, src_layer)}", shape="plaintext",  # its shape is on the edges
                    style="", fontsize="10"))
            if dst != layer and (src, dst) in seen:
                continue  # one edge per producer into a box, however many layers inside use it
            seen.add((src, dst))
            train = net.is_train_only(layer)
            several = len(net.layers[layer].inputs) > 1
            edges.append(f"  {quoted(src)} -> {quoted(dst)} " + attr_list(
                label=shape_text(net.shapes[src_layer]), style="dashed" if train else None,
                color=TRAIN_COLOUR if train else None,
                tooltip=f"{src_layer} -> {layer}: {shape_text(net.shapes[src_layer])}" + (
                    f" (input {port + 1})" if several else "")))
    if only is not None:  # where the focused call's output goes
        b = plan.blocks[only]
        users = [n for n, lay in net.layers.items() if b.output in lay.inputs and not plan.visible(n)]
        users = list(dict.fromkeys(_top(plan, n) for n in users)) or ["output"]
        out.append("  " + quoted(only + ":out") + " " + attr_list(label="to " + ", ".join(users),
                                                          shape="plaintext", style="", fontsize="10"))
        edges.append(f"  {quoted(plan.node_id(b.output))} -> {quoted(only + ':out')} "
                     + attr_list(label=shape_text(net.shapes[b.output])))
    out += edges
    out.append("}")
    return "\n".join(out) + "\n"


def _top(plan: _Plan, layer: str) -> str:
    """The outermost module call holding `layer`, or the layer itself."""
    calls = plan.calls(layer)
    return calls[0] if calls else layer


def _entries(net, plan: _Plan, call: str, layers: list[str]) -> list[str]:
    """The drawn nodes inside module call `call` that take an input from outside it."""
    inside = call + "/"
    out = []
    for name in layers:
        if name.startswith(inside) and any(not i.startswith(inside) for i in net.layers[name].inputs):
            nid = plan.node_id(name)
            if nid not in out:
                out.append(nid)
    return out


def _branch_head(net, plan: _Plan, merge: str, src: str) -> str | None:
    """The first drawn node of the branch of `merge` that ends in `src`, or None (an identity
    branch, or one whose layers are not drawn on their own)."""
    # Branch scopes are "<scope>/bN" where scope is the merge's own name when it was named, else its parent.
    for base in (merge, merge.rsplit("/", 1)[0] if "/" in merge else ""):
        prefix = (base + "/") if base else ""
        if src.startswith(prefix) and re.fullmatch(r"b\d+", src[len(prefix):].split("/", 1)[0]):
            branch = prefix + src[len(prefix):].split("/", 1)[0] + "/"
            for name in net.layers:  # layer order is topological: the first one is the branch's head
                if name.startswith(branch):
                    return plan.node_id(name)
    return None


def _node(net, plan: _Plan, nid: str, sink: bool) -> str:
    if nid in plan.boxes:
        b = plan.blocks[nid]
        c = plan.block_count(nid)
        train = plan.train_only(nid)
        label = html_label([("b", nid.rsplit("/", 1)[-1]), ("", b.module),
                            ("small", f"{si(c.params)} params · {si(c.macs)} MACs"),
                       ("", shape_text(net.shapes[b.output]) if sink else "")])
        return quoted(nid) + " " + attr_list(label=label, fillcolor=BOX_COLOUR, shape="box",
                                      style="filled" + (",dashed" if train else ""), penwidth="1.2",
                                      color=TRAIN_COLOUR if train else "#34558b",
                                      tooltip=_block_tooltip(net, plan, nid))
    layer = net.layers[nid]
    train = net.is_train_only(nid)
    lines = []
    given = given_name(nid)
    if given:
        lines.append(("small", given))
    lines.append(("b" if layer.op in WEIGHTED else "", op_text(layer)))
    if sink:
        lines.append(("", shape_text(net.shapes[nid])))
    c = net.counts[nid]
    if plan.depth is not None and (c.params or c.macs):  # folded drawings: every node says what it costs
        lines.append(("small", f"{si(c.params)} params · {si(c.macs)} MACs"))
    tip = [nid, describe(layer), f"output {shape_text(net.shapes[nid])}"]
    if c.params or c.macs:
        tip.append(f"params {c.params:,} · MACs {c.macs:,}")
    if layer.span is not None:
        tip.append(str(layer.span))
    if train:
        tip.append("training only")
    fill = FAMILY_COLOURS[FAMILIES.get(layer.op, "other")]
    return quoted(nid) + " " + attr_list(label=html_label(lines), fillcolor=fill,
                                  style="rounded,filled" + (",dashed" if train else ""),
                                  color=TRAIN_COLOUR if train else None, tooltip="\n".join(tip))


def _block_tooltip(net, plan: _Plan, name: str) -> str:
    b = plan.blocks[name]
    c = plan.block_count(name)
    lines = [f"{name}: {b.module} ({b.span})",
             f"params {c.params:,} (trainable {c.trainable:,}, non-trainable {c.non_trainable:,})",
             f"MACs {c.macs:,}", f"output {shape_text(net.shapes[b.output])}"]
    if plan.train_only(b.output):
        lines.append("training only")
    return "\n".join(lines)


def _network_title(net, depth, only) -> str:
    t = net.total(inference=True)
    sets = "  ".join(f"{k}={attr_text(v)}" for k, v in net.params.items())
    what = f"{net.name}" + (f" / {only}" if only else "") + (f"  (depth {depth})" if depth else "")
    return html_label([("b", what), ("small", sets),
                  ("small", f"inference: {t.params:,} params · {t.macs:,} MACs")])


# --- rendering --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Drawing:
    """What `export` wrote: the file's `path`, its format (dot, svg or png) and its size in bytes."""
    path: Path
    format: str
    size: int


def drawing(net, fmt_: str = "dot", depth: int | None = None, only: str | None = None) -> bytes:
    """The drawing of `net` (a checked `Network`) as bytes: DOT text, or SVG/PNG laid out by
    Graphviz. Options as `export`'s. Raises `OptionError` for another format and what `to_dot` and
    `render` raise."""
    if fmt_ not in FORMATS:
        raise OptionError("{fmt} must be one of {names}, got {value}", words={"fmt": "format"},
                          names=", ".join(FORMATS), value=fmt_)
    if fmt_ != "dot":
        find_dot()  # fail before doing any work
    text = to_dot(net, depth=depth, only=only)
    return text.encode() if fmt_ == "dot" else render(text, fmt_)


def export(net, path: str | Path, *, fmt: str | None = None, depth: int | None = None,
           only: str | None = None) -> Drawing:
    """Draw `net` (a checked `Network`) with Graphviz into the file `path` and return what was written.

    Options:
    - `fmt` (default None: the path's suffix): "dot" (DOT text, no Graphviz needed), "svg" or "png"
      (laid out by Graphviz' `dot` program, PNG at 96 dpi).
    - `depth` (default None: every layer): module calls at that nesting depth (1 = the network's own
      calls) or deeper are drawn folded, one box each with their params and MACs.
    - `only` (default None: the whole network): the name of one module call (e.g. "inception3a") to
      draw alone; its inputs from outside become stubs.

    The file is written atomically (a failure leaves nothing behind). Raises `OptionError` for a
    format other than dot/svg/png, a depth below 1 or an unknown module call; `UsageError` when
    Graphviz is needed and missing or fails, or the path cannot be written or is one of the
    network's spec files (`io.check_output`)."""
    path = Path(path)
    fmt_ = fmt if fmt is not None else path.suffix.lstrip(".").lower()
    data = drawing(net, fmt_, depth, only)
    with atomic_path(path, inputs=inputs_of(net)) as tmp:
        tmp.write_bytes(data)
    return Drawing(path, fmt_, len(data))
