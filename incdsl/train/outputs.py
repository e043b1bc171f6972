"""What a training run may write, checked before anything trains; its side-output folders made and
replaced only when a run of `incdsl train` made them.

A run writes, beside `model.keras` (`RunPaths`): model.best.keras, model.log.csv, model.tb/ and
model.backup/. None of them may be an input of the run (the spec, a file it `use`s, the weights it
starts from, the data folder: compared by path through links and `..`, and by (st_dev, st_ino) for
hard links), lie inside the data folder (a folder there becomes a class of the next run), or hold
an input. The single files follow `incdsl.io.check_output`. The folders:
- model.tb/ is touched only when TensorBoard logs are written: a fresh run replaces it only when a
  run of `incdsl train` made it (`MARK` inside, naming the same model) and it holds nothing but
  TensorBoard's event files; anything else is refused, naming the folder. `--no-tensorboard` never
  looks at it.
- model.backup/ (Keras' BackupAndRestore) must be a real folder holding only what
  BackupAndRestore writes, since Keras deletes the whole folder when the run ends.
A symbolic link is never a side-output folder. No Keras here: it runs before Keras loads.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from ..errors import OptionError
from ..io import check_output
from .backup_write import STAGED
from .config import RunPaths

MARK = ".incdsl-train.json"  # in model.tb/: made by a run of `incdsl train` writing {"model": name}
# what Keras' BackupAndRestore writes, and the files of a new backup while it is written (backup_write.py)
BACKUP_FILES = frozenset({"latest.weights.h5", "latest.weights.h5.bkp", "training_metadata.json",
                          "training_metadata.json.bkp", *STAGED})


def run_inputs(net, weights: str | Path | None, data: str | Path | None) -> tuple[Path, ...]:
    """Every file and folder a run reads: the spec files (`net.input_files`), `weights` (a path)
    and the data folder (`data`; "synthetic" and None are no path)."""
    found = [Path(p) for p in getattr(net, "input_files", ())]
    if isinstance(weights, (str, os.PathLike)):
        found.append(Path(weights))
    if data is not None and str(data) != "synthetic":
        found.append(Path(data))
    return tuple(found)


def check_run_outputs(paths: RunPaths, inputs: Iterable[str | Path], tensorboard: bool,
                      data: str | Path | None = None) -> None:
    """Refuse, before anything trains, every output of the run at `paths` that would replace or
    delete an input or a file the run did not make: the model, best model and CSV log through
    `incdsl.io.check_output` (an input, a link, a device, a read-only file...), any output inside
    the data folder `data`, and the folders model.tb/ (only when `tensorboard`) and model.backup/
    as the module says. Raises UsageError or OptionError (exit 2) naming the path."""
    inputs = tuple(Path(p) for p in inputs)
    data_dir = _real(data) if data is not None and str(data) != "synthetic" else None
    for f in paths.files():
        check_output(f, inputs=inputs)
        _outside_data(Path(f), data_dir)
    folders = [paths.backup] + ([paths.tensorboard] if tensorboard else [])
    for folder in folders:
        _outside_data(folder, data_dir)
        _check_folder(folder, inputs, data_dir)
    if paths.backup.is_dir():
        extra = sorted(e.name for e in os.scandir(paths.backup) if e.name not in BACKUP_FILES
                       or not e.is_file(follow_symlinks=False))
        if extra:
            raise OptionError(
                "{backup} holds {name}, which an interrupted run does not leave there, and the run "
                              "deletes that folder when it ends; move it, or pick another {output}",
                              backup=paths.backup, name=extra[0])
    if tensorboard:
        check_tensorboard(paths)


def check_tensorboard(paths: RunPaths) -> None:
    """Refuse a model.tb/ that a fresh run must not replace: one without `MARK` naming this model
    (not made by a run of `incdsl train` writing it), or holding anything but TensorBoard event
    files. Raises OptionError naming the folder."""
    tb = paths.tensorboard
    if not tb.is_dir() or tb.is_symlink():
        return  # absent (a link or a file: refused by _check_folder)
    for f in sorted(tb.rglob("*")):
        if f.name == MARK and f.parent == tb:
            continue
        if f.is_symlink() or (not f.is_dir() and not f.name.startswith("events.out.tfevents.")):
            raise OptionError(
                "{tb} holds {name}, which is not a TensorBoard log of an earlier run and a new run "
                              "would delete it; move it, or pick another {output}", tb=tb,
                              name=f.relative_to(tb))
    if _mark_of(tb) != paths.output.name:
        raise OptionError(
            "{tb} was not made by a run of incdsl train writing {model}, and a new run would replace "
                          "it; move it, or pick another {output}", tb=tb, model=paths.output.name)


def start_tensorboard(paths: RunPaths, fresh: bool) -> None:
    """Make model.tb/ for this run's logs, marked as this run's (`MARK`); `fresh`: a new run, which
    first removes the logs of an earlier run of the same model (checked again here: the folder
    may have changed since the run was planned). A resumed run appends to the folder it made."""
    tb = paths.tensorboard
    if fresh and tb.exists():
        check_tensorboard(paths)
        if tb.is_dir() and not tb.is_symlink():
            shutil.rmtree(tb)
    tb.mkdir(parents=True, exist_ok=True)
    if not (tb / MARK).exists():
        (tb / MARK).write_text(json.dumps({"model": paths.output.name}))


def _mark_of(tb: Path) -> str | None:
    try:
        st = os.lstat(tb / MARK)
        if not stat.S_ISREG(st.st_mode):
            return None
        found = json.loads((tb / MARK).read_text())
    except (OSError, ValueError):
        return None
    return found.get("model") if isinstance(found, dict) else None


def _check_folder(folder: Path, inputs: tuple[Path, ...], data_dir: Path | None) -> None:
    """A side-output folder: absent, or a real folder that is not an input and holds none."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return
    except OSError as e:
        raise OptionError("cannot use {folder}: {why}", folder=folder, why=e.strerror or e) from None
    logs = folder.suffix == ".tb"
    say = "cannot write TensorBoard logs to {folder}" if logs else "cannot write {folder}"
    beside = " (the logs go beside the model)" if logs else " (it goes beside the model)"
    if stat.S_ISLNK(st.st_mode):
        raise OptionError(
            say + ": it is a symbolic link (to {target}); the run writes (and deletes) that folder "
                          "itself; move the link, or pick another {output}" + beside,
                          folder=folder, target=os.readlink(folder))
    if not stat.S_ISDIR(st.st_mode):
        raise OptionError(say + ": it is not a folder; move it, or pick another {output}" + beside,
                          folder=folder)
    real = _real(folder)
    for p in inputs:
        r = _real(p)
        if r is not None and real is not None and (r == real or real in r.parents):
            raise OptionError(
                "cannot write {folder}: it holds {given}, an input of this run, which the run could "
                              "delete; pick another {output}", folder=folder, given=p)
    keys = {_key(p) for p in inputs} - {None}
    for f in folder.rglob("*"):
        if _key(f) in keys:
            raise OptionError(
                "cannot write {folder}: {f} in it is an input of this run (a hard link), which the "
                              "run could delete; pick another {output}", folder=folder, f=f)


def _outside_data(path: Path, data_dir: Path | None) -> None:
    """Refuse an output that is, holds or lies inside the data folder `data_dir` (resolved)."""
    real = _real(path)
    if data_dir is None or real is None:
        return
    if real == data_dir or real in data_dir.parents:
        raise OptionError(
            "cannot write {path}: it is or holds the data folder {folder}, an input of this run; "
                          "pick another {output}", path=path, folder=data_dir)
    if data_dir in real.parents:
        raise OptionError(
            "cannot write {path}: it is inside the data folder {folder}, an input of this run (a "
                          "folder there would be read as a class); pick another {output}", path=path,
                          folder=data_dir)


def _real(path) -> Path | None:
    try:
        return Path(os.path.realpath(path))
    except (OSError, RuntimeError, ValueError):
        return None


def _key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


__all__ = ["MARK", "BACKUP_FILES", "run_inputs", "check_run_outputs", "check_tensorboard",
           "start_tensorboard"]
