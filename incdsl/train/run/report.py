"""The end of a run that finished its epochs: the best epoch and the final model written (with
precise batch norm at the end where it did not run before each validation), and the lines that
say what the run did."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from ..diagnose import GAP, explain_gap
from ..finish import BNResult, momenta, recalibrate_and_measure, refresh_best
from ..saving import read_meta, save_model


@dataclass(frozen=True)
class Finished:
    """What the end of a run did: the last epoch's logs (`logs`, Keras' names), epochs run by this
    call, the metrics saved with the final model (accuracies and losses; val accuracy after
    precise BN where it ran at the end), and what precise BN at the end did to the final model
    (`bn`) and to the best one (`bn_best`), None where it did not run."""
    logs: dict
    ran: int
    metrics: dict
    bn: BNResult | None
    bn_best: BNResult | None


def finish(history, config, paths, data, exporter, run, head: str | None, acc: str,
           bn_batches: int) -> Finished:
    """Write the best epoch (held in memory, export.py) and the final model, on the chief only.
    With precise BN before each validation (`run.precise`), the final model is the training
    model's last state; without it, precise BN runs here on the final model and on the best one,
    with validation accuracy before and after. `head`: the main head's name when labels are a
    dict by head; `acc`: the accuracy's log key; `bn_batches`: precise BN's batches (0: off)."""
    logs = {k: float(v[-1]) for k, v in history.history.items() if v}
    ran = len(next(iter(history.history.values()), []))
    metrics = {k: v for k, v in logs.items() if k.endswith(("accuracy", "loss"))}
    bn = bn_best = None
    if not exporter.chief:
        return Finished(logs, ran, metrics, None, None)
    exporter.write_held(paths.best)
    last = config.epochs - 1
    precise = run.precise
    if precise is not None:  # the last validation was after recalibration
        exporter.save(paths.output, last, metrics, extra={"bn_recalibrated": {
            "layers": precise.done.layers, "batches": precise.done.batches, "images": precise.done.images,
            "before_each_validation": True}} if precise.done else None)
        return Finished(logs, ran, metrics, None, None)
    exporter.copy_in()  # the training weights into the inference model, then precise BN on them

    def recal(m):
        return recalibrate_and_measure(m, data.recalibration, data.val, head, bn_batches)

    bn = recal(exporter.model)
    if bn is not None and bn.after is not None:
        metrics[f"val_{acc}"] = bn.after
        metrics = {k: v for k, v in metrics.items() if not k.startswith("val_") or k.endswith("accuracy")}
    exporter.save(paths.output, last, metrics, copy=False, extra=bn.meta() if bn else None)
    if bn is not None and paths.best.exists():
        bn_best = refresh_best(exporter.model, paths.best, config.epochs, bn, read_meta,
                               lambda path, meta: save_model(exporter.model, path, meta), recal)
    return Finished(logs, ran, metrics, bn, bn_best)


def report(done: Finished, config, paths, data, run, exporter, acc: str) -> None:
    """Print what the run did (stdout; the diagnosis of a gap between training and validation
    accuracy to stderr): precise BN, the files written with their metrics, the best epoch, and
    training throughput in images/s."""
    if run.precise is not None:
        print(run.precise.describe())
    if done.bn is not None:
        print(done.bn.describe(str(paths.output)))
    if done.bn_best is not None:
        print(done.bn_best.describe(str(paths.best)))
    shown = ", ".join(f"{k} {v:.4f}" for k, v in done.metrics.items())
    print(f"wrote {paths.output} (epoch {config.epochs}{': ' + shown if shown else ''})")
    keep_best = run.keep_best
    if paths.best.exists() and keep_best.best is not None:
        print(f"best: {paths.best} ({keep_best.key(done.logs)} {keep_best.best:.4f}"
              f"{', before batch norm recalibration' if done.bn_best is not None else ''}); log: {paths.csv}")
    steps_run = int(done.logs.get("step", 0)) or done.ran * data.steps
    train_acc, val_acc = done.logs.get(acc), done.metrics.get(f"val_{acc}")
    far = train_acc is not None and val_acc is not None and train_acc - val_acc >= GAP
    for line in explain_gap(train_acc, val_acc, steps=steps_run, bn_momenta=momenta(exporter.model),
                            recalibrated=done.bn is not None or run.precise is not None,
                            val_images=data.val_images() if far else 0, classes=len(data.classes)):
        print(line, file=sys.stderr)
    ips = run.throughput.images_per_second
    if math.isfinite(ips):
        print(f"{ips:.1f} images/s")
