"""The results of an experiment: one `ExploreRow` per variant, the table sorted by accuracy with the
Pareto fronts of accuracy against MACs and against params marked, CSV and JSON. Rows are read
from the trial folders (each run's own model.log.csv, the log `incdsl train` writes) and Tune's
final state of each trial (epochs, images/s, error). No Ray here: `--show` prints them again."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .plan import Planned


@dataclass(frozen=True)
class ExploreRow:
    """One variant's outcome: `label` and `sets` (spec arguments), total `params` and `macs` (per image),
    `epochs` run, the best `accuracy` (validation accuracy, or training accuracy without validation
    data; 0-1) at `best_epoch`, training `images_per_second` of its last epoch, `state` ("done",
    "stopped at epoch N" by ASHA, "error", "not finished"), `error` (its first line), `model` (the
    best epoch's model, relative to the experiment folder), and whether it is on the Pareto front of
    accuracy against MACs (`pareto_macs`) and against params (`pareto_params`)."""
    label: str
    sets: dict
    params: int
    macs: int
    epochs: int
    accuracy: float | None
    best_epoch: int | None
    images_per_second: float | None
    state: str
    error: str | None
    model: str | None
    pareto_macs: bool = False
    pareto_params: bool = False


ERROR_KEY = "incdsl_error"  # the metric a trial that ended in one of incdsl's errors reports it under

def trial_row(root: Path, p: Planned, metric: str, acc_key: str, epochs: int, last: dict | None,
              error: str | None, finished: bool) -> ExploreRow:
    """The row of variant `p` of the experiment in `root` from its log (the best `metric` over its
    epochs; `acc_key` is the name Keras logs the main head's accuracy under) and Tune's `last`
    reported metrics, `error` and whether Tune `finished` the trial (stopped early or not)."""
    folder = root / "trials" / p.folder
    log = folder / "model.log.csv"
    rows = []
    if log.is_file():
        with log.open(newline="") as f:
            rows = list(csv.DictReader(f))
    key = ("val_" if metric == "val_accuracy" else "") + acc_key
    scores = [(float(r[key]), i + 1) for i, r in enumerate(rows) if r.get(key) not in (None, "")]
    best = max(scores, key=lambda s: s[0]) if scores else None
    ran = len(rows)
    if error:
        state = "error"
    elif (folder / "model.keras").exists() and ran >= epochs:
        state = "done"
    elif finished and ran:
        state = f"stopped at epoch {ran}"
    else:
        state = "not finished"
    ips = (last or {}).get("images_per_second")
    model = folder / "model.best.keras"
    return ExploreRow(p.label, dict(p.sets), p.params, p.macs, ran, best[0] if best else None,
                      best[1] if best else None,
                      ips if isinstance(ips, (int, float)) and math.isfinite(ips) else None,
                      state, error, str(model.relative_to(root)) if model.exists() else None)


def with_fronts(rows: list[ExploreRow]) -> list[ExploreRow]:
    """`rows` sorted by accuracy (best first, rows without one last), each marked when it is on the
    Pareto front of accuracy against MACs or against params: no other row has at least its accuracy
    with at most its MACs (params), one of the two strictly better."""
    def front(cost: str) -> set[str]:
        scored = [r for r in rows if r.accuracy is not None]
        return {r.label for r in scored if not any(
            q.accuracy >= r.accuracy and getattr(q, cost) <= getattr(r, cost)
            and (q.accuracy > r.accuracy or getattr(q, cost) < getattr(r, cost)) for q in scored)}
    macs, params = front("macs"), front("params")
    out = [ExploreRow(**{**asdict(r), "pareto_macs": r.label in macs, "pareto_params": r.label in params})
           for r in rows]
    return sorted(out, key=lambda r: (r.accuracy is None, -(r.accuracy or 0.0), r.macs))


def count_text(n: int) -> str:
    """A count for a table: 637K, 9.85M, 1.50G."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return str(n)


def table_text(rows: list[ExploreRow], metric: str) -> str:
    """The final table: sorted by accuracy, Pareto marks (M: on the accuracy-MACs front, P: on the
    accuracy-params front), where each variant's best model is (or "none: no epoch ended" for a
    trial interrupted or failed in its first epoch), then each failed variant's error."""
    acc = "best val acc" if metric == "val_accuracy" else "best accuracy"
    head = ["variant", "params", "MACs", "epochs", acc, "images/s", "pareto", "state", "best model"]
    body = [[r.label, count_text(r.params), count_text(r.macs), str(r.epochs),
             "-" if r.accuracy is None else f"{r.accuracy:.4f}",
             "-" if r.images_per_second is None else f"{r.images_per_second:.0f}",
             ("M" if r.pareto_macs else "") + ("P" if r.pareto_params else "") or "-", r.state,
             r.model or ("none: no epoch ended" if r.epochs == 0 else "none")]
            for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    left = (0, 6, 7, 8)
    lines = ["  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c,
                                                                       w) in enumerate(zip(x,
                                                                                           widths))).rstrip()
             for x in [head] + body]
    lines.append("pareto: M = no variant is as accurate with fewer MACs, P = ... with fewer params")
    for r in rows:
        if r.error:
            lines.append(f"error: {r.label}: {r.error}")
    return "\n".join(lines)


def to_json(rows: list[ExploreRow], metric: str, spec: str) -> dict:
    """The results as JSON: the spec, the accuracy measured (`metric`) and the rows."""
    return {"spec": spec, "metric": metric, "rows": [asdict(r) for r in rows]}


def from_json(data: dict) -> tuple[list[ExploreRow], str]:
    """(rows, metric) from `to_json`'s dict."""
    return [ExploreRow(**r) for r in data["rows"]], data["metric"]


def to_csv(rows: list[ExploreRow]) -> str:
    """The results as CSV, one line per variant, the swept arguments as `sets` (NAME=VALUE;...)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["variant", "sets", "params", "macs", "epochs", "accuracy", "best_epoch", "images_per_second",
                "pareto_macs", "pareto_params", "state", "error", "model"])
    for r in rows:
        w.writerow([r.label, ";".join(f"{k}={v}" for k, v in r.sets.items()), r.params, r.macs, r.epochs,
                    "" if r.accuracy is None else r.accuracy, r.best_epoch or "",
                    "" if r.images_per_second is None else round(r.images_per_second, 1),
                    int(r.pareto_macs), int(r.pareto_params), r.state, r.error or "", r.model or ""])
    return out.getvalue()


def write_results(root: Path, rows: list[ExploreRow], metric: str, spec: str) -> None:
    """Write results.json and results.csv into the experiment folder."""
    from ..io import write_atomic
    from .folder import RESULTS_CSV, RESULTS_JSON
    write_atomic(root / RESULTS_JSON, json.dumps(to_json(rows, metric, spec), indent=1) + "\n")
    write_atomic(root / RESULTS_CSV, to_csv(rows))
