"""`--to html`: one self-contained, offline page to explore a network in a browser.

The page shows the checked graph with every module call as a box that folds and unfolds, pan and
zoom, a panel with the op, arguments, output shape, params, MACs and spec line of the layer under
the mouse, a search box and a sortable table of the module calls. Layout and interaction come from
cytoscape.js (rendering, pan/zoom, compound nodes), dagre (layered layout and the routes of the
edges around the nodes) and cytoscape-expand-collapse (folding), vendored from npm by
tools/fetch_html_assets.sh and inlined with their licenses: the page makes no request at all.

Like every backend this one only reads the checked network: names are the ids `incdsl summary`
prints, shapes come from `net.shapes`, counts from `net.counts` and `net.group_counts()`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..analysis.report import call_text, describe
from ..errors import OptionError
from ..io import inputs_of, write_atomic
from ..text import shape_text

VENDOR = ("cytoscape.min.js", "dagre.min.js", "cytoscape-expand-collapse.js")
LICENSES = ("cytoscape.LICENSE", "dagre.LICENSE", "cytoscape-expand-collapse.LICENSE")
LEGEND = ('      <p class="legend"><span class="train-mark">dashed</span>: training only (not in the '
          'inference model)</p>\n')


def page_data(net, depth: int | str = 1) -> dict:
    """What the page shows, as plain JSON: network totals, module calls (`blocks`, with their
    enclosing call as `parent`), layers (with op, arguments, NHWC output shape, params, MACs and
    spec place) and edges (producer, consumer) in input order. `depth` is the page's first fold, as
    `--depth` draws: module calls whose names have that many parts or more start folded; "all"
    starts with everything unfolded. Raises OptionError for a depth below 1."""
    if depth != "all" and (not isinstance(depth, int) or depth < 1):
        raise OptionError("{depth} must be at least 1 (or 'all')")
    blocks = {b.name: b for b in net.graph.blocks}
    groups = net.group_counts()

    def parent(name: str) -> str | None:
        parts = name.split("/")
        for k in range(len(parts) - 1, 0, -1):
            if "/".join(parts[:k]) in blocks:
                return "/".join(parts[:k])
        return None

    def place(span) -> dict | None:
        if span is None:
            return None
        return {"at": str(span), "text": (span.source_line() or "").strip()}

    full, inf = net.total(), net.total(inference=True)
    out_blocks = []
    for b in net.graph.blocks:
        c = groups.get(b.name)
        out_blocks.append({
            "id": b.name, "module": b.module, "parent": parent(b.name),
            "shape": shape_text(net.shapes[b.output]),
            "params": c.params, "trainable": c.trainable, "macs": c.macs, "output": b.output,
            "train_only": net.is_train_only(b.output), "place": place(b.span),
            "layers": sum(1 for n in net.layers if n.startswith(b.name + "/")),
        })
    layers = []
    for name, layer in net.layers.items():
        c = net.counts[name]
        layers.append({
            "id": name, "op": layer.op, "desc": describe(layer), "call": call_text(layer),
            "shape": shape_text(net.shapes[name]), "params": c.params, "trainable": c.trainable,
            "non_trainable": c.non_trainable, "macs": c.macs, "parent": parent(name),
            "module": layer.module, "train_only": net.is_train_only(name), "place": place(layer.span),
            "inputs": list(layer.inputs),
        })
    return {
        "network": net.name, "spec": net.path,
        "set": {k: (v if isinstance(v, (int, float, bool)) else str(v)) for k, v in net.params.items()},
        "params": full.params, "macs": full.macs, "inference": {"params": inf.params, "macs": inf.macs},
        "heads": [{"name": h.name, "node": h.node, "shape": shape_text(h.shape), "train_only": h.train_only}
                  for h in net.heads],
        "blocks": out_blocks, "layers": layers, "fold_depth": depth,
    }


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("html_assets", name).read_text(encoding="utf-8")


def _vendor(name: str) -> str:
    return resources.files(__package__).joinpath("html_assets", "vendor", name).read_text(encoding="utf-8")


def _script(text: str) -> str:
    # a literal "</script" would end the element early; "<\/" means the same to JavaScript
    return text.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def embedded_json(value) -> str:
    """`value` as JSON that is safe inside a <script> element: `<`, `>` and `&` are written as
    \\u003c, \\u003e, \\u0026 (the same strings to JSON.parse), so neither `</script` nor `<!--`
    (which makes the HTML tokenizer swallow the page's later scripts) can appear in the data."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def to_html(net, depth: int | str = 1) -> str:
    """The whole page as one string: data, styles, scripts and licenses inline; `depth` as in
    page_data."""
    data = embedded_json(page_data(net, depth))
    licenses = "\n\n".join(f"{n.removesuffix('.LICENSE')}:\n{_vendor(n)}" for n in LICENSES)
    versions = _vendor("VERSIONS").strip()
    page = _asset("page.html")
    parts = {
        "{{TITLE}}": f"{net.name}: incdsl",
        "{{STYLE}}": _asset("viewer.css"),
        "{{DATA}}": data,
        # the key to dashed boxes, only where something is dashed: a network with training-only heads
        "{{LEGEND}}": LEGEND if any(net.is_train_only(name) for name in net.layers) else "",
        "{{LIBS}}": "\n".join(f"<script>{_script(_vendor(n))}</script>" for n in VENDOR),
        "{{VIEWER}}": f"<script>{_script(_asset('viewer.js'))}</script>",
        "{{LICENSES}}": f"<!--\nBundled libraries ({versions.replace(chr(10), '; ')}):\n\n"
                        f"{licenses.replace('--', '- -')}\n-->",
    }
    # one pass, so that text inside the data or the libraries is never taken for a placeholder
    return re.sub(r"\{\{[A-Z]+\}\}", lambda m: parts.get(m.group(), m.group()), page)


@dataclass(frozen=True)
class Page:
    """What `export` wrote: the page's `path` and its size in bytes."""
    path: Path
    size: int


def export(net, path: str | Path, *, depth: int | str = 1) -> Page:
    """Write `net` (a checked `Network`) as one self-contained, offline HTML page at `path` and
    return what was written.

    Options:
    - `depth` (default 1): the page's first fold; module calls whose names have that many parts or
      more start folded (each folds and unfolds in the page); "all" starts with every layer shown.

    The file is written atomically. Raises `OptionError` for a depth below 1, `UsageError` for a
    path that cannot be written or that is one of the network's spec files (`io.check_output`)."""
    text = to_html(net, depth)
    write_atomic(path, text, inputs=inputs_of(net))
    return Page(Path(path), len(text.encode()))
