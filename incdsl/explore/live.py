"""The live table of `incdsl explore` (a Tune Callback in the driver): one row per variant with its
params, MACs, epoch, accuracy, images/s and state, printed when a trial starts, ends or fails and at
most every `interval` seconds as epochs come in. On a terminal the table is redrawn in place."""
from __future__ import annotations

import functools
import math
import sys
import time

from .results import ERROR_KEY, count_text

STATES = {"PENDING": "waiting", "RUNNING": "training", "PAUSED": "paused", "TERMINATED": "done",
          "ERROR": "error"}


@functools.lru_cache(maxsize=None)
def live_table_class():
    """The `LiveTable` class, defined on first use: it subclasses a class of a heavy package, which
    this module does not import when it loads."""
    from ray import tune

    class LiveTable(tune.Callback):
        """Prints the experiment's progress. `counts`: variant label -> (params, MACs); `epochs` asked;
        `metric` the accuracy shown ("val_accuracy" or "accuracy")."""

        def __init__(self, counts: dict, epochs: int, metric: str, interval: float = 10.0):
            self.counts, self.epochs, self.metric, self.interval = counts, epochs, metric, interval
            self.rows: dict[str, dict] = {label: {"state": "waiting"} for label in counts}
            self.last, self.drawn = 0.0, 0

        def __getstate__(self):  # Tune pickles its callbacks with the experiment: keep the numbers only
            return {k: v for k, v in self.__dict__.items() if k not in ("drawn", "shown",
                                                                        "synced")} | {"drawn": 0}

        def on_step_begin(self, iteration, trials, **info):
            """The first step of a run, or of a resumed one: show each trial as Tune holds it."""
            if not getattr(self, "synced", False):
                self.synced = True
                self.sync(trials)

        def sync(self, trials) -> None:
            """Set every row from Tune's `trials` (status, last result): a resumed experiment's
            finished and failed trials are not started again, so no other hook reports them, and the
            table Tune restores is the one pickled when the experiment started (all waiting)."""
            for trial in trials:
                last = trial.last_result or {}
                failed = ERROR_KEY in last
                self._set(trial, epoch=None if failed else last.get("epoch"),
                          acc=None if failed else last.get(self.metric), ips=last.get("images_per_second"))
                row = self.rows[trial.config.get("variant")]
                epoch = row.get("epoch") or 0
                row["state"] = "error" if failed else {
                    "TERMINATED": "done" if epoch >= self.epochs else f"stopped at epoch {epoch}",
                    "ERROR": "error"}.get(trial.status, "waiting")
            self.draw(force=True)

        def on_trial_start(self, iteration, trials, trial, **info):
            """A trial got its resources: it trains."""
            self._set(trial, state="training")
            self.draw(force=True)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            """An epoch ended: record its numbers."""
            if ERROR_KEY in result:  # the trial ended in one of incdsl's errors (trial.run_trial)
                self._set(trial, state="error")
                self.draw(force=True)
                return
            self._set(trial, state="training", epoch=result.get("epoch"), acc=result.get(self.metric),
                      ips=result.get("images_per_second"))
            self.draw()

        def on_trial_complete(self, iteration, trials, trial, **info):
            """A trial ended: all its epochs, or stopped early by the scheduler."""
            row = self.rows.get(trial.config.get("variant"), {})
            epoch = row.get("epoch") or 0
            if row.get("state") != "error":
                self._set(trial, state="done" if epoch >= self.epochs else f"stopped at epoch {epoch}")
            self.draw(force=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            """A trial failed for good (after Tune's retries)."""
            self._set(trial, state="error")
            self.draw(force=True)

        def on_trial_recover(self, iteration, trials, trial, **info):
            """A trial failed and Tune restarts it from its last checkpoint."""
            self._set(trial, state="retrying")
            self.draw(force=True)

        def on_experiment_end(self, trials, **info):
            """Draw the last state (the final table follows)."""
            self.draw(force=True)

        def _set(self, trial, **values) -> None:
            label = trial.config.get("variant")
            self.rows.setdefault(label, {}).update({k: v for k, v in values.items() if v is not None})

        def draw(self, force: bool = False) -> None:
            """Print the table (redrawn in place on a terminal), at most every `interval` s unless `force`."""
            now = time.monotonic()
            if not force and now - self.last < self.interval:
                return
            lines = self.table()
            if lines == getattr(self, "shown", None):
                return  # nothing new (an experiment's end repeats its last trial's end)
            self.last, self.shown = now, lines
            out = sys.stdout
            if out.isatty() and self.drawn:
                out.write(f"\x1b[{self.drawn}F\x1b[J")  # back to the table's first line, clear below
            out.write("\n".join(lines) + "\n")
            out.flush()
            self.drawn = len(lines) if out.isatty() else 0

        def table(self) -> list[str]:
            """The table's lines: a header, one line per variant."""
            acc = "val acc" if self.metric == "val_accuracy" else "accuracy"
            head = ["variant", "params", "MACs", "epoch", acc, "images/s", "state"]
            body = []
            for label, row in self.rows.items():
                params, macs = self.counts.get(label, (0, 0))
                a, ips, epoch = row.get("acc"), row.get("ips"), row.get("epoch")
                body.append([label, count_text(params), count_text(macs), f"{epoch or 0}/{self.epochs}",
                             f"{a:.4f}" if isinstance(a, float) and math.isfinite(a) else "-",
                             f"{ips:.0f}" if isinstance(ips, float) and math.isfinite(ips) else "-",
                             row.get("state", "")])
            widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
            fmt = lambda r: "  ".join(
                c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
            )
            return [fmt(head)] + [fmt(r) for r in body]
    return LiveTable


