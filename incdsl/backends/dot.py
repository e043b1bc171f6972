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

import html
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from ..errors import UsageError
from ..io import atomic_path
from ..ops import ALIASES, OPS, Count
from ..passes.shapes import fmt
from ..report import _value, describe

FORMATS = ("dot", "svg", "png")
FONT = "Helvetica"

# Fill colours per op family (light, so black text stays readable; the families a reader scans for).
FAMILY_COLOURS = {
    "conv": "#cfe2f3",    # conv, dwconv, sepconv
    "pool": "#fde3c3",    # maxpool, avgpool, adaptive_avgpool, gap, gmp
    "dense": "#d5ecd0",
    "merge": "#fff2a8",   # concat, add, scale
    "norm": "#e6d8f0",    # bn, lrn
    "io": "#d9d9d9",      # input
    "other": "#ffffff",   # dropout, flatten, act, zeropad
}
FAMILIES = {
    "conv": "conv", "dwconv": "conv", "sepconv": "conv",
    "maxpool": "pool", "avgpool": "pool", "adaptive_avgpool": "pool", "gap": "pool", "gmp": "pool",
    "dense": "dense", "concat": "merge", "add": "merge", "multiply": "merge", "scale": "merge",
    "bn": "norm", "lrn": "norm", "input": "io",
}
BOX_COLOUR = "#b7cbe8"                                  # a collapsed module call
CLUSTER_COLOURS = ("#f3f6fb", "#e8eef7", "#dde6f2")     # by nesting level, so nested calls stand out
TRAIN_COLOUR = "#8a8a8a"


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
            raise UsageError(f"--only {only}: no module call of that name (module calls: {known})")
        self.only = only
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


# --- labels -----------------------------------------------------------------------------------

def si(n: int) -> str:
    """163696 -> '164K', 1591044096 -> '1.59G': three significant figures, for labels."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.3g}{unit}" if v < 1000 else f"{v:.0f}{unit}"
    return str(n)


def op_text(layer) -> str:
    """The op, compactly: 'conv 3x3/2 valid', 'maxpool 3x3/2 ceil', 'dense softmax', 'concat'.
    Batch norm and relu are left out (nearly every conv has them; the tooltip has everything)."""
    a, op = layer.attrs, layer.op
    parts = [a["fn"] if op == "act" else op]
    if "kernel" in a:
        k, s = a["kernel"], a.get("stride") or (1, 1)
        parts.append(_size(k) + ("" if s == (1, 1) else f"/{s[0] if s[0] == s[1] else _size(s)}"))
    if op == "adaptive_avgpool":
        parts.append(_size(a["size"]))
    pad = OPS[op].arg("pad")
    if pad is not None and a["pad"] != pad.default:
        p = a["pad"]
        parts.append(p if isinstance(p, str) else f"pad {p[0]}" if len(set(p)) == 1 else "pad " + ",".join(map(str, p)))
    if a.get("dilation", (1, 1)) != (1, 1):
        parts.append(f"dil {_size(a['dilation'])}")
    if a.get("ceil"):
        parts.append("ceil")
    if op in ("dropout", "drop_path"):
        parts.append(f"{a['rate']:g}")
    if a.get("groups", 1) != 1:
        parts.append(f"g{a['groups']}" if op == "conv" else str(a["groups"]))
    if op == "act" and a.get("slope") is not None:
        parts.append(f"{a['slope']:g}")
    if op == "scale":
        parts.append(f"×{a['factor']:g}")
    if op == "lrn":
        parts.append(str(a["size"]))
    if op == "dense":
        parts.append(str(a["units"]))
    if a.get("act") not in (None, "relu") and op != "act":
        parts.append(a["act"])
    return " ".join(parts)


def _size(v) -> str:
    return f"{v[0]}x{v[1]}"


def _given_name(name: str) -> str | None:
    """The layer's own name when the spec gave one (`conv1`), None for generated ones (`conv_2`, `b3`)."""
    last = name.rsplit("/", 1)[-1]
    m = re.fullmatch(r"(.+)_\d+", last)
    if (m and (m.group(1) in OPS or m.group(1) in ALIASES)) or last in OPS:
        return None
    return last


def _html(lines: list[tuple[str, str]]) -> str:
    """An HTML-like label from (style, text) lines; style is 'b' (bold), 'small' or ''."""
    out = []
    for style, text in lines:
        if not text:
            continue  # Graphviz rejects an empty <font></font>
        t = html.escape(text)
        if style == "b":
            t = f"<b>{t}</b>"
        elif style == "small":
            t = f'<font point-size="9" color="#555555">{t}</font>'
        out.append(t)
    return "<" + "<br/>".join(out) + ">"


def _q(s: str) -> str:
    """A DOT quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _pairs(kw: dict) -> list[str]:
    """`key="value"` items, HTML-like labels (`<...>`) unquoted; None values left out."""
    return [f"{k}={v}" if isinstance(v, str) and v.startswith("<") else f"{k}={_q(str(v))}"
            for k, v in kw.items() if v is not None]


def _attrs(**kw) -> str:
    """An attribute list, for a node or an edge."""
    return "[" + ", ".join(_pairs(kw)) + "]"


def _stmts(**kw) -> str:
    """Attribute statements, for a cluster (so that parsers see them as the cluster's own)."""
    return " ".join(p + ";" for p in _pairs(kw))


# --- DOT --------------------------------------------------------------------------------------

def to_dot(net, depth: int | None = None, only: str | None = None, rankdir: str = "TB") -> str:
    """The network as DOT text. `depth`: collapse module calls at that nesting depth or deeper
    into one box each; `only`: draw just that module call (its external inputs become stubs)."""
    if depth is not None and depth < 1:
        raise UsageError("--depth must be at least 1")
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

    out = [f"digraph {_q(net.name)} {{"]
    title = _network_title(net, depth, only)
    out.append("  graph " + _attrs(rankdir=rankdir, fontname=FONT, fontsize="16", label=title, labelloc="t",
                                   newrank="true", nodesep="0.25", ranksep="0.35", tooltip=net.name) + ";")
    out.append("  node " + _attrs(shape="box", style="rounded,filled", fontname=FONT, fontsize="11",
                                  margin="0.10,0.04", height="0.3", penwidth="0.8") + ";")
    out.append("  edge " + _attrs(fontname=FONT, fontsize="8", fontcolor="#666666", color="#555555",
                                  arrowsize="0.6", penwidth="0.8") + ";")

    def emit(c: _Cluster, indent: str, level: int) -> None:
        for child in c.items:
            if isinstance(child, str):
                out.append(indent + _node(net, plan, child))
                continue
            b = plan.blocks[child.name]
            cnt = plan.block_count(child.name)
            train = plan.train_only(b.output)
            label = _html([("b", f"{child.name.rsplit('/', 1)[-1]}: {b.module}"),
                           ("small", f"{si(cnt.params)} params · {si(cnt.macs)} MACs")])
            out.append(f"{indent}subgraph {_q('cluster_' + child.name)} {{")
            out.append(indent + "  " + _stmts(
                label=label, tooltip=_block_tooltip(net, plan, child.name), labeljust="l",
                style="rounded,filled" + (",dashed" if train else ""),
                fillcolor=CLUSTER_COLOURS[level % len(CLUSTER_COLOURS)],
                color=TRAIN_COLOUR if train else "#7f95b5", fontname=FONT, fontsize="11"))
            emit(child, indent + "  ", level + 1)
            out.append(indent + "}")

    emit(clusters[None], "  ", 0)
    for ids in same_rank:
        out.append("  { rank=same; " + " -> ".join(_q(i) for i in ids) + " [style=invis]; }")

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
                out.append("  " + _q(src) + " " + _attrs(
                    label=f"from {_top(plan, src_layer)}\n{fmt(net.shapes[src_layer])}", shape="plaintext",
                    style="", fontsize="10"))
            if dst != layer and (src, dst) in seen:
                continue  # one edge per producer into a box, however many layers inside use it
            seen.add((src, dst))
            train = net.is_train_only(layer)
            several = len(net.layers[layer].inputs) > 1
            edges.append(f"  {_q(src)} -> {_q(dst)} " + _attrs(
                label=fmt(net.shapes[src_layer]), style="dashed" if train else None,
                color=TRAIN_COLOUR if train else None,
                tooltip=f"{src_layer} -> {layer}" + (f" (input {port + 1})" if several else "")))
    if only is not None:  # where the focused call's output goes
        b = plan.blocks[only]
        users = [n for n, lay in net.layers.items() if b.output in lay.inputs and not plan.visible(n)]
        users = list(dict.fromkeys(_top(plan, n) for n in users)) or ["output"]
        out.append("  " + _q(only + ":out") + " " + _attrs(label="to " + ", ".join(users),
                                                          shape="plaintext", style="", fontsize="10"))
        edges.append(f"  {_q(plan.node_id(b.output))} -> {_q(only + ':out')} "
                     + _attrs(label=fmt(net.shapes[b.output])))
    out += edges
    out.append("}")
    return "\n".join(out) + "\n"


def _top(plan: _Plan, layer: str) -> str:
    """The outermost module call holding `layer`, or the layer itself."""
    calls = plan.calls(layer)
    return calls[0] if calls else layer


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


def _node(net, plan: _Plan, nid: str) -> str:
    if nid in plan.boxes:
        b = plan.blocks[nid]
        c = plan.block_count(nid)
        train = plan.train_only(nid)
        label = _html([("b", nid.rsplit("/", 1)[-1]), ("", b.module), ("small", f"{si(c.params)} params · {si(c.macs)} MACs"),
                       ("", fmt(net.shapes[b.output]))])
        return _q(nid) + " " + _attrs(label=label, fillcolor=BOX_COLOUR, shape="box",
                                      style="filled" + (",dashed" if train else ""), penwidth="1.2",
                                      color=TRAIN_COLOUR if train else "#34558b",
                                      tooltip=_block_tooltip(net, plan, nid))
    layer = net.layers[nid]
    train = net.is_train_only(nid)
    lines = []
    given = _given_name(nid)
    if given:
        lines.append(("small", given))
    lines.append(("b" if layer.op in ("conv", "dwconv", "sepconv", "dense") else "", op_text(layer)))
    lines.append(("", fmt(net.shapes[nid])))
    c = net.counts[nid]
    tip = [nid, describe(layer), f"output {fmt(net.shapes[nid])}"]
    if c.params or c.macs:
        tip.append(f"params {c.params:,} · MACs {c.macs:,}")
    if layer.span is not None:
        tip.append(str(layer.span))
    if train:
        tip.append("training only")
    fill = FAMILY_COLOURS[FAMILIES.get(layer.op, "other")]
    return _q(nid) + " " + _attrs(label=_html(lines), fillcolor=fill,
                                  style="rounded,filled" + (",dashed" if train else ""),
                                  color=TRAIN_COLOUR if train else None, tooltip="\n".join(tip))


def _block_tooltip(net, plan: _Plan, name: str) -> str:
    b = plan.blocks[name]
    c = plan.block_count(name)
    lines = [f"{name}: {b.module} ({b.span})",
             f"params {c.params:,} (trainable {c.trainable:,}, non-trainable {c.non_trainable:,})",
             f"MACs {c.macs:,}", f"output {fmt(net.shapes[b.output])}"]
    if plan.train_only(b.output):
        lines.append("training only")
    return "\n".join(lines)


def _network_title(net, depth, only) -> str:
    t = net.total(inference=True)
    sets = "  ".join(f"{k}={_value(v)}" for k, v in net.params.items())
    what = f"{net.name}" + (f" / {only}" if only else "") + (f"  (depth {depth})" if depth else "")
    return _html([("b", what), ("small", sets),
                  ("small", f"inference: {t.params:,} params · {t.macs:,} MACs")])


# --- rendering --------------------------------------------------------------------------------

def find_dot() -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError("drawing SVG or PNG needs Graphviz's `dot` program, which is not on PATH; "
                         "install the Graphviz package (Debian/Ubuntu: apt-get install graphviz, "
                         "macOS: brew install graphviz), or write DOT text with --to dot")
    return exe


def render(dot_text: str, fmt_: str) -> bytes:
    """Lay out DOT text with Graphviz: 'svg' or 'png' bytes."""
    exe = find_dot()
    args = [exe, f"-T{fmt_}"] + (["-Gdpi=96"] if fmt_ == "png" else [])
    try:
        done = subprocess.run(args, input=dot_text.encode(), capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise UsageError("Graphviz `dot` took more than 5 minutes; try a smaller --depth") from None
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode(errors="replace").strip()
        raise UsageError(f"Graphviz `dot` failed (exit {done.returncode}): {err or 'no output'}")
    return done.stdout


def compile_cli(net, args) -> int:
    fmt_ = args.to
    if fmt_ not in FORMATS:
        raise UsageError(f"the dot backend draws {', '.join(FORMATS)}, not {fmt_}")
    if fmt_ != "dot":
        find_dot()  # fail before doing any work, and before touching the output
    text = to_dot(net, depth=args.depth, only=getattr(args, "only", None))
    data = text.encode() if fmt_ == "dot" else render(text, fmt_)
    path = args.output or f"{net.name}.{fmt_}"
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    print(f"wrote {path} ({len(data):,} bytes)")
    return 0
