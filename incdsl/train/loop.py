"""The fit loop of `incdsl train`: the data, the model, its callbacks, fit, the saved models.

Pure Keras 3 wherever it can be, so that training on synthetic data (and tools/bench_train.py)
runs on the JAX backend with no TensorFlow installed. TensorFlow is used only where it is the
tool for the job: tf.data for image folders (through keras.utils.image_dataset_from_directory),
tf.distribute for `--strategy mirrored|multiworker`, and the TensorBoard callback. Keras 3.15's fit
fails under MultiWorkerMirroredStrategy with several workers; Placement.prepare works around it
(keras-team/keras#20585). With several workers, the chief (task "chief", or worker 0 without one)
writes the files below; the others write theirs to MODEL.workertemp_N/, removed when they finish.

What a run writes (RunPaths in incdsl/train/config.py), next to `model.keras`:
- model.keras: the inference model (training-only heads left out) of the last epoch. It takes
  raw images, pixel values 0-255 NHWC, and does its own preprocessing. Its class names and how
  it was trained are in an extra entry of the .keras zip, `incdsl.json` (Keras ignores it).
- model.best.keras: the same, for the best epoch (val accuracy, or training loss without
  validation data).
- model.log.csv (one row per finished epoch, with the optimizer's step count and learning rate),
  model.tb/ (TensorBoard), model.backup/ (BackupAndRestore: weights, optimizer state and epoch,
  present only while a run is unfinished; `--resume` continues from it).
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import shutil
import sys
from pathlib import Path

import keras

from ..errors import OptionError, SpecError
from ..text import ParamText, first_line
from ..backends.keras import build_model
from .callbacks import Diverged, KeepBest, StepAndRate, StopOnNonFinite, Throughput
from .config import RESUME, RunPaths, TrainConfig, TrainResult
from .data import SyntheticImages, folder_input, has_tensorflow, steps_per_execution
from .diagnose import GAP, explain_gap
from .determinism import make_deterministic
from .finish import momenta, recalibrate_and_measure, recalibration_batches, refresh_best
from .interrupt import Interrupted, StopOnSignal, deferred_signals
from .precise import PreciseBN
from .progress import PhaseProgbar, keras_verbosity
from . import finetune
from .folders import scan_image_folder
from .heads import head_losses, main_head
from .model import accuracy_key, compile_for_training, with_preprocessing
from .placement import Placement
from .outputs import start_tensorboard
from .resume import CheckedBackup, TruncateLog, check_log_rows, log_rows, read_backup
from .saving import META_FORMAT, copy_weights, read_meta, save_model


def _start_epoch(paths, config: TrainConfig, done: Path, chief: bool = True) -> int | None:
    """The epoch to start from (0 for a fresh run), or None when a resumed run had already finished
    (its model `done` written: the chief's, which a non-chief worker looks at too)."""
    if paths.backup.exists():
        if not config.resume:
            raise OptionError("an interrupted run left its state in {backup}: pass {resume} to continue it, "
                              "or delete that folder to start afresh", words=RESUME, backup=paths.backup)
        epoch = read_backup(paths.backup, paths.csv)  # every file whole, or a SpecError naming the damaged one
        if chief:
            check_log_rows(paths, epoch)
        return epoch  # the log is cut back only once the backup has been restored (TruncateLog)
    if config.resume and done.exists():
        return None
    if config.resume:
        print(f"note: no interrupted run in {paths.backup}; starting afresh", file=sys.stderr)
    for stale in (paths.csv,):
        stale.unlink(missing_ok=True)
    return 0  # model.tb/ is replaced only when this run writes logs there (outputs.start_tensorboard)


def _best_so_far(rows: list[dict], monitor: str, fallback: str) -> float | None:
    key = monitor if rows and monitor in rows[0] else fallback
    values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    if not values:
        return None
    return max(values) if key.endswith("accuracy") else min(values)


def train(net, config: TrainConfig, folder=None) -> TrainResult:
    """The training run itself (after `incdsl.train.train` checked everything): build the
    training model with preprocessing inside, compile it (`model.compile_for_training`), fit on
    synthetic images or the image folder (resuming from the backup with `config.resume`), and
    write the inference model (raw 0-255 pixels in, NHWC), the best epoch's model, the CSV log and
    TensorBoard logs (`config.paths()`); precise BN at the end. Returns a `TrainResult`
    (throughput in images/s). `folder`: scan_image_folder's (classes, files) for an image folder,
    already checked; None for synthetic data. Raises `incdsl.errors.SpecError` when the loss
    becomes NaN or infinite (saying at which step and what was kept) or the data cannot be read."""
    if config.deterministic:
        done = make_deterministic(config.seed, keras.backend.backend())
        print(f"deterministic: {', '.join(done)}")
    placement = Placement(config.strategy, config.precision, config.worker_timeout)
    paths = config.paths()
    scratch = None
    if not placement.chief:
        # TensorFlow's pattern for multi-worker training: the chief writes the outputs; each other
        # worker writes what it must (its BackupAndRestore state) to a folder of its own, removed at
        # the end, kept after an interruption for --resume.
        scratch = paths.output.parent / f"{paths.output.stem}.workertemp_{placement.worker}"
        paths = RunPaths.beside(scratch / paths.output.name)
    paths.output.parent.mkdir(parents=True, exist_ok=True)
    start = _start_epoch(paths, config, done=config.paths().output, chief=placement.chief)
    classes: list[str]
    if start is None:
        final = config.paths()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        meta = read_meta(final.output) or {}
        print(f"{final.output} is complete: nothing to resume")
        return TrainResult(final.output, final.best if final.best.exists() else None, 0, config.epochs, {},
                           float("nan"), 1, meta.get("classes", []))

    heads = head_losses(net, config.aux_weight)
    main = main_head(net)
    head_names = [h.name for h in heads] if len(heads) > 1 else None
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        with placement.scope():
            if config.data == "synthetic":
                classes = [str(i) for i in range(main.shape[-1])]
                steps = config.steps_per_epoch or 10
                train_data = SyntheticImages(steps, config.batch_size, net.input_shape, len(classes), head_names,
                                             seed=config.seed, copy=placement.workers > 1)
                val_split = config.val_split or 0.0
                val_data = (SyntheticImages(max(1, round(steps * val_split)), config.batch_size, net.input_shape,
                                            len(classes), head_names, seed=config.seed + 1) if val_split else None)
                described = f"synthetic data ({steps} batches of {config.batch_size} per epoch)"
            else:
                folder = folder or scan_image_folder(config.data)
                classes = folder[0]
                train_data, val_data, steps, described = folder_input(folder, config, net.input_shape, head_names,
                                                                      placement.replicas, start)

            core = build_model(net, inference=False, seed=config.seed)
            tuned = finetune.prepare(core, net, config)  # --weights, --freeze
            model = with_preprocessing(core, net.input_shape, config.preprocess, [h.name for h in heads])
            per_call = steps_per_execution(config.steps_per_execution, steps, keras.backend.backend(),
                                           placement.strategy is not None)
            compile_for_training(model, heads, config, steps, per_call)
            placement.prepare(model)

        with _policy("float32"):  # the saved model computes in float32, whatever training used
            export_core = build_model(net, inference=True)
            finetune.still_frozen(export_core, net, config)  # so precise BN leaves them be
            export_model = with_preprocessing(export_core, net.input_shape, config.preprocess, [main.name])

        def export(epoch: int, metrics: dict, best: bool = False, path: Path | None = None, copy: bool = True,
                   extra: dict | None = None):
            if not placement.chief:
                return
            if copy:
                copy_weights(core, export_core)
            meta = {"format": META_FORMAT, "network": net.name, "spec": str(net.path), "params": _jsonable(net.params),
                    "classes": classes, "head": main.name, "logits": next(h for h in heads if not h.train_only).from_logits,
                    "preprocess": config.preprocess, "input_shape": list(net.input_shape), "epoch": epoch + 1,
                    "metrics": metrics, "optimizer": config.optimizer, "precision": config.precision, **(extra or {})}
            save_model(export_model, path or (paths.best if best else paths.output), meta)

        acc = accuracy_key(heads)
        monitor = f"val_{acc}" if val_data is not None else "loss"
        prior = log_rows(paths.csv, start) if start else []
        keep_best = KeepBest(export, monitor, "loss", _best_so_far(prior, monitor, "loss"))
        throughput = Throughput(config.batch_size)
        tb_made = False
        n_bn = recalibration_batches(config.bn_recalibrate, steps)
        # precise BN before each validation (precise.py); not under tf.distribute (the end does it there)
        precise = (PreciseBN(model, train_data, n_bn) if n_bn and val_data is not None and placement.strategy is None
                   else None)
        callbacks = [CheckedBackup(str(paths.backup), double_checkpoint=True,
                                   steps_per_epoch=None if config.unfreeze_after is not None else steps),
                     *([TruncateLog(paths.csv, start)] if start and placement.chief else []), StopOnNonFinite(),
                     StepAndRate(), throughput] + ([precise] if precise is not None else [])
        if placement.chief:
            callbacks += [keep_best, keras.callbacks.CSVLogger(str(paths.csv), append=True)]
            if config.tensorboard:
                if has_tensorflow() and importlib.util.find_spec("tensorboard") is not None:
                    start_tensorboard(paths, fresh=not start)  # marked as this run's; an earlier run's replaced
                    tb_made = not start
                    callbacks.append(keras.callbacks.TensorBoard(str(paths.tensorboard), write_graph=False))
                else:
                    print("note: no TensorBoard logs (they need the tensorflow and tensorboard packages)",
                          file=sys.stderr)
        callbacks += list(config.callbacks)

        total = core.count_params()
        print(f"training {net.name} ({total:,} params) on {described}; batch {config.batch_size}, "
              f"{config.optimizer} lr {config.learning_rate:g}, {config.precision}, {placement.describe()}, "
              f"Keras {keras.backend.backend()}")
        for line in tuned:
            print(line)
        if start:
            print(f"resuming after epoch {start} of {config.epochs}")
        verbose = keras_verbosity(config.progress)
        with placement.scope(), deferred_signals() as signalled:
            try:
                history = finetune.fit_in_phases(
                    model, core, net, config,
                    lambda lr: compile_for_training(model, heads, finetune.phase_config(config, lr), steps, per_call),
                    start=start, progress=PhaseProgbar(config.epochs) if verbose else None,
                    x=train_data, validation_data=val_data,
                    steps_per_epoch=steps if config.data != "synthetic" else None,
                    callbacks=callbacks + [StopOnSignal(signalled)], verbose=verbose, shuffle=False)
            except Diverged as d:
                if not paths.backup.exists():  # no epoch finished: its empty logs are of no use
                    paths.csv.unlink(missing_ok=True)
                    if tb_made:  # only a folder this run made
                        shutil.rmtree(paths.tensorboard, ignore_errors=True)
                raise _diverged(d, config, paths) from None
            except (KeyboardInterrupt, Interrupted) as e:
                kept = (f"the finished epochs are kept in {paths.backup}: rerun with --resume to continue"
                        if paths.backup.exists() else "no epoch had finished, so nothing was kept")
                print(f"\n{e if isinstance(e, Interrupted) else 'interrupted'}; {config.output} was not written; {kept}",
                      file=sys.stderr)
                raise _signal_exit(e) from None
            except Exception as e:
                if not paths.backup.exists():  # no epoch finished: its empty logs are of no use
                    paths.csv.unlink(missing_ok=True)
                    if tb_made:  # only a folder this run made
                        shutil.rmtree(paths.tensorboard, ignore_errors=True)
                _data_error(e, config.data)
                raise
        logs = {k: float(v[-1]) for k, v in history.history.items() if v}
        ran = len(next(iter(history.history.values()), []))
        metrics = {k: v for k, v in logs.items() if k.endswith(("accuracy", "loss"))}
        bn = bn_best = None
        if placement.chief and precise is not None:  # the last validation was after recalibration
            export(config.epochs - 1, metrics, extra={"bn_recalibrated": {
                "layers": precise.done.layers, "batches": precise.done.batches, "images": precise.done.images,
                "before_each_validation": True}} if precise.done else None)
        elif placement.chief:
            copy_weights(core, export_core)
            head = main.name if head_names else None

            def recal(m):
                return recalibrate_and_measure(m, train_data, val_data, head, n_bn)

            bn = recal(export_model)
            if bn is not None and bn.after is not None:
                metrics[f"val_{acc}"] = bn.after
                metrics = {k: v for k, v in metrics.items() if not k.startswith("val_") or k.endswith("accuracy")}
            export(config.epochs - 1, metrics, copy=False, extra=bn.meta() if bn else None)
            if bn is not None and paths.best.exists():
                bn_best = refresh_best(export_model, paths.best, config.epochs, bn, read_meta,
                                       lambda path, meta: save_model(export_model, path, meta), recal)
    finally:
        keras.config.set_dtype_policy(policy)
        if placement.strategy is None and placement.replicas > 1:
            keras.distribution.set_distribution(None)

    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"{placement.cluster.name} done: the chief writes {config.output}")
    best = paths.best if paths.best.exists() else None
    ips = throughput.images_per_second
    if placement.chief:
        if precise is not None:
            print(precise.describe())
        if bn is not None:
            print(bn.describe(str(paths.output)))
        if bn_best is not None:
            print(bn_best.describe(str(paths.best)))
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"wrote {paths.output} (epoch {config.epochs}{': ' + shown if shown else ''})")
        if best is not None and keep_best.best is not None:
            print(f"best: {best} ({keep_best.key(logs)} {keep_best.best:.4f}"
                  f"{', before batch norm recalibration' if bn_best is not None else ''}); log: {paths.csv}")
        steps_run = int(logs.get("step", 0)) or ran * steps
        train_acc, val_acc = logs.get(acc), metrics.get(f"val_{acc}")
        far = train_acc is not None and val_acc is not None and train_acc - val_acc >= GAP
        for line in explain_gap(train_acc, val_acc, steps=steps_run, bn_momenta=momenta(export_model),
                                recalibrated=bn is not None or precise is not None, val_images=_count(val_data) if far else 0,
                                classes=len(classes)):
            print(line, file=sys.stderr)
        if math.isfinite(ips):
            print(f"{ips:.1f} images/s")
    if scratch is not None:  # what this worker trained is what the chief wrote
        best = config.paths().best if config.paths().best.exists() else None
    return TrainResult(config.paths().output, best, ran, start, history.history, ips, placement.replicas, classes)


def _signal_exit(e: BaseException) -> BaseException:
    """What an interrupted run raises: KeyboardInterrupt for SIGINT (exit 130), `guard.Terminated`
    for SIGTERM (exit 143), as the signal itself would have."""
    import signal
    from ..guard import Terminated
    if isinstance(e, Interrupted) and e.signum == signal.SIGTERM:
        return Terminated(e.signum)
    return e if isinstance(e, KeyboardInterrupt) else KeyboardInterrupt()


def _count(data) -> int:
    """Images in a validation set (0 without one)."""
    if data is None:
        return 0
    if hasattr(data, "as_numpy_iterator"):
        return sum(int(x.shape[0]) for x, _ in data)
    return sum(int(data[i][0].shape[0]) for i in range(len(data)))


def _diverged(d: Diverged, config: TrainConfig, paths: RunPaths) -> SpecError:
    """The error of a run whose loss became NaN or infinite: where, what to try, what is kept."""
    kept, values = [], {}
    if paths.backup.exists():
        kept.append("the last finished epoch is kept in {backup} ({resume} continues from it)")
        values["backup"] = paths.backup
    if paths.best.exists():
        kept.append("the best model so far is {best}")
        values["best"] = paths.best
    where = "; ".join(kept) if kept else "no epoch had finished, so nothing was kept"
    return SpecError(ParamText("training diverged: the loss is {loss} at step {step} (epoch {epoch}, batch {batch}); "
                               "{output} was not written; " + where, words=RESUME, loss=d.loss, step=d.step,
                               epoch=d.epoch, batch=d.batch, output=config.output, **values),
                     hint=ParamText("use a lower {lr} (this run: {now:g}), e.g. {lr} {lower:g}",
                                    now=config.learning_rate, lower=config.learning_rate / 10))


def _data_error(e: Exception, data: str) -> None:
    """An image that passed the header check but does not decode fails inside tf.data: find it."""
    text = str(e)
    if type(e).__name__ == "NotFoundError" and data != "synthetic":  # tf.io.read_file of a file now gone
        if not Path(data).is_dir():
            raise SpecError(f"the data folder {data} vanished during training",
                            hint=ParamText("keep the folder in place until the run ends; then rerun with {resume}",
                                           words=RESUME)) from None
        gone = next((w.strip(";:,") for w in text.split() if w.startswith(str(data))), "an image")
        raise SpecError(f"{gone} vanished during training",
                        hint=ParamText("rerun with {resume} once the folder is whole", words=RESUME)) from None
    if type(e).__name__ != "InvalidArgumentError" or "DecodeImage" not in text and "decode" not in text:
        return
    skip = ("Graph execution", "Detected at", "<stack", "[[")
    detail = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(skip)), "")
    culprit = _find_damaged(data)
    if culprit is not None:
        raise SpecError(f"{culprit[0]} is a damaged image ({culprit[1]})", hint="remove or replace the file") from None
    raise SpecError(f"an image in {data} could not be decoded ({detail[:200]})") from None


def _find_damaged(folder: str) -> tuple[Path, str] | None:
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


@contextlib.contextmanager
def _policy(name: str):
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)

def _jsonable(params: dict) -> dict:
    return {k: v if isinstance(v, (bool, int, float, str)) or v is None else str(v) for k, v in params.items()}
