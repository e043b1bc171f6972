"""The fit loop of `incdsl train`: the data, the model, its callbacks, fit, the saved models.

Pure Keras 3 wherever it can be, so that training on synthetic data (and tools/bench_train.py)
runs on the JAX backend with no TensorFlow installed. TensorFlow is used only where it is the
tool for the job: tf.data for image folders (through keras.utils.image_dataset_from_directory),
tf.distribute for `--strategy mirrored|multiworker`, and the TensorBoard callback. Keras 3.15's fit
fails under MultiWorkerMirroredStrategy with several workers; Placement.prepare works around it
(keras-team/keras#20585). With several workers, the chief (task "chief", or worker 0 without one)
writes the files below; the others write nothing, and on `--resume` take the chief's state (from_chief.py).

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

import signal
import sys

import keras

from ..backends.keras.build import build_model
from ..errors import OptionError
from . import finetune, keras_saving_fix
from .config import RESUME, RunPaths, TrainConfig, TrainResult
from .data import steps_per_execution
from .determinism import make_deterministic
from .finish import recalibration_batches
from .heads import head_losses, main_head
from .interrupt import deferred_signals
from .model import accuracy_key, compile_for_training, with_preprocessing
from .placement import place
from .resume import check_log_rows, read_backup
from .run.callbacks import make_callbacks
from .run.data import run_data
from .run.export import make_exporter
from .run.fit import fit
from .run.report import finish, report
from .saving import read_meta


def _start_epoch(paths: RunPaths, config: TrainConfig) -> int | None:
    """The epoch to start from (0 for a fresh run), or None when a resumed run had already finished
    (its model written)."""
    if paths.backup.exists():
        if not config.resume:
            raise OptionError("an interrupted run left its state in {backup}: pass {resume} to continue it, "
                              "or delete that folder to start afresh", words=RESUME, backup=paths.backup)
        # every file whole, or a SpecError naming the damaged one
        epoch = read_backup(paths.backup, paths.csv)
        check_log_rows(paths, epoch)
        return epoch  # the log is cut back only once the backup has been restored (TruncateLog)
    if config.resume and paths.output.exists():
        return None
    if config.resume:
        print(f"note: no interrupted run in {paths.backup}; starting afresh", file=sys.stderr)
    for stale in (paths.csv,):
        stale.unlink(missing_ok=True)
    return 0  # model.tb/ is replaced only when this run writes logs there (outputs.start_tensorboard)


def train(net, config: TrainConfig, folder=None) -> TrainResult:
    """The training run itself (after `incdsl.train.train` checked everything): build the
    training model with preprocessing inside, compile it (`model.compile_for_training`), fit on
    synthetic images or the image folder (resuming from the backup with `config.resume`), and
    write the inference model (raw 0-255 pixels in, NHWC), the best epoch's model, the CSV log and
    TensorBoard logs (`config.paths()`); precise BN before each validation, or at the end. Returns a
    `TrainResult` (throughput in images/s). `folder`: scan_image_folder's (classes, files) for an
    image folder, already checked; None for synthetic data. Raises `incdsl.errors.DataError` when
    the loss becomes NaN or infinite (saying at which step and what was kept) or the data cannot be
    read, SpecError for a backup that cannot be restored.

    The steps are modules of incdsl/train/run/: data, export, callbacks, fit, report."""
    if config.deterministic:
        done = make_deterministic(config.seed, keras.backend.backend())
        print(f"deterministic: {', '.join(done)}")
    # the strategy first: MultiWorkerMirroredStrategy configures collective ops, which TensorFlow
    # allows only before its context starts (warm() builds a Layer and an optimizer, which start it)
    # (multiworker on JAX joins the job here, before any JAX computation: multiworker_jax.py)
    placement = place(net, config, folder)
    try:
        return _placed(net, config, folder, placement)
    except BaseException as e:
        placement.failed(e)  # JAX multiworker: tell the others why, and leave without JAX's shutdown
        raise


def _placed(net, config: TrainConfig, folder, placement) -> TrainResult:
    """`train` once the placement is made (a multi-worker job joined)."""
    keras_saving_fix.warm()  # every save and load of the run (this thread's Keras state)
    paths = config.paths()
    if placement.writes:  # the chief of a multi-worker job (the others write nothing)
        paths.output.parent.mkdir(parents=True, exist_ok=True)
    # on a multi-worker job the chief decides for every process
    start = placement.agree(lambda: _start_epoch(paths, config))
    if start is None:
        placement.finished()
        return _already_done(config)

    heads = head_losses(net, config.aux_weight)
    main = main_head(net)
    head_names = [h.name for h in heads] if len(heads) > 1 else None
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        with placement.scope():
            data = run_data(net, config, folder, main.shape[-1], head_names, placement.replicas,
                            placement.workers,
                            start)
            core = build_model(net, inference=False, seed=config.seed)
            tuned = finetune.prepare(core, net, config)  # --weights, --freeze
            model = with_preprocessing(core, net.input_shape, config.preprocess, [h.name for h in heads])
            per_call = steps_per_execution(config.steps_per_execution, data.steps, keras.backend.backend(),
                                           placement.strategy is not None)
            compile_for_training(model, heads, config, data.steps, per_call)
            placement.prepare(model)
            fit_data = placement.shard_input(data)  # JAX multiworker: this process's part of each batch
        with placement.local():  # JAX multiworker: the inference model is process 0's alone
            exporter = make_exporter(net, config, core, heads, data.classes, placement.chief)
        acc = accuracy_key(heads)
        n_bn = recalibration_batches(config.bn_recalibrate, data.steps)
        hold = exporter.hold
        if config.best_each_epoch:
            def hold(epoch, metrics, best=True):
                exporter.hold(epoch, metrics, best)
                exporter.write_held(paths.best)
        run = make_callbacks(model, fit_data, config, paths, placement, start, hold,
                             f"val_{acc}" if data.val is not None else "loss", n_bn)
        print(f"training {net.name} ({core.count_params():,} params) on {data.described}; batch "
              f"{config.batch_size}, "
              f"{config.optimizer} lr {config.learning_rate:g}, {config.precision}, {placement.describe()}, "
              f"Keras {keras.backend.backend()}")
        for line in tuned:
            print(line)
        if start:
            print(f"resuming after epoch {start} of {config.epochs}")
        # a signal while the outputs are written is held until they are whole: fit has deleted the
        # backup by then, so stopping half-way would lose the run
        with deferred_signals() as late:
            history = fit(model, core, net, config, heads, fit_data, per_call, run, start, paths, placement,
                          exporter)
            with placement.local():
                done = finish(history, config, paths, data, exporter, run, main.name if head_names else None,
                              acc, n_bn)
        if late.signum is not None:
            print(f"note: {signal.Signals(late.signum).name} came while the outputs were written: they are "
                  f"complete", file=sys.stderr)
    except Exception as e:
        # multiworker: a process lost while the model is built, restored or exported (fit checks its own)
        placement.check_lost(e)
        raise
    finally:
        keras.config.set_dtype_policy(policy)
        if placement.strategy is None and placement.replicas > 1:
            keras.distribution.set_distribution(None)

    if not placement.writes and placement.cluster is not None:
        print(f"{placement.cluster.name} done: the chief writes the outputs")
    if placement.chief:
        report(done, config, paths, data, run, exporter, acc)
    placement.finished()
    final = config.paths()  # what this worker trained is what the chief wrote
    return TrainResult(final.output, final.best if final.best.exists() else None, done.ran, start,
                       history.history,
                       run.throughput.images_per_second, placement.replicas, list(data.classes))


def _already_done(config: TrainConfig) -> TrainResult:
    """The result of resuming a run that had finished: nothing trained, its model as it is."""
    final = config.paths()
    meta = read_meta(final.output) or {}
    print(f"{final.output} is complete: nothing to resume")
    return TrainResult(final.output, final.best if final.best.exists() else None, 0, config.epochs, {},
                       float("nan"), 1, meta.get("classes", []))
