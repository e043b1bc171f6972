"""The Keras callbacks of one run, in the order Keras calls them at each epoch's end: the backup
(BackupAndRestore, checked), the log cut back on resume, the stop on a non-finite loss, step and
rate, throughput, precise BN (before each validation), then on the chief the best epoch (held in
memory, export.py), the CSV log and TensorBoard, then the caller's own."""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

import keras

from ..callbacks import KeepBest, StepAndRate, StopOnNonFinite, Throughput
from ..config import RunPaths, TrainConfig
from ..data import has_tensorflow
from ..outputs import start_tensorboard
from ..precise import PreciseBN
from ..resume import CheckedBackup, TruncateLog, log_rows
from ..saving import read_meta


@dataclass(frozen=True)
class RunCallbacks:
    """The callbacks fit gets (`callbacks`, in order) and those the run reads afterwards: the best
    epoch (`keep_best`), throughput, precise BN (None when it runs only at the end), and whether
    this run made the TensorBoard folder (`tb_made`: a failed run with no finished epoch removes it),
    and the `--resume` backup this process writes (`backup`: None where it writes nothing), which fit
    deletes once the last epoch is done."""
    callbacks: list
    keep_best: KeepBest
    throughput: Throughput
    precise: PreciseBN | None
    tb_made: bool
    backup: CheckedBackup | None = None


def prior_best(paths: RunPaths, start: int, monitor: str, fallback: str) -> float | None:
    """The best value a resumed run must beat: the one model.best.keras records, for `monitor` (or
    `fallback`, or val_loss) as KeepBest compares them, read from the log's rows of the `start`
    finished epochs; None for a fresh run or when no best model was written (a run killed before it
    wrote the best epoch it held: the next best epoch is written then)."""
    if not start or not paths.best.exists():
        return None
    metrics = (read_meta(paths.best) or {}).get("metrics") or {}
    rows = log_rows(paths.csv, start)
    key = next((k for k in (monitor, "val_loss", fallback) if rows and k in rows[0]), fallback)
    if key in metrics:
        return float(metrics[key])
    values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    if not values:
        return None
    return max(values) if key.endswith("accuracy") else min(values)


def make_callbacks(model, data, config: TrainConfig, paths: RunPaths, placement, start: int,
                   hold, monitor: str, bn_batches: int) -> RunCallbacks:
    """The callbacks of a run of `model` (the training model) on `data` (run/data.py's RunData, as
    this process reads it). `placement` (placement.py): whether this process writes the outputs
    (`chief`) or anything (`writes`), whether a tf.distribute strategy runs (precise BN then runs
    only at the end), and its hooks for JAX multiworker (callbacks of its own, those only process 0
    runs wrapped by `alone`, batches for precise BN by `model_batches`); `start`: epochs already finished (a
    resumed run); `hold`: what KeepBest calls with a new best epoch (Exporter.hold); `monitor`: the log key of
    the best epoch (val accuracy, or loss without validation data); `bn_batches`: precise BN's batches (0:
    off)."""
    chief, distributed, alone = placement.chief, placement.strategy is not None, placement.alone
    keep_best = KeepBest(hold, monitor, "loss", prior_best(paths, start, monitor, "loss"))
    throughput = Throughput(config.batch_size)
    # precise BN before each validation (precise.py); not under tf.distribute (the end does it there)
    precise = (PreciseBN(model, placement.model_batches(data.recalibration),
                         bn_batches) if bn_batches and data.val is not None and not distributed
               else None)
    backup = CheckedBackup(str(paths.backup), double_checkpoint=True,
                           steps_per_epoch=None if config.unfreeze_after is not None else data.steps)
    callbacks = [*([alone(backup)] if placement.writes else []), *placement.callbacks(start),
                 *([TruncateLog(paths.csv, start)] if start and chief else []), StopOnNonFinite(),
                 StepAndRate(), throughput] + ([precise] if precise is not None else [])
    tb_made = False
    if chief:
        callbacks += [alone(keep_best), keras.callbacks.CSVLogger(str(paths.csv), append=True)]
        if config.tensorboard:
            if has_tensorflow() and importlib.util.find_spec("tensorboard") is not None:
                start_tensorboard(paths, fresh=not start)  # marked as this run's; an earlier run's replaced
                tb_made = not start
                callbacks.append(alone(keras.callbacks.TensorBoard(str(paths.tensorboard),
                                                                   write_graph=False)))
            else:
                print("note: no TensorBoard logs (they need the tensorflow and tensorboard packages)",
                      file=sys.stderr)
    return RunCallbacks(callbacks + list(config.callbacks), keep_best, throughput, precise, tb_made,
                        backup if placement.writes else None)
