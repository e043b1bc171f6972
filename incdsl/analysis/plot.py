"""Charts for `incdsl compare --plot`. matplotlib is imported here, inside the functions, and only
its object API with the Agg canvas is used (no pyplot): no window, no global state."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

from ..io import atomic_path

LABELS_MAX = 40  # past this many points, only the Pareto front is labelled


def _unit(values, names=(("G", 1e9), ("M", 1e6), ("K", 1e3))) -> tuple[str, float]:
    """The largest unit that keeps the biggest magnitude at or above 1 (or no unit)."""
    top = max((abs(v) for v in values), default=0)
    for name, size in names:
        if top >= size:
            return name, size
    return "", 1.0


def plot_compare(rows, blocks, path: str | Path) -> None:
    """Params vs MACs for every variant, the Pareto front marked; for exactly two variants, also the
    per-block deltas of the second against the first. Written as .png or .svg, atomically."""
    fig, _ = compare_figure(rows, blocks)
    fmt = Path(path).suffix.lower().lstrip(".")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)


def compare_figure(rows, blocks):
    """The figure of `plot_compare` and the point labels placed on it (no two overlap: a label
    with no free place is left out, and the title says how many)."""
    from matplotlib.figure import Figure

    from .sweep import pareto

    # deployed cost: without training-only heads, which the inference model drops
    params = [r.inference.params for r in rows]
    macs = [r.inference.macs for r in rows]
    pu, ps = _unit(params)
    mu, ms = _unit(macs)
    two = len(rows) == 2
    fig = Figure(figsize=(15, 6.5) if two else (8, 6), layout="constrained")
    if two:
        grid = fig.add_gridspec(1, 3, width_ratios=[1.1, 1, 1])
        ax = fig.add_subplot(grid[0, 0])
    else:
        ax = fig.add_subplot()

    front = pareto(rows)
    on_front = set(front)
    xs, ys = [m / ms for m in macs], [p / ps for p in params]
    others = [i for i in range(len(rows)) if i not in on_front]
    ax.scatter([xs[i] for i in others], [ys[i] for i in others], s=28, color="tab:blue", alpha=0.6,
               label="variant", zorder=2)
    order = sorted(front, key=lambda i: (xs[i], ys[i]))
    ax.plot([xs[i] for i in order], [ys[i] for i in order], color="tab:red", linewidth=1.2,
            drawstyle="steps-post", zorder=1)
    ax.scatter([xs[i] for i in order], [ys[i] for i in order], s=60, color="tab:red", marker="D",
               label="Pareto front (no variant has both fewer params and fewer MACs)", zorder=3)
    labelled = range(len(rows)) if len(rows) <= LABELS_MAX else order
    ax.set_xlabel(f"{mu}MACs (inference)" if mu else "MACs (inference)")
    ax.set_ylabel(f"params ({pu})" if pu else "params")
    networks = ", ".join(dict.fromkeys(r.network for r in rows))
    title = f"{networks}: params vs MACs, {len(rows)} variant{'s' * (len(rows) != 1)}"
    title += "" if len(rows) <= LABELS_MAX else " (labels on the front only)"
    # wrapped to the axes' width (about 0.55 em per character at 12 pt): never cut at the figure's edge
    columns = max(30, int(fig.get_figwidth() * (0.4 if two else 1) * 72 * 0.8 / 6.6))
    ax.set_title(textwrap.fill(title, columns), fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.margins(0.15)

    if two:
        _delta_bars(fig, grid, rows, blocks)
    placed = _place_labels(fig, ax, [(rows[i].label, xs[i], ys[i], i in on_front) for i in labelled],
                           list(zip(xs, ys)))
    if len(placed) < len(labelled):
        ax.set_title(f"{ax.get_title()}\n"
                     + textwrap.fill(f"({left_out_note([rows[i].label for i in labelled], placed)})",
                                     columns),
                     fontsize=10)
    return fig, placed


def left_out_note(labels: list[str], placed) -> str:
    """The title's note on the labels `_place_labels` could not place (Pareto labels are placed
    first, so these are the others): how many, with the right plural, and which."""
    shown = {a.get_text() for a in placed}
    left = [t for t in labels if t not in shown]
    names = ", ".join(left)  # every one named (issue 28): the title wraps to the figure
    one = len(left) == 1
    return (f"{len(left)} label{'' if one else 's'} left out where {'it' if one else 'they'} would overlap: "
            f"{names}")


def _place_labels(fig, ax, labels, points) -> list:
    """Put each label beside its own point, overlapping no other label, no point's marker and not
    the legend: candidate places in eight directions at growing distances, nearest first, greedy in
    MACs order (Pareto-front labels first). A label further than a few points from its point gets a
    leader line to it. A label with no free place is left out. matplotlib has no label placement of
    its own. Returns the placed annotations."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    canvas = FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # run the layout, so data -> pixel transforms are final
    renderer = canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    taken = [legend.get_window_extent(renderer) if legend else Bbox.null()]
    dots = [ax.transData.transform(p) for p in points]
    r = 5 * fig.dpi / 72  # a marker's half size, in pixels
    taken += [Bbox([[x - r, y - r], [x + r, y + r]]) for x, y in dots]
    boxes = []  # placed labels with their leader lines
    candidates = [(dist, ang) for dist in (7, 16, 28, 42, 60) for ang in range(0, 360, 45)]
    placed = []
    for text, x, y, front in sorted(labels, key=lambda t: (not t[3], t[1], t[2])):
        own = ax.transData.transform((x, y))
        for dist, ang in candidates:
            dx, dy = dist * math.cos(math.radians(ang)), dist * math.sin(math.radians(ang))
            ha = "left" if dx > 1 else "right" if dx < -1 else "center"
            va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
            leader = {"arrowstyle": "-", "color": "gray", "lw": 0.6, "shrinkA": 1,
                      "shrinkB": 4} if dist > 10 else None
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va,
                              fontsize=8,
                              color="tab:red" if front else "black", arrowprops=leader)
            box = ann.get_window_extent(renderer)  # the text and its leader line
            words = Text.get_window_extent(ann, renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            # its own point must be the nearest to the text, or the leader line says which it is
            centre = ((words.x0 + words.x1) / 2, (words.y0 + words.y1) / 2)
            near = min(range(len(dots)), key=lambda i: math.dist(dots[i], centre))
            mine = math.dist(dots[near], own) < 1e-6 or leader is not None
            clear = not any(words.overlaps(b) for b in taken) and not any(box.overlaps(b) for b in taken[:1])
            if inside and mine and clear and not any(box.overlaps(b) for b in boxes):
                taken.append(words)
                boxes.append(box)
                placed.append(ann)
                break
            ann.remove()
    return placed


def _delta_bars(fig, grid, rows, blocks) -> None:
    """Two panels: per-block delta of params and of MACs, second variant minus first. The x axis is
    symmetric about zero and each bar's note sits on the other side of zero, clear of the bars."""
    from .compare_out import pct_text
    from .sweep import REST

    names = [("other layers" if b.name == REST else b.name)
             + (" (train)" if any(c and c.train_only for c in b.cells) else "") for b in blocks]
    for col, (what, get) in enumerate((("params", lambda c: c.params), ("MACs", lambda c: c.macs)), 1):
        deltas = [get(b.delta(1)) for b in blocks]
        u, size = _unit(deltas)
        bx = fig.add_subplot(grid[0, col])
        ypos = list(range(len(names)))
        bx.barh(ypos, [d / size for d in deltas],
                color=["tab:green" if d < 0 else "tab:orange" for d in deltas])
        bx.set_yticks(ypos, names if col == 1 else [""] * len(names), fontsize=8)
        bx.invert_yaxis()
        bx.axvline(0, color="black", linewidth=0.8)
        reach = max((abs(d) for d in deltas), default=0) / size or 1.0
        bx.set_xlim(-1.1 * reach, 1.1 * reach)
        bx.set_xlabel(f"Δ {what} ({u})" if u else f"Δ {what}")
        bx.set_title(f"per-block Δ {what}: '{rows[1].label}' − '{rows[0].label}'", fontsize=10)
        bx.grid(True, axis="x", alpha=0.3)
        if not any(deltas):
            bx.text(0.5, 0.5, f"no block differs in {what}", transform=bx.transAxes, ha="center",
                    fontsize=10, color="dimgray", bbox={"facecolor": "white", "edgecolor": "none"})
        for y, (b, d) in enumerate(zip(blocks, deltas)):
            first, second = b.cells
            if first is None or second is None:
                note = f"only in '{rows[0].label if second is None else rows[1].label}'"
            else:
                note = pct_text(get(second.count), get(first.count))
            bx.annotate(note, (0, y), xytext=(-4 if d > 0 else 4, -3), textcoords="offset points",
                        fontsize=7, color="dimgray", ha="right" if d > 0 else "left")
