"""What a run that stopped inside fit raises: a `DataError` for a diverged loss or data that
vanished or does not decode, the signal's own exit for SIGINT and SIGTERM, and what it says about
the files it kept."""
from __future__ import annotations

import signal
from pathlib import Path

from ...errors import DataError
from ...text import ParamText, first_line
from ..callbacks import Diverged
from ..config import RESUME, RunPaths, TrainConfig
from ..folders import scan_image_folder
from ..interrupt import Interrupted


def diverged_error(d: Diverged, config: TrainConfig, paths: RunPaths, has: tuple[bool, bool] | None = None
                   ) -> DataError:
    """The error of a run whose loss became NaN or infinite: where, what to try, what is kept.
    `has`: whether the backup and the best model exist, as the process that writes them found
    (JAX multi-worker: process 0's answer, so that every process says the same); None: look."""
    has_backup, has_best = has if has is not None else (paths.backup.exists(), paths.best.exists())
    kept, values = [], {}
    if has_backup:
        kept.append("the last finished epoch is kept in {backup} ({resume} continues from it)")
        values["backup"] = paths.backup
    if has_best:
        kept.append("the best model so far is {best}")
        values["best"] = paths.best
    where = "; ".join(kept) if kept else "no epoch had finished, so nothing was kept"
    return DataError(
        ParamText("training diverged: the loss is {loss} at step {step} (epoch {epoch}, batch {batch}); "
                               "{output} was not written; " + where, words=RESUME, loss=d.loss, step=d.step,
                               epoch=d.epoch, batch=d.batch, output=config.output, **values),
                     hint=ParamText("use a lower {lr} (this run: {now:g}), e.g. {lr} {lower:g}",
                                    now=config.learning_rate, lower=config.learning_rate / 10))


def interrupted_line(e: BaseException, config: TrainConfig, paths: RunPaths, writes: bool = True) -> str:
    """What an interrupted run prints (stderr): the signal, that the model was not written, and
    what was kept for --resume (`writes`: False on a multi-worker job's process that is not the
    chief, which keeps nothing itself)."""
    if not writes:
        kept = "the chief of the job keeps the finished epochs: start every process again with --resume"
    elif paths.backup.exists():
        kept = f"the finished epochs are kept in {paths.backup}: rerun with --resume to continue"
    else:
        kept = "no epoch had finished, so nothing was kept"
    return f"\n{e if isinstance(e, Interrupted) else 'interrupted'}; {config.output} was not written; {kept}"


def signal_exit(e: BaseException) -> BaseException:
    """What an interrupted run raises: KeyboardInterrupt for SIGINT (exit 130), `errors.Terminated`
    for SIGTERM (exit 143), as the signal itself would have."""
    from ...errors import Terminated
    if isinstance(e, Interrupted) and e.signum == signal.SIGTERM:
        return Terminated(e.signum)
    return e if isinstance(e, KeyboardInterrupt) else KeyboardInterrupt()


def data_error(e: BaseException, data: str) -> DataError | None:
    """The DataError for an exception tf.data raised inside fit (a file or the folder `data` gone,
    an image that passed the header check but does not decode: found with Pillow), or None when `e`
    is none of these."""
    text = str(e)
    if type(e).__name__ == "NotFoundError" and data != "synthetic":  # tf.io.read_file of a file now gone
        if not Path(data).is_dir():
            return DataError(f"the data folder {data} vanished during training",
                             hint=ParamText(
                                 "keep the folder in place until the run ends; then rerun with {resume}",
                                            words=RESUME))
        gone = next((w.strip(";:,") for w in text.split() if w.startswith(str(data))), "an image")
        return DataError(f"{gone} vanished during training",
                         hint=ParamText("rerun with {resume} once the folder is whole", words=RESUME))
    if type(e).__name__ != "InvalidArgumentError" or "DecodeImage" not in text and "decode" not in text:
        return None
    skip = ("Graph execution", "Detected at", "<stack", "[[")
    detail = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(skip)),
                  "")
    culprit = find_damaged(data)
    if culprit is not None:
        return DataError(f"{culprit[0]} is a damaged image ({culprit[1]})", hint="remove or replace the file")
    return DataError(f"an image in {data} could not be decoded ({detail[:200]})")


def find_damaged(folder: str) -> tuple[Path, str] | None:
    """The first image under `folder` that PIL cannot decode in full (slow: only after a failure)."""
    from PIL import Image
    _, files = scan_image_folder(folder, follow_symlinks=True)
    for path in (p for group in files for p in group):
        try:
            with Image.open(path) as im:
                im.load()
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for bad data
            return path, first_line(err)
    return None
