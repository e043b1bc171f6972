"""The plot of an experiment: accuracy against MACs and against params (log scale), every variant a
point, the Pareto front of each drawn as a line with its points labelled. matplotlib (the [plot]
extra), imported here only."""
from __future__ import annotations

import io
from pathlib import Path

from .results import ExploreRow


def plot_results(rows: list[ExploreRow], metric: str, path: str | Path) -> None:
    """Draw `rows` to `path` (.png or .svg, from the suffix); variants without an accuracy are left out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from ..io import write_atomic

    scored = [r for r in rows if r.accuracy is not None]
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    name = "validation accuracy" if metric == "val_accuracy" else "training accuracy"
    for ax, cost, front, title in ((fig.add_subplot(1, 2, 1), "macs", "pareto_macs", "MACs per image"),
                                   (fig.add_subplot(1, 2, 2), "params", "pareto_params", "params")):
        others = [r for r in scored if not getattr(r, front)]
        best = sorted((r for r in scored if getattr(r, front)), key=lambda r: getattr(r, cost))
        ax.scatter([getattr(r, cost) for r in others], [r.accuracy for r in others], color="0.6",
                   label="variant")
        ax.plot([getattr(r, cost) for r in best], [r.accuracy for r in best], "o-", color="C0",
                label="Pareto front")
        for r in best:
            ax.annotate(r.label, (getattr(r, cost), r.accuracy), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # log minor labels overlap on a short range
        ax.margins(x=0.3, y=0.1)  # room for the labels of the end points
        ax.set_xlabel(title)
        ax.set_ylabel(name)
        ax.set_title(f"{name} against {title}")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    out = io.BytesIO()
    fig.savefig(out, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=110)
    write_atomic(path, out.getvalue())
