"""Settings of a training run and their checks: no Keras, TensorFlow or PIL at import time.

The recipe follows the papers where they say something:
- GoogLeNet (arXiv:1409.4842, section 6): SGD with momentum 0.9, the learning rate decreased by 4%
  every 8 epochs, auxiliary losses weighted 0.3 (the spec's `train_output ... loss_weight`).
- Inception v3 (arXiv:1512.00567, section 8): RMSProp with decay 0.9 and epsilon 1.0, learning rate
  0.045 decayed every two epochs by 0.94, gradient clipping at 2.0, label smoothing 0.1 (section 7;
  here only when asked with --label-smoothing).
Weight decay: the papers' L2 term is in the spec (`weight_decay=` on conv, sepconv, dwconv, dense);
`--weight-decay` is Keras' optimizers' decoupled decay (README, Training).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError, UsageError

OPTIMIZERS = ("sgd", "rmsprop", "adam")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multiworker")

# How raw pixels (0-255) become the network's input; the saved model does this itself.
#   inception: [-1, 1], as keras.applications' Inception v3 / Inception-ResNet v2 / Xception;
#   unit: [0, 1];  imagenet: torchvision's per-channel mean/std;  none: raw pixels.
PREPROCESS = ("inception", "unit", "imagenet", "none")


RESUME = {"resume": "resume=True"}  # how the library's messages (ParamText, OptionError) name `resume`


@dataclass(frozen=True)
class Recipe:
    """An optimizer's default learning-rate schedule: the starting rate, multiplied by `decay_rate`
    every `decay_epochs` epochs (staircase, like
    tf.keras.optimizers.schedules.ExponentialDecay(staircase=True)). GoogLeNet Section 6:
    SGD, 0.96 every 8 epochs; Inception-v3 Section 8: RMSProp 0.045, 0.94 every 2 epochs."""
    lr: float
    decay_rate: float  # learning rate multiplied by this ...
    decay_epochs: int  # ... every this many epochs (staircase); rate 1.0 means constant


# Defaults per optimizer: the papers' values (see the module docstring). Caffe's bvlc_googlenet
# solver starts SGD at 0.01; Adam is not from the papers and keeps Keras' default rate.
RECIPES = {
    "sgd": Recipe(lr=0.01, decay_rate=0.96, decay_epochs=8),
    "rmsprop": Recipe(lr=0.045, decay_rate=0.94, decay_epochs=2),
    "adam": Recipe(lr=0.001, decay_rate=1.0, decay_epochs=1),
}


@dataclass
class TrainConfig:
    """Every setting of one `incdsl train` run (the command's options, one field each; see the
    comments for units and defaults). `batch_size` is the global batch in images; `lr` None
    takes the optimizer's `Recipe`; `weight_decay` is the optimizer's decoupled decay
    (AdamW-style, Keras' `weight_decay=`), applied to kernels only. `check_config` says what
    is wrong with one; a value out of range is refused when the config is made (`check_options`:
    `TrainConfig(epochs=0)` raises `OptionError` "epochs must be at least 1")."""
    output: Path = Path("model.keras")  # the trained model (.keras); its logs and checkpoints go beside it
    data: str = "synthetic"  # an image folder, or "synthetic"
    epochs: int = 10
    batch_size: int = 32  # global batch, split across replicas under a distribution strategy
    optimizer: str = "sgd"
    lr: float | None = None  # None: the recipe's
    label_smoothing: float = 0.0
    aux_weight: float | None = None  # None: each training-only head's loss_weight from the spec
    precision: str = "float32"
    jit: bool = False
    strategy: str = "default"
    val_split: float | None = None  # None: 0.1 for an image folder, none for synthetic data
    preprocess: str = "inception"
    augment: bool = True  # random horizontal flips of folder images
    steps_per_epoch: int | None = None  # synthetic data: batches per epoch (default 10)
    workers: int | None = None  # Pillow reader threads (JAX, PyTorch); None: every core, at most 16
    # MiB of decoded images the Pillow reader keeps (each file decoded once; train/image_cache.py); 0: off
    image_cache_mb: float = 1024
    # None: up to 8 where the backend allows (data.steps_per_execution)
    steps_per_execution: int | None = None
    seed: int = 0
    resume: bool = False
    progress: str = "auto"  # Keras' progress output: "bar", "epoch", "off", or "auto" (a bar on a terminal)
    verbose: int | None = None  # deprecated: Keras' fit(verbose=0|1|2), the same as progress off|bar|epoch
    tensorboard: bool = True
    follow_symlinks: bool = False  # follow links in the data folder that lead outside it (train/scan.py)
    callbacks: list = field(default_factory=list)  # extra Keras callbacks (Python API)
    # write MODEL.best.keras at each new best epoch rather than when the run stops: for runs that
    # may be ended from outside before they can write it (an explore trial that ASHA stops)
    best_each_epoch: bool = False
    weight_decay: float = 0.0  # decoupled (the optimizer's weight_decay), on kernels only
    # precise BN batches, before each validation and at the end: "auto" (up to 100), N, or "off"
    bn_recalibrate: int | str = "auto"
    worker_timeout: float = 300.0  # s: multiworker's wait for every worker (TF_CONFIG's or the JAX job's)
    coordinator: str | None = None  # JAX multiworker: process 0's "host:port" (None: JAX detects the cluster)
    num_processes: int | None = None  # JAX multiworker: processes in the job (None: JAX detects them)
    # JAX multiworker: this process, 0 to num_processes - 1 (0 writes the outputs)
    process_id: int | None = None
    deterministic: bool = False  # bit-identical runs for one seed, backend and machine (train/determinism.py)
    weights: str | None = None  # pretrained weights to start from (train/finetune.py)
    freeze: str | None = None  # a layer or module call, or "backbone": it and what it depends on
    unfreeze_after: int | None = None  # epochs before everything trains (second phase)
    unfreeze_lr: float | None = None  # the second phase's rate (default: a tenth of the first's)

    def __post_init__(self) -> None:
        if self.verbose is not None:  # the old name of the progress setting
            if self.verbose not in (0, 1, 2):
                raise OptionError("{verbose} must be 0, 1 or 2 (better: {progress} 'off', 'bar' or 'epoch')")
            self.progress = {0: "off", 1: "bar", 2: "epoch"}[self.verbose]
            self.verbose = None
        check_options(self)

    @property
    def learning_rate(self) -> float:
        """The starting learning rate: `lr` if set, else the optimizer's recipe (0.01 for SGD, 0.045
        for RMSProp, 0.001 for Adam)."""
        return self.lr if self.lr is not None else RECIPES[self.optimizer].lr

    def paths(self) -> "RunPaths":
        """The files and folders this run writes, named after `output` (see `RunPaths`)."""
        return RunPaths.beside(self.output)


@dataclass(frozen=True)
class RunPaths:
    """Everything a run writes, next to its output `model.keras`."""
    output: Path  # model.keras: the inference model (last epoch), raw images in
    best: Path  # model.best.keras: the same for the best epoch
    csv: Path  # model.log.csv: one row per finished epoch
    tensorboard: Path  # model.tb/
    backup: Path  # model.backup/: BackupAndRestore's state while a run is unfinished

    @classmethod
    def beside(cls, output: str | Path) -> "RunPaths":
        """The paths of a run whose model is `output`: `model.keras` gives model.best.keras,
        model.log.csv, model.tb/ and model.backup/."""
        out = Path(output)
        stem = out.with_suffix("") if out.suffix == ".keras" else out
        return cls(out, Path(f"{stem}.best.keras"), Path(f"{stem}.log.csv"), Path(f"{stem}.tb"),
                   Path(f"{stem}.backup"))

    def check_tensorboard(self) -> None:
        """Refuse a TensorBoard folder that a new run must not replace: a link, a file, or a folder
        holding anything but an earlier run's event files (the run deletes and rewrites it).
        Raises `OptionError` (naming `output`; exit 2) before any training starts."""
        tb = self.tensorboard
        if tb.is_symlink() or (tb.exists() and not tb.is_dir()):
            what = "a symbolic link" if tb.is_symlink() else "not a folder"
            raise OptionError(
                "cannot write TensorBoard logs to {tb}: it is {what}; move it, or pick another {output} "
                              "(the logs go beside the model)", tb=tb, what=what)
        if tb.is_dir():
            for f in sorted(tb.rglob("*")):
                if f.is_symlink() or (f.is_file() and not f.name.startswith("events.out.tfevents.")):
                    raise OptionError(
                        "{tb} holds {name}, which is not a TensorBoard log of an earlier run and a "
                                      "new run would delete it; move it, or pick another {output}", tb=tb,
                                      name=f.relative_to(tb))

    def files(self) -> tuple[str, ...]:
        """The single files a run writes (the model keeps the name as given: `out/` is refused)."""
        return str(self.output), str(self.best), str(self.csv)


@dataclass(frozen=True)
class HeadLoss:
    """What the loss of one head needs from the IR."""
    name: str
    units: int
    from_logits: bool
    weight: float
    train_only: bool


@dataclass
class TrainResult:
    """What a training call returns: the inference model written (and the best epoch's, if any),
    epochs run by this call and the epoch it started from, Keras' History.history, training
    throughput in images/s (validation left out, first call left out), the number of
    replicas, and the class names in label order."""
    output: Path
    best: Path | None
    epochs_run: int  # epochs run by this call (fewer than asked when resuming)
    initial_epoch: int
    history: dict  # Keras' History.history of this call
    images_per_second: float
    replicas: int
    classes: list[str]


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker cluster, as TF_CONFIG says (checked here, before
    TensorFlow reads it, so that a mistake is a clear error rather than a hang or a traceback)."""
    tasks: int  # chief and workers together: the processes that train in lockstep
    task_type: str  # "chief" or "worker"
    index: int
    chief: bool  # writes the outputs: the chief task, or worker 0 when there is no chief

    @property
    def name(self) -> str:
        """The task as people say it: 'worker 1', 'chief 0'."""
        return f"{self.task_type} {self.index}"


def read_tf_config(text: str | None) -> Cluster | None:
    """TF_CONFIG, e.g. {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}};
    None when unset (one worker on its own). Raises OptionError (naming `strategy`: the command line
    says `--strategy multiworker`) for a TF_CONFIG that is not such a cluster."""

    def bad(problem: str, **values) -> OptionError:
        return OptionError("TF_CONFIG (the cluster for {strategy} multiworker)" + problem, **values)

    if text is None or not text.strip():
        return None
    try:
        config = json.loads(text)
    except ValueError as e:
        raise bad(" is not JSON: {error}", error=e) from None
    if not isinstance(config, dict):
        raise bad(" must be a JSON object with 'cluster' and 'task'")
    for key in ("cluster", "task"):
        if not isinstance(config.get(key), dict):
            raise bad(" has no '{key}' object", key=key)
    cluster, task = config["cluster"], config["task"]
    for job, addresses in cluster.items():
        if job not in ("chief", "worker", "evaluator", "ps"):
            raise bad(": unknown job '{job}' in 'cluster' (chief, worker)", job=job)
        if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) and ":" in a
                                                                         for a in addresses):
            raise bad(": cluster '{job}' must be a list of \"host:port\" addresses", job=job)
    if "ps" in cluster:
        raise bad(" names parameter servers ('ps'); {strategy} multiworker is all-reduce between a chief "
                  "and workers")
    if len(cluster.get("chief", [])) > 1:
        raise bad(": a cluster has at most one chief")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in ("chief", "worker"):
        raise bad(": task type must be 'chief' or 'worker', got {kind}", kind=json.dumps(kind))
    if kind not in cluster:
        raise bad(": task type '{kind}' has no entry in 'cluster'", kind=kind)
    if not isinstance(index, int) or isinstance(index, bool):
        raise bad(": task index must be an integer, got {index}", index=json.dumps(index))
    if not 0 <= index < len(cluster[kind]):
        n = len(cluster[kind])
        raise bad(
            ": task index {index} is out of range: cluster '{kind}' has {n} address{es} (index 0 to {last})",
                  index=json.dumps(index), kind=kind, n=n, es="es" * (n != 1), last=n - 1)
    tasks = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    chief = kind == "chief" or ("chief" not in cluster and index == 0)
    return Cluster(tasks, kind, index, chief)


def check_config(c: TrainConfig) -> None:
    """Check every setting of `c` before anything heavy is imported; returns None or raises
    `incdsl.errors.UsageError`: `check_options` (an `OptionError` naming the parameter, `epochs must
    be at least 1`; the command line says `--epochs`), a bad TF_CONFIG with strategy 'multiworker',
    an output not ending in `.keras`."""
    check_options(c)
    if c.strategy == "multiworker":
        read_tf_config(os.environ.get("TF_CONFIG"))
    if Path(c.output).suffix != ".keras":
        raise UsageError(f"the output must end in .keras (Keras' format), got {c.output}")


def check_options(c: TrainConfig) -> None:
    """Check the values of `c`'s settings (run when a `TrainConfig` is made): raises
    `incdsl.errors.OptionError` naming the parameter (`epochs must be at least 1`) for an epoch
    count, batch size, seed or step count below its minimum, an unknown optimizer, precision,
    strategy or preprocess, a learning rate not above 0, label smoothing or validation split outside
    [0, 1), a negative aux weight or weight decay, bn_recalibrate neither a batch count (1 or more)
    nor "auto"/"off", or more workers than this machine has cores."""
    if c.epochs < 1:
        raise OptionError("{epochs} must be at least 1")
    from .jax_link import check_job  # the JAX job's settings (no JAX imported)
    check_job(c.coordinator, c.num_processes, c.process_id)
    job = [n for n in ("coordinator", "num_processes", "process_id") if getattr(c, n) is not None]
    if job and c.strategy != "multiworker":
        # otherwise each process of the intended job would train alone and write its own outputs
        raise OptionError(f"{{{job[0]}}} is a setting of a job of several processes: it needs "
                          "{strategy} multiworker")
    if c.seed < 0:
        raise OptionError("{seed} must be 0 or more")
    if c.batch_size < 1:
        raise OptionError("{batch_size} must be at least 1")
    if c.optimizer not in OPTIMIZERS:
        raise OptionError("{optimizer} must be one of {names}", names=", ".join(OPTIMIZERS))
    if c.precision not in PRECISIONS:
        raise OptionError("{precision} must be one of {names}", names=", ".join(PRECISIONS))
    if c.strategy not in STRATEGIES:
        raise OptionError("{strategy} must be one of {names}", names=", ".join(STRATEGIES))
    if c.preprocess not in PREPROCESS:
        raise OptionError("{preprocess} must be one of {names}", names=", ".join(PREPROCESS))
    if c.lr is not None and not c.lr > 0:
        raise OptionError("{lr} must be positive")
    if not 0 <= c.label_smoothing < 1:
        raise OptionError("{label_smoothing} must be in [0, 1)")
    if c.aux_weight is not None and c.aux_weight < 0:
        raise OptionError("{aux_weight} must not be negative")
    if c.val_split is not None and not 0 <= c.val_split < 1:
        raise OptionError("{val_split} must be in [0, 1)")
    if not (math.isfinite(c.weight_decay) and c.weight_decay >= 0):
        raise OptionError("{weight_decay} must be a finite number, 0 or more, got {value}",
                          value=c.weight_decay)
    if c.bn_recalibrate not in ("auto", "off") and (isinstance(c.bn_recalibrate, bool)
                                                   or not isinstance(c.bn_recalibrate,
                                                                     int) or c.bn_recalibrate < 1):
        raise OptionError("{bn_recalibrate} must be a number of batches (1 or more) or 'off', got {value}",
                          value=c.bn_recalibrate)
    if not c.worker_timeout > 0:
        raise OptionError("{worker_timeout} must be positive (seconds)")
    if c.progress not in ("auto", "bar", "epoch", "off"):
        raise OptionError("{progress} must be one of auto, bar, epoch, off, got {value}", value=c.progress)
    if not c.image_cache_mb >= 0:
        raise OptionError("{image_cache_mb} must be 0 (off) or more (MiB), got {value}",
                          value=c.image_cache_mb)
    if c.steps_per_epoch is not None and c.steps_per_epoch < 1:
        raise OptionError("{steps_per_epoch} must be at least 1")
    if c.steps_per_execution is not None and c.steps_per_execution < 1:
        raise OptionError("{steps_per_execution} must be at least 1")
    if c.workers is not None:
        cores = os.cpu_count() or 1
        if c.workers < 1:
            raise OptionError("{workers} must be at least 1")
        if c.workers > cores:
            raise OptionError(
                "{workers} {n} is more than the {cores} core{s} of this machine: the reader threads "
                              "would only wait for each other (use {workers} {cores} or fewer)",
                              n=c.workers, cores=cores, s="s" * (cores != 1))
