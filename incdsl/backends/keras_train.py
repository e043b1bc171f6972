"""Keras side of `incdsl train` / `incdsl predict`: data, the model with its preprocessing, losses,
optimizer, callbacks, and the saved model with its class names.

Pure Keras 3 wherever it can be, so that training on synthetic data (and tools/bench_train.py)
runs on the JAX backend with no TensorFlow installed. TensorFlow is used only where it is the
tool for the job: tf.data for image folders (through keras.utils.image_dataset_from_directory),
tf.distribute for `--strategy mirrored|multiworker`, and the TensorBoard callback. Keras 3.15's fit
fails under MultiWorkerMirroredStrategy with several workers; Placement.prepare works around it
(keras-team/keras#20585). With several workers, the chief (task "chief", or worker 0 without one)
writes the files below; the others write theirs to MODEL.workertemp_N/, removed when they finish.

What a run writes (RunPaths in incdsl/train.py), next to `model.keras`:
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
import csv
import importlib.util
import json
import math
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import keras

from ..errors import SpecError, UsageError
from ..io import atomic_path
from ..train import (RECIPES, Cluster, HeadLoss, RunPaths, TrainConfig, TrainResult, check_predict_files, head_losses,
                     main_head, read_tf_config, scan_image_folder)
from .keras import build_model

META_ENTRY = "incdsl.json"  # the extra file inside a saved .keras zip
META_FORMAT = "incdsl-model/1"


def has_tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


# --- preprocessing: part of every model we build, so saved models take raw pixels --------------

def preprocessing_layer(kind: str, channels: int):
    if kind == "inception":
        return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")
    if kind == "unit":
        return keras.layers.Rescaling(1 / 255.0, name="preprocess")
    if kind == "imagenet":
        if channels != 3:
            raise UsageError("--preprocess imagenet needs 3-channel images")
        mean = [255 * m for m in (0.485, 0.456, 0.406)]  # torchvision's ImageNet statistics
        var = [(255 * s) ** 2 for s in (0.229, 0.224, 0.225)]
        return keras.layers.Normalization(mean=mean, variance=var, name="preprocess")
    return None


def with_preprocessing(core, input_shape, kind: str, output_names: list[str]):
    """core(preprocess(raw image)), outputs named after the heads and cast to float32 (what the
    losses want under mixed precision). A single output stays a tensor, several form a dict."""
    inp = keras.Input(tuple(input_shape), name="image")
    layer = preprocessing_layer(kind, input_shape[-1])
    outs = core(layer(inp) if layer is not None else inp)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    outs = [keras.layers.Identity(name=n, dtype="float32")(o) for n, o in zip(output_names, outs)]
    return keras.Model(inp, outs[0] if len(outs) == 1 else dict(zip(output_names, outs)), name=f"{core.name}_train")


# --- losses -------------------------------------------------------------------------------

class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Sparse categorical crossentropy with label smoothing, which Keras' sparse loss lacks."""

    def __init__(self, classes: int, from_logits: bool, label_smoothing: float, name="crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.classes, self.from_logits, self.label_smoothing = classes, from_logits, label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        y = keras.ops.one_hot(labels, self.classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(y, y_pred, from_logits=self.from_logits,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


def make_loss(head: HeadLoss, label_smoothing: float):
    if label_smoothing:
        return SmoothedSparseCrossentropy(head.units, head.from_logits, label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=head.from_logits)


def make_optimizer(name: str, lr: float, steps_per_epoch: int):
    recipe = RECIPES[name]
    rate = lr
    if recipe.decay_rate != 1.0:
        rate = keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=max(1, steps_per_epoch * recipe.decay_epochs), decay_rate=recipe.decay_rate,
            staircase=True)
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9)
    if name == "rmsprop":
        # Keras adds epsilon inside the square root, as TF1's RMSProp (the paper's) did: eps 1.0 as in v3.
        return keras.optimizers.RMSprop(rate, rho=0.9, epsilon=1.0, global_clipnorm=2.0)
    return keras.optimizers.Adam(rate)


def compile_for_training(model, heads: list[HeadLoss], config: TrainConfig, steps_per_epoch: int) -> None:
    main = next(h for h in heads if not h.train_only)
    single = len(heads) == 1
    loss = {h.name: make_loss(h, config.label_smoothing) for h in heads}
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate, steps_per_epoch),
        loss=loss[main.name] if single else loss,
        loss_weights=None if single else {h.name: h.weight for h in heads},
        metrics=({main.name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]} if not single
                 else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]),
        jit_compile=True if config.jit else "auto",
    )


def accuracy_key(heads: list[HeadLoss]) -> str:
    main = next(h for h in heads if not h.train_only)
    return "accuracy" if len(heads) == 1 else f"{main.name}_accuracy"


# --- data -----------------------------------------------------------------------------------

class SyntheticImages(keras.utils.PyDataset):
    """Random images (pixel values 0-255) and labels, as (image batch, labels per head).

    A few batches are made once and served in turn: the point is to exercise the model, not the
    random number generator. Works on every Keras backend (no tf.data)."""

    def __init__(self, batches: int, batch_size: int, shape, classes: int, heads: list[str] | None,
                 seed: int = 0, pool: int = 4):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.batches = batches
        self.pool = []
        for _ in range(min(pool, batches)):
            x = rng.uniform(0, 255, size=(batch_size, *shape)).astype("float32")
            y = rng.integers(0, classes, size=(batch_size,)).astype("int32")
            self.pool.append((x, y if heads is None else {h: y for h in heads}))

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, i):
        # Fresh copies: under MultiWorkerMirroredStrategy (TF 2.21) the input pipeline writes into the
        # arrays it is handed (seen: after one epoch, half of a pooled batch was overwritten, so the
        # second epoch trained on other pixels). One process leaves them alone.
        x, y = self.pool[i % len(self.pool)]
        return x.copy(), (y.copy() if not isinstance(y, dict) else {h: v.copy() for h, v in y.items()})


def _color_mode(channels: int) -> str:
    modes = {1: "grayscale", 3: "rgb", 4: "rgba"}
    if channels not in modes:
        raise SpecError(f"the network's input has {channels} channels; image folders give 1, 3 or 4")
    return modes[channels]


def folder_datasets(folder: str, classes: list[str], counts: list[int], input_shape, heads: list[str] | None,
                    config: TrainConfig, val_split: float, replicas: int = 1):
    """tf.data pipelines from an image folder: resized to the input, shuffled, flipped at random,
    prefetched. Labels are repeated for every head."""
    if not has_tensorflow():
        raise UsageError("training on an image folder reads it with tf.data, which needs TensorFlow "
                         "(pip install tensorflow-cpu); use --data synthetic without it")
    import tensorflow as tf

    h, w, c = input_shape
    total = sum(counts)
    if val_split and int(total * val_split) < 1:
        print(f"note: {total} images are too few for --val-split {val_split}; training without validation",
              file=sys.stderr)
        val_split = 0.0
    common = dict(labels="inferred", label_mode="int", class_names=classes, color_mode=_color_mode(c),
                  batch_size=config.batch_size, image_size=(h, w), shuffle=True, seed=config.seed,
                  interpolation="bilinear", verbose=False)
    if val_split:
        train, val = keras.utils.image_dataset_from_directory(folder, validation_split=val_split, subset="both",
                                                              **common)
    else:
        train, val = keras.utils.image_dataset_from_directory(folder, **common), None
    flip = keras.layers.RandomFlip("horizontal", seed=config.seed) if config.augment and c in (1, 3, 4) else None

    def labels(y):
        return y if heads is None else {n: y for n in heads}

    def train_map(x, y):
        return (flip(x, training=True) if flip is not None else x), labels(y)

    auto = tf.data.AUTOTUNE
    n_val = int(total * val_split)  # as Keras splits
    train = _even_batches(train, total - n_val, config.batch_size, replicas)
    if train is None:
        return None, None
    train = train.map(train_map, num_parallel_calls=auto).prefetch(auto)
    if val is not None:
        val = _even_batches(val, n_val, config.batch_size, replicas)
    if val is not None:
        val = val.map(lambda x, y: (x, labels(y)), num_parallel_calls=auto).prefetch(auto)
    return train, val


def _even_batches(ds, n: int, batch: int, replicas: int):
    """Keras (3.x, TF backend) builds its metrics from the first batch reduced across replicas, which
    fails when that batch does not split evenly (and, in our tests, when it gives one image per
    replica): with several replicas, a set smaller than one batch is left out (None)."""
    if replicas == 1 or n >= batch:
        return ds
    print(f"note: {n} image(s), less than a batch of {batch}: left out under {replicas} replicas "
          f"(use a smaller --batch-size)", file=sys.stderr)
    return None


# --- distribution ----------------------------------------------------------------------------

class Placement:
    """Where training runs: a tf.distribute strategy, a keras.distribution, or one device."""

    def __init__(self, kind: str):
        self.kind, self.strategy, self.replicas, self.chief, self.worker = kind, None, 1, True, 0
        self.cluster: Cluster | None = None
        backend = keras.backend.backend()
        if kind == "default":
            return
        if backend == "tensorflow":
            import tensorflow as tf
            if kind == "mirrored":
                self.strategy = tf.distribute.MirroredStrategy()
            else:  # TF_CONFIG names the cluster and this worker
                self.cluster = read_tf_config(os.environ.get("TF_CONFIG"))
                self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
                if self.cluster is not None:
                    self.chief, self.worker = self.cluster.chief, self.cluster.index
            self.replicas = self.strategy.num_replicas_in_sync
        elif backend == "jax" and kind == "mirrored":
            devices = keras.distribution.list_devices()
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            self.replicas = len(devices)
        else:
            raise UsageError(f"--strategy {kind} is not available on the {backend} backend "
                             f"(mirrored: TensorFlow or JAX; multiworker: TensorFlow)")

    @property
    def workers(self) -> int:
        return self.cluster.tasks if self.cluster is not None else 1

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def prepare(self, model) -> None:
        """Work around Keras 3's fit under MultiWorkerMirroredStrategy with several workers, which
        fails at two points of keras/src/backend/tensorflow/trainer.py (Keras 3.15; upstream
        https://github.com/keras-team/keras/issues/20585 and
        https://github.com/tensorflow/tensorflow/issues/72388):

        1. `_maybe_symbolic_build` (trainer.py:731) reduces the whole first batch, a nested structure,
           with one `strategy.reduce("MEAN", batch, axis=None)`; the collective strategy accepts one
           tensor at a time: "Attempt to convert a value (PerReplica:{...}) with an unsupported type
           to a Tensor". That batch only gives the shapes to build with, so we build from this
           worker's local part of it.
        2. `reduce_per_replica` (trainer.py:841) reduces each logged value with
           `strategy.reduce("MEAN", v, axis=0)`, and the values are scalars: "Invalid reduction
           dimension 0 for input with 0 dimensions". Our train and test steps return each value as a
           1-vector, which the same call then averages over all replicas to a scalar.
        The weights themselves are never in question: the optimizer all-reduces the gradients."""
        if self.workers < 2:
            return  # one worker: Keras takes its single-process path, which works
        import tensorflow as tf
        from keras import tree

        strategy = self.strategy
        train_step, test_step = model.train_step, model.test_step

        def vectors(logs):
            return {k: tf.reshape(v, (1,)) for k, v in logs.items()}

        def local(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        def symbolic_build(iterator=None, data_batch=None):
            if iterator is not None:
                for _, _, batches in iterator:
                    data_batch = tree.map_structure(local, next(batches))
                    break
            with strategy.scope():
                model._symbolic_build(data_batch=data_batch)

        model.train_step = lambda data: vectors(train_step(data))
        model.test_step = lambda data: vectors(test_step(data))
        model._maybe_symbolic_build = symbolic_build

    def describe(self) -> str:
        name = type(self.strategy).__name__ if self.strategy else ("DataParallel" if self.replicas > 1 else "one device")
        where = f" on {self.workers} workers (this one {self.cluster.name})" if self.workers > 1 else ""
        return f"{name}, {self.replicas} replica{'s' * (self.replicas != 1)}{where}"


# --- callbacks -----------------------------------------------------------------------------------

class StepAndRate(keras.callbacks.Callback):
    """Adds the optimizer's step count and learning rate to each epoch's logs (and so to the CSV log):
    after a resume, `step` shows that the optimizer state came back."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        opt = self.model.optimizer
        logs["step"] = int(keras.ops.convert_to_numpy(opt.iterations))
        logs["lr"] = float(keras.ops.convert_to_numpy(opt.learning_rate))  # works for a GPU tensor too


class Throughput(keras.callbacks.Callback):
    """Training images per second, from the end of call `skip` (the first call compiles) to the end of
    the last one (a call runs the model's steps_per_execution steps), leaving out validation. Reading a step's loss waits for asynchronous backends (JAX)."""

    def __init__(self, batch_size: int, skip: int = 1):
        super().__init__()
        self.batch_size, self.skip = batch_size, skip
        self.seen, self.steps, self.paused, self._pending, self._done_in_epoch = 0, 0, 0.0, 0.0, 0
        self.start = self.end = self._test_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._done_in_epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last step of the call: with several steps per execution, one call per N steps.
        _wait(logs)
        now = time.perf_counter()
        ran, self._done_in_epoch = batch + 1 - self._done_in_epoch, batch + 1
        self.seen += 1
        if self.seen == self.skip:
            self.start = now
        elif self.seen > self.skip:
            self.steps += ran
            self.end = now
            self.paused += self._pending  # validation between two timed steps
        self._pending = 0.0

    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        if self._test_start is not None:
            self._pending += time.perf_counter() - self._test_start
        self._test_start = None

    @property
    def images_per_second(self) -> float:
        if not self.steps:
            return float("nan")
        return self.steps * self.batch_size / max(self.end - self.start - self.paused, 1e-9)


def _wait(logs) -> None:
    for v in (logs or {}).values():
        float(v)  # a scalar: blocks until the step that made it is done
        return


class KeepBest(keras.callbacks.Callback):
    """Exports the inference model whenever the monitored value improves."""

    def __init__(self, export, monitor: str, fallback: str, best: float | None):
        super().__init__()
        self.export, self.monitor, self.fallback = export, monitor, fallback
        self.best = best
        self.best_epoch: int | None = None

    def key(self, logs) -> str:
        return self.monitor if self.monitor in logs else self.fallback

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        key = self.key(logs)
        value = logs.get(key)
        if value is None or not math.isfinite(float(value)):
            return
        better = (lambda a, b: a > b) if key.endswith("accuracy") else (lambda a, b: a < b)
        if self.best is None or better(float(value), self.best):
            self.best, self.best_epoch = float(value), epoch
            self.export(epoch, {key: float(value)}, best=True)


# --- saving and loading ---------------------------------------------------------------------

def save_model(model, path: Path, meta: dict) -> None:
    """model.save plus the incdsl.json entry, atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(META_ENTRY, json.dumps(meta, indent=1))


def read_meta(path: str | Path) -> dict | None:
    try:
        with zipfile.ZipFile(path) as z:
            if META_ENTRY not in z.namelist():
                return None
            return json.loads(z.read(META_ENTRY))
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def load_model(path: str | Path):
    """A saved .keras model and its incdsl metadata (None for a model saved elsewhere)."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"no such model file: {path}")
    if not zipfile.is_zipfile(path):
        raise SpecError(f"{path} is not a Keras model (.keras files are zip archives)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many kinds for a damaged archive
        raise SpecError(f"cannot load the model {path}: {type(e).__name__}: {_first_line(e)}") from None
    return model, read_meta(path)


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else ""


# --- the run --------------------------------------------------------------------------------

def _start_epoch(paths, config: TrainConfig, done: Path) -> int | None:
    """The epoch to start from (0 for a fresh run), or None when a resumed run had already finished
    (its model `done` written: the chief's, which a non-chief worker looks at too)."""
    if paths.backup.exists():
        if not config.resume:
            raise UsageError(f"an interrupted run left its state in {paths.backup}: pass --resume to continue it, "
                             f"or delete that folder to start afresh")
        meta = paths.backup / "training_metadata.json"
        epoch = json.loads(meta.read_text())["epoch"] if meta.exists() else 0
        _truncate_csv(paths.csv, epoch)
        return epoch
    if config.resume and done.exists():
        return None
    if config.resume:
        print(f"note: no interrupted run in {paths.backup}; starting afresh", file=sys.stderr)
    for stale in (paths.csv,):
        stale.unlink(missing_ok=True)
    if paths.tensorboard.is_dir():
        shutil.rmtree(paths.tensorboard)
    return 0


def _truncate_csv(path: Path, epochs: int) -> list[dict]:
    """Keep the rows of the first `epochs` epochs (a row written just before an interruption, whose
    epoch the backup does not hold, would otherwise appear twice); return them."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
        fields = list(rows[0].keys()) if rows else None
    kept = [r for r in rows if int(r["epoch"]) < epochs]
    if fields is not None and len(kept) != len(rows):
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fields)
            w.writeheader()
            w.writerows(kept)
    return kept


def _best_so_far(rows: list[dict], monitor: str, fallback: str) -> float | None:
    key = monitor if rows and monitor in rows[0] else fallback
    values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    if not values:
        return None
    return max(values) if key.endswith("accuracy") else min(values)


def train(net, config: TrainConfig, folder=None) -> TrainResult:
    """`folder`: scan_image_folder's (classes, files) for an image folder, already checked."""
    placement = Placement(config.strategy)
    paths = config.paths()
    scratch = None
    if not placement.chief:
        # TensorFlow's pattern for multi-worker training: the chief writes the outputs; each other
        # worker writes what it must (its BackupAndRestore state) to a folder of its own, removed at
        # the end, kept after an interruption for --resume.
        scratch = paths.output.parent / f"{paths.output.stem}.workertemp_{placement.worker}"
        paths = RunPaths.beside(scratch / paths.output.name)
    paths.output.parent.mkdir(parents=True, exist_ok=True)
    start = _start_epoch(paths, config, done=config.paths().output)
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
                                             seed=config.seed)
                val_split = config.val_split or 0.0
                val_data = (SyntheticImages(max(1, round(steps * val_split)), config.batch_size, net.input_shape,
                                            len(classes), head_names, seed=config.seed + 1) if val_split else None)
                described = f"synthetic data ({steps} batches of {config.batch_size} per epoch)"
            else:
                classes, files = folder or scan_image_folder(config.data)
                counts = [len(f) for f in files]
                val_split = 0.1 if config.val_split is None else config.val_split
                train_data, val_data = folder_datasets(config.data, classes, counts, net.input_shape, head_names,
                                                       config, val_split, placement.replicas)
                if train_data is None:
                    raise SpecError(f"{config.data} has fewer training images than one batch of {config.batch_size}, "
                                    f"which {placement.replicas} replicas cannot share", hint="use a smaller --batch-size")
                steps = int(train_data.cardinality())
                if config.steps_per_epoch:  # epochs of a fixed length, cut from an endless stream
                    steps = config.steps_per_epoch
                    train_data = train_data.repeat()
                described = (f"{config.data} ({sum(counts)} images, {len(classes)} classes"
                             f"{', validating on ' + format(val_split, 'g') if val_data is not None else ''})")

            core = build_model(net, inference=False, seed=config.seed)
            model = with_preprocessing(core, net.input_shape, config.preprocess, [h.name for h in heads])
            compile_for_training(model, heads, config, steps)
            placement.prepare(model)

        with _policy("float32"):  # the saved model computes in float32, whatever training used
            export_core = build_model(net, inference=True)
            export_model = with_preprocessing(export_core, net.input_shape, config.preprocess, [main.name])

        def export(epoch: int, metrics: dict, best: bool = False, path: Path | None = None):
            if not placement.chief:
                return
            copy_weights(core, export_core)
            meta = {"format": META_FORMAT, "network": net.name, "spec": str(net.path), "params": _jsonable(net.params),
                    "classes": classes, "head": main.name, "logits": next(h for h in heads if not h.train_only).from_logits,
                    "preprocess": config.preprocess, "input_shape": list(net.input_shape), "epoch": epoch + 1,
                    "metrics": metrics, "optimizer": config.optimizer, "precision": config.precision}
            save_model(export_model, path or (paths.best if best else paths.output), meta)

        acc = accuracy_key(heads)
        monitor = f"val_{acc}" if val_data is not None else "loss"
        prior = _truncate_csv(paths.csv, start) if start else []
        keep_best = KeepBest(export, monitor, "loss", _best_so_far(prior, monitor, "loss"))
        throughput = Throughput(config.batch_size)
        callbacks = [keras.callbacks.BackupAndRestore(str(paths.backup), double_checkpoint=True), StepAndRate(),
                     throughput]
        if placement.chief:
            callbacks += [keep_best, keras.callbacks.CSVLogger(str(paths.csv), append=True)]
            if config.tensorboard:
                if has_tensorflow() and importlib.util.find_spec("tensorboard") is not None:
                    callbacks.append(keras.callbacks.TensorBoard(str(paths.tensorboard), write_graph=False))
                else:
                    print("note: no TensorBoard logs (they need the tensorflow and tensorboard packages)",
                          file=sys.stderr)
        callbacks += list(config.callbacks)

        total = core.count_params()
        print(f"training {net.name} ({total:,} params) on {described}; batch {config.batch_size}, "
              f"{config.optimizer} lr {config.learning_rate:g}, {config.precision}, {placement.describe()}, "
              f"Keras {keras.backend.backend()}")
        if start:
            print(f"resuming after epoch {start} of {config.epochs}")
        with placement.scope():
            try:
                history = model.fit(train_data, validation_data=val_data, epochs=config.epochs,
                                    steps_per_epoch=steps if config.data != "synthetic" and config.steps_per_epoch
                                    else None, callbacks=callbacks, verbose=config.verbose, shuffle=False)
            except KeyboardInterrupt:
                if paths.backup.exists():
                    print(f"\nthe finished epochs are kept in {paths.backup}: rerun with --resume to continue",
                          file=sys.stderr)
                raise
            except Exception as e:
                if not paths.backup.exists():  # no epoch finished: its empty logs are of no use
                    paths.csv.unlink(missing_ok=True)
                    shutil.rmtree(paths.tensorboard, ignore_errors=True)
                _data_error(e, config.data)
                raise
        logs = {k: float(v[-1]) for k, v in history.history.items() if v}
        ran = len(next(iter(history.history.values()), []))
        metrics = {k: v for k, v in logs.items() if k.endswith(("accuracy", "loss"))}
        export(config.epochs - 1, metrics)
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
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"wrote {paths.output} (epoch {config.epochs}{': ' + shown if shown else ''})")
        if best is not None and keep_best.best is not None:
            print(f"best: {best} ({keep_best.key(logs)} {keep_best.best:.4f}); log: {paths.csv}")
        if math.isfinite(ips):
            print(f"{ips:.1f} images/s")
    if scratch is not None:  # what this worker trained is what the chief wrote
        best = config.paths().best if config.paths().best.exists() else None
    return TrainResult(config.paths().output, best, ran, start, history.history, ips, placement.replicas, classes)


def _data_error(e: Exception, data: str) -> None:
    """An image that passed the header check but does not decode fails inside tf.data: find it."""
    text = str(e)
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
    _, files = scan_image_folder(folder)
    for path in (p for group in files for p in group):
        try:
            with Image.open(path) as im:
                im.load()
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for bad data
            return path, str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


@contextlib.contextmanager
def _policy(name: str):
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def copy_weights(src, dst) -> None:
    """Copy by layer name: the Keras backend names layers after IR nodes, in both models."""
    for layer in dst.layers:
        if layer.weights:
            layer.set_weights(src.get_layer(layer.name).get_weights())


def _jsonable(params: dict) -> dict:
    return {k: v if isinstance(v, (bool, int, float, str)) or v is None else str(v) for k, v in params.items()}


# --- prediction ------------------------------------------------------------------------------

def load_images(paths: list[str], shape) -> np.ndarray:
    """Raw images resized as in training (bilinear, no antialiasing: tf.image.resize's default)."""
    from PIL import Image, UnidentifiedImageError

    h, w, c = shape
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(c)
    if mode is None:
        raise SpecError(f"the model's input has {c} channels; images give 1, 3 or 4")
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise SpecError(f"no such image: {p}")
        try:
            with Image.open(path) as im:
                im.load()
                arr = np.asarray(im.convert(mode), dtype="float32")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise SpecError(f"{p} is not a readable image ({_first_line(e) or type(e).__name__})") from None
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.shape[:2] != (h, w):
            arr = keras.ops.convert_to_numpy(
                keras.ops.image.resize(arr, (h, w), interpolation="bilinear", antialias=False))
        out.append(arr)
    return np.stack(out)


def predict(model_path: str, images: list[str], top: int = 5) -> list[list[tuple[str, float]]]:
    check_predict_files(model_path, images)
    model, meta = load_model(model_path)
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or None in shape:
        raise SpecError(f"{model_path} does not take fixed-size images (input {model.input_shape})")
    x = load_images(images, shape)
    y = model.predict(x, verbose=0)
    if isinstance(y, dict):
        y = y[meta["head"]] if meta and meta.get("head") in y else next(iter(y.values()))
    elif isinstance(y, (list, tuple)):
        y = y[0]
    y = np.asarray(y, dtype="float64")
    logits = meta.get("logits") if meta else None
    if logits is None:  # a model from elsewhere: probabilities are non-negative and sum to 1
        logits = not (np.all(y >= 0) and np.allclose(y.sum(-1), 1.0, atol=1e-3))
    if logits:
        y = np.exp(y - y.max(-1, keepdims=True))
        y /= y.sum(-1, keepdims=True)
    names = list(meta["classes"]) if meta and meta.get("classes") else [str(i) for i in range(y.shape[-1])]
    if len(names) != y.shape[-1]:
        raise SpecError(f"{model_path} scores {y.shape[-1]} classes but its metadata names {len(names)}")
    out = []
    for row in y:
        order = np.argsort(-row, kind="stable")[:top]
        out.append([(names[i], float(row[i])) for i in order])
    return out
