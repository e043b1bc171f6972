"""`--resume`: the state an interrupted run left in model.backup/, restored exactly or refused.

Keras' BackupAndRestore (keras/src/callbacks/backup_and_restore.py, Keras 3.15) keeps, after each
finished epoch, `latest.weights.h5` (the model's and the optimizer's variables) and
`training_metadata.json` ({"epoch": epochs finished, "batch": ...}), the previous pair as `*.bkp`.
`CheckedBackup` writes the same files (backup_write.py: without Keras' walk of the model each
epoch, and renamed into place so that a kill leaves a whole backup, the old or the new; `settle`
finishes a save a kill interrupted). On its own Keras resumes from fresh weights when the weights
file is gone (it loads only what exists), falls back to the `.bkp` pair on a read error, and fails
with an internal error on bad JSON. Here the backup is checked before training (`read_backup`: each
file present, the JSON an object with a whole `epoch` of at least 1, the weights an HDF5 file whose
every array reads in full, with no external or virtual storage) and loaded by `CheckedBackup`,
which refuses any variable Keras would skip. Every refusal is a SpecError naming the damaged file.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import keras

from ..errors import SpecError
from ..text import ParamText, first_line
from . import rng_state
from .backup_write import METADATA, WEIGHTS, LayoutError, WeightsPlan, save_backup, settle
from .config import RESUME


def _damaged(path: Path, why: str, backup: Path) -> SpecError:
    older = all((backup / f"{name}.bkp").is_file() for name in (WEIGHTS, METADATA))
    also = (
        "; or continue from the epoch before: Keras kept it as the two .bkp files there, which can replace "
            "the two files without .bkp" if older and not path.name.endswith(".bkp") and path.parent == backup
            else "")
    return SpecError(f"cannot resume: {path} {why}",
                     hint=ParamText(
                         "the interrupted run cannot be continued exactly; delete {backup} to start "
                                    "afresh (without {resume})" + also, words=RESUME, backup=backup))


def read_backup(backup: Path, log: Path | None = None) -> int:
    """The number of epochs the interrupted run in `backup` finished, after checking that its
    state can be restored exactly: the metadata is a JSON object with a whole `epoch` >= 1, the
    weights file is there and is HDF5 whose every dataset reads in full (no external files, no
    virtual datasets, no external links), and `log` (model.log.csv), when present, is a CSV whose
    `epoch` column holds whole numbers. A save that a kill interrupted is settled first
    (backup_write.settle: the staged new backup moved into place if it was complete, else deleted).
    Raises SpecError naming the file that is missing or damaged."""
    try:
        settle(backup)
    except OSError as e:
        raise _damaged(backup, f"holds a backup that could not be put in place ({first_line(e)})",
                       backup) from None
    meta, weights = backup / METADATA, backup / WEIGHTS
    if not meta.is_file():
        raise _damaged(meta, "is missing, so the epoch to continue from is unknown", backup)
    try:
        found = json.loads(meta.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _damaged(meta, f"is damaged ({first_line(e)})", backup) from None
    epoch = found.get("epoch") if isinstance(found, dict) else None
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        raise _damaged(meta,
                       f"is damaged: it must say how many epochs finished ('epoch', a whole number of at "
                       f"least 1), got {json.dumps(found)[:80]}", backup)
    if not weights.is_file():
        raise _damaged(weights, f"is missing (the metadata says {epoch} epochs had finished)", backup)
    _check_hdf5(weights, backup)
    if log is not None and log.exists():
        _check_log(log, backup)
    return epoch


def _check_hdf5(path: Path, backup: Path) -> None:
    import h5py

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            if obj.external or obj.is_virtual:
                raise _damaged(path, f"is damaged: {name} keeps its data outside the file", backup)
            obj[()]  # reads every byte: a truncated file fails here

    try:
        with h5py.File(path, "r") as f:
            for name, link in _links(f):
                if isinstance(link, h5py.ExternalLink):
                    raise _damaged(path, f"is damaged: {name} links to another file", backup)
            f.visititems(visit)
    except SpecError:
        raise
    except Exception as e:  # h5py raises OSError, KeyError, ValueError, RuntimeError for a damaged file
        raise _damaged(path, f"is damaged ({first_line(e)})", backup) from None


def _links(group, prefix=""):
    for key in group:
        link = group.get(key, getlink=True)
        yield prefix + key, link
        if type(link).__name__ == "HardLink":
            obj = group[key]
            if hasattr(obj, "keys"):
                yield from _links(obj, f"{prefix}{key}/")


def _check_log(log: Path, backup: Path) -> None:
    try:
        with log.open(newline="") as f:
            for row in csv.DictReader(f):
                int(row["epoch"])
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as e:
        raise _damaged(log, f"is damaged: each row must start with its whole epoch number ({first_line(e)})",
                       backup) from None


def restore_random_state(model, read: Path, backup: Path, note: bool = True) -> None:
    """Set the layers' random states (dropout's seed generators) from the weights file `read`, the
    backup folder's own or a copy of it (from_chief.py) (rng_state.restore). Raises SpecError,
    naming the backup's file, when they are not the network's; a backup from before they were kept
    restores without them, with a note (unless not `note`) that dropout then draws other masks
    than the uninterrupted run would have."""
    weights = backup / WEIGHTS
    try:
        kept = rng_state.restore(model, read)
    except rng_state.Mismatch as e:
        raise _damaged(weights, f"does not restore the network being trained ({e})", backup) from None
    if not kept and note and rng_state.random_states(model):
        print(f"note: {weights} holds no random state (an earlier incdsl wrote it): the resumed run's "
              f"dropout draws other masks than the uninterrupted run would have", file=sys.stderr)


class CheckedBackup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore whose restore is exact or an error: the backup is checked with
    `read_backup`, loaded without Keras' silent fallbacks (the `.bkp` pair, skipping variables that
    do not fit, fresh weights when the file is gone), and any failure is a SpecError naming the
    weights file. `steps_per_epoch`, when given, is also checked against the optimizer's restored
    step count: Keras' own writer wrote the weights and then the metadata, so a run it left killed
    between the two has weights one epoch ahead of what the metadata says (this class's writer,
    backup_write.save_backup, cannot leave that). Each epoch's backup is written by a
    `backup_write.WeightsPlan` (the file Keras' save_weights writes, without its walk of the model),
    or by save_weights where this Keras is laid out otherwise, and the layers' random states are
    added to it (rng_state.py: a group Keras' load_weights does not read).

    One callback serves a whole run, which `--unfreeze-after` splits into two fits: it restores at
    the first fit's start only (the second goes on from the state in memory; the backup may hold
    the first phase's optimizer), and the folder outlives each fit's end (Keras deletes it there),
    so that a stop in the second phase keeps the first one's epochs: the run deletes it with
    `discard()` once the last fit has returned."""

    def __init__(self, backup_dir: str, double_checkpoint: bool = True, steps_per_epoch: int | None = None):
        super().__init__(backup_dir, double_checkpoint=double_checkpoint, delete_checkpoint=False)
        self.steps_per_epoch = steps_per_epoch
        self._plan: WeightsPlan | None | bool = None  # False: this Keras needs save_weights
        self._began = False

    def discard(self) -> None:
        """Delete the backup folder (the run finished its last epoch: nothing to resume)."""
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    def _save_model(self):
        """Write the backup (Keras calls this at each epoch's end): the weights and the metadata
        Keras' BackupAndRestore writes, through backup_write.save_backup's staged renames."""
        save_backup(Path(self.backup_dir), self._write_weights,
                    {"epoch": self._current_epoch, "batch": self._last_batch_seen},
                    keep_previous=self.double_checkpoint)

    def _write_weights(self, path: Path) -> None:
        """The model's and optimizer's variables, then the layers' random states (rng_state.py)."""
        if self._plan is not False:
            try:
                if self._plan is None or not self._plan.fits(self.model):
                    self._plan = WeightsPlan(self.model)  # the first save, or the variables changed
            except LayoutError:
                self._plan = False
        if self._plan:
            self._plan.write(path)
        else:
            self.model.save_weights(str(path), overwrite=True)
        rng_state.write(self.model, path)

    def on_train_begin(self, logs=None):
        """Restore the model's and optimizer's variables and the epoch from the backup folder, if
        there is one, at the run's first fit; raise SpecError if they cannot all be restored."""
        if self._began:
            return
        self._began = True
        backup = Path(self.backup_dir)
        if not backup.is_dir() or not any(os.scandir(backup)):
            return  # a fresh run
        epoch = read_backup(backup)
        weights = backup / WEIGHTS
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self._load_model()  # Keras' own restore, without its fallback to the .bkp pair
            # Keras raises ValueError, KeyError, OSError... for weights that do not fit
            except Exception as e:
                raise _damaged(weights, f"does not restore the network being trained ({first_line(e)})",
                               backup) from None
        skipped = [str(w.message) for w in caught if "skipping" in str(w.message).lower()
                   or "could not be loaded" in str(w.message).lower()]
        if skipped:
            raise _damaged(weights, f"does not restore everything: {first_line(skipped[0])}", backup)
        restore_random_state(self.model, weights, backup)
        if self.steps_per_epoch and self.model.optimizer is not None:
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            if step != epoch * self.steps_per_epoch:
                raise _damaged(
                    backup / METADATA,
                    f"says {epoch} epochs had finished, but {WEIGHTS} holds the state "
                    f"after {step} training steps ({self.steps_per_epoch} per epoch): the two files are "
                    f"of different epochs",
                    backup,
                )




def log_rows(path: Path, epochs: int) -> list[dict]:
    """The log's rows of the first `epochs` epochs (read only; TruncateLog writes the cut)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["epoch"]) < epochs]


def check_log_rows(paths, epochs: int) -> None:
    """A resumed run's log must hold a row for each finished epoch: a missing or short log would
    leave a gap (epochs 0, 3, 4) in what the run reports. Raises SpecError naming it."""
    if not paths.csv.exists():
        raise SpecError(f"cannot resume: {paths.csv} is missing (the backup in {paths.backup} says {epochs} "
                        f"epoch{'s' * (epochs != 1)} finished)",
                        hint="put the log back, or delete the backup "
                        "folder to start afresh")
    found = sorted({int(r["epoch"]) for r in log_rows(paths.csv, epochs)})
    if found != list(range(epochs)):
        raise SpecError(
            f"cannot resume: {paths.csv} holds epochs {', '.join(map(str, found)) or 'none'}, but the "
                        f"backup in {paths.backup} says {epochs} finished",
                        hint="put the whole log back, or delete "
                        "the backup folder to start afresh")


class TruncateLog(keras.callbacks.Callback):
    """Cut the log back to the first `epochs` epochs when training starts, after the backup (the
    callback before it) restored without error: a row written just before an interruption, whose
    epoch the backup does not hold, would otherwise appear twice; a refused resume keeps the whole
    log. Once per run (the second phase of --unfreeze-after starts training again)."""

    def __init__(self, path: Path, epochs: int):
        super().__init__()
        self.path, self.epochs, self.done = path, epochs, False

    def on_train_begin(self, logs=None):
        """Rewrite the log without the rows of epochs the backup does not hold (the first call only)."""
        if self.done or not self.path.exists():
            return
        self.done = True
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if int(r["epoch"]) < self.epochs]
        if rows and len(kept) != len(rows):
            with self.path.open("w", newline="") as f:
                w = csv.DictWriter(f, list(rows[0].keys()))
                w.writeheader()
                w.writerows(kept)


__all__ = ["read_backup", "CheckedBackup", "WEIGHTS", "METADATA", "TruncateLog", "check_log_rows", "log_rows"]
