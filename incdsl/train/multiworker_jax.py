"""`--strategy multiworker` on JAX: processes joined by `jax.distributed`, one
`keras.distribution.DataParallel` mesh over every device of every process.

What each process does (the same command on each; JAX's documentation, "Multi-process environments"):
1. learns the job: `coordinator` ("host:port" of process 0), `num_processes` and `process_id` as given,
   else as JAX detects them itself (JAX_COORDINATOR_ADDRESS, SLURM, Open MPI, TPU pods...: JAX's
   `ClusterEnv.auto_detect_unset_distributed_params`, which `jax.distributed.initialize` runs too);
2. meets the others in Python first (`jax_meet.meet`: a bounded wait, and a refusal naming any
   difference in the spec, data or flags), then calls `jax.distributed.initialize` (CPU collectives by
   Gloo, which multi-process CPU jobs need);
3. sets `keras.distribution.DataParallel(devices=every device, auto_shard_dataset=False)`: the
   variables are replicated on every device, each batch is split over them, and the gradients and
   batch-norm batch statistics are computed over the whole global batch (XLA's collectives);
4. reads only its own part of every global batch (`shard.py`): Keras' JAX trainer assembles the
   global batch from the processes' parts (`jax.make_array_from_process_local_data`).
Process 0 writes every output (model, best checkpoint, log, TensorBoard, the backup for `--resume`);
the others write nothing, and on `--resume` take the restored state from process 0
(`from_chief.FromChief`, by `jax.experimental.multihost_utils.broadcast_one_to_all`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path

import keras
import numpy as np

from ..backends.keras.devices import check_precision
from ..errors import DataError, OptionError, SpecError, UsageError
from .determinism import set_random_seed
from .jax_link import GRACE, Job, check_job
from .jax_meet import meet
from .shard import GlobalBatches, Shard, shard_input

# TrainConfig fields that may differ between processes: where this process writes or how it reads,
# not what is trained (the data folder is compared by its files, the weights file by its bytes)
LOCAL = {"output", "data", "workers", "progress", "verbose", "tensorboard", "callbacks", "worker_timeout",
         "coordinator", "num_processes", "process_id", "follow_symlinks", "weights"}


def _digest(paths) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def fingerprint(net, config, folder) -> dict[str, str]:
    """What every process of a job must agree on, as name -> text: the spec's text with the files it
    uses (a hash), the network's arguments, the data folder's files (class and relative path of each
    image, a hash) and every setting of `config` that decides what is trained (not those in LOCAL)."""
    out = {"spec": f"sha256 {_digest(net.input_files)}" if net.input_files else str(net.path),
           "arguments": json.dumps(net.params, sort_keys=True, default=str)}
    if folder is not None:
        classes, files = folder
        root = Path(config.data)
        names = [f"{c}/{Path(p).relative_to(root) if Path(p).is_relative_to(root) else Path(p).name}"
                 for c, group in zip(classes, files) for p in group]
        out["data contents"] = (f"{len(names)} images in {len(classes)} classes, "
                                f"sha256 {hashlib.sha256(chr(10).join(names).encode()).hexdigest()[:16]}")
    else:
        out["data"] = config.data
    if config.weights:
        out["weights"] = f"sha256 {_digest([config.weights])}"
    for f in dataclasses.fields(config):
        if f.name not in LOCAL:
            out[f.name] = str(getattr(config, f.name))
    return out


def resolve_job(config) -> tuple[Job, list[int] | None]:
    """The job from `config` (coordinator, num_processes, process_id), what is not given taken from
    JAX's own cluster detection. Returns (job, local device ids or None). Raises OptionError when
    the job is still not known, or a value is out of range."""
    check_job(config.coordinator, config.num_processes, config.process_id)
    coordinator, processes, process_id, local = (
        config.coordinator,
        config.num_processes,
        config.process_id,
        None,
    )
    if None in (coordinator, processes, process_id):
        from jax._src.clusters import ClusterEnv  # what jax.distributed.initialize() runs when given nothing
        coordinator, processes, process_id, local = ClusterEnv.auto_detect_unset_distributed_params(
            coordinator, processes, process_id, None, None, int(config.worker_timeout))
    missing = [name for name, v in (("coordinator", coordinator), ("num_processes", processes),
                                    ("process_id", process_id)) if v is None]
    if missing:
        raise OptionError(
            "{strategy} multiworker on JAX needs the job: " + ", ".join("{%s}" % m for m in missing)
                          + " (or a cluster JAX detects by itself: SLURM, Open MPI, Cloud TPU; or "
                          "JAX_COORDINATOR_ADDRESS)")
    check_job(coordinator, processes, process_id)
    return Job(coordinator, int(processes), int(process_id)), local


class JaxPlacement:
    """Training across the processes of a JAX job (the module's docstring). The interface of
    `placement.Placement`: `chief` (process 0: it writes), `replicas` (every device of the job),
    `workers` (processes), `worker` (this one's id)."""

    kind = "multiworker"
    strategy = None
    cluster = None

    def __init__(self, net, config, folder):
        """Raises OptionError (exit 2 on the command line, nothing written) for a job that cannot
        start: settings out of range, the coordinator not reachable, processes missing after
        `config.worker_timeout` seconds, an id taken twice, processes given different specs, data or
        flags; a precision the devices cannot compute in."""
        check_precision(config.precision, "jax")
        job, local = resolve_job(config)
        self.link = meet(job, fingerprint(net, config, folder), config.worker_timeout)
        import jax
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # multi-process on CPUs needs it
        if job.processes > 1:
            try:
                # at the address process 0 chose (jax_link: the coordinator's port stays with meet's listener)
                jax.distributed.initialize(self.link.jax_address, job.processes, job.process_id,
                                           local_device_ids=local,
                                           initialization_timeout=max(1, int(config.worker_timeout)))
            except RuntimeError as e:  # JAX already in use in this process (a computation ran before)
                raise SpecError(f"cannot join the JAX job: {e}",
                                hint="start a fresh process for each process of the job") from None
        self.link.watch()
        self.link.context = (f"; process 0 keeps the finished epochs in {config.paths().backup}: start every "
                             f"process again with --resume to go on")
        # every random draw must agree across processes: JAX checks that what a variable is first set to is
        # the same on every process, and Keras' initializers (overwritten by the seeded weights) and
        # dropout draw from the global seed (Keras' own keras.distribution.initialize agrees on one too);
        # without importing TensorFlow, which Keras' own call does wherever it is installed (a JAX job
        # needs none, and on a GPU machine TensorFlow would start on the GPUs too)
        set_random_seed(config.seed)
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices,
                                                                            auto_shard_dataset=False))
        self.replicas, self.workers, self.worker = len(devices), job.processes, job.process_id
        self.chief = self.writes = job.process_id == 0
        self.shard = Shard(job.process_id, job.processes)
        self.backup = config.paths().backup

    def scope(self):
        """No-op: the distribution is set globally."""
        return contextlib.nullcontext()

    def prepare(self, model) -> None:
        """Nothing to work around on JAX."""

    def describe(self) -> str:
        """One line for the log."""
        return (
            f"DataParallel, {self.replicas} replica{'s' * (self.replicas != 1)} on {self.workers} processes "
                f"(this one process {self.worker})")

    def shard_input(self, data):
        """`data` (run/data.py's RunData) as this process reads it: its part of every global batch of
        the training and validation data (shard.shard_input)."""
        train, val = shard_input(data.train, data.val, self.shard)
        recalibration, _ = shard_input(data.recalibration, None, self.shard)
        return dataclasses.replace(data, train=train, val=val, recalibration=recalibration)

    def model_batches(self, data):
        """`data`'s batches (this process's parts) as global arrays, for a model called outside fit."""
        return GlobalBatches(data)

    def local(self):
        """A context without the distribution: for process 0's models that only it computes with
        (the exported inference model: checkpoints and the final precise BN)."""
        return _without_distribution()

    def agree(self, decide):
        """`decide()` on process 0 (an int, or None), the same answer on every process."""
        from jax.experimental import multihost_utils
        value = decide() if self.chief else 0
        value = -1 if value is None else int(value)
        agreed = int(multihost_utils.broadcast_one_to_all(np.int64(value)))
        return None if agreed == -1 else agreed

    def callbacks(self, start: int) -> list:
        """What every process adds to fit's callbacks: on a resumed run, the restore (FromChief)."""
        if not start:
            return []
        from jax.experimental import multihost_utils

        from .from_chief import FromChief
        def send(array):
            return np.asarray(multihost_utils.broadcast_one_to_all(array))
        return [FromChief(start, self.backup, self.chief, send, load_on_chief=True)]

    def alone(self, callback):
        """`callback`, which only process 0 runs, wrapped to run without the distribution (`Alone`);
        a backup's restore is left to FromChief."""
        from .resume import CheckedBackup
        return Alone(callback, skip=("on_train_begin",) if isinstance(callback, CheckedBackup) else ())

    def check_lost(self, error: BaseException) -> None:
        """After fit failed (with `error`): when a lost process is why (Gloo's collectives fail once a peer's
        connection closes), say which and end this process (exit status 1)."""
        # incdsl's own errors are this process's verdict (a damaged image, a backup that does not
        # load, a loss that diverged), not a collective that failed: said as they are, even when
        # another process already left with the same one (every process of a job diverges at the
        # same step: each says so, not "process 0 ended")
        if isinstance(error, (SpecError, DataError, UsageError)):
            return
        message = self.link.loss_error(GRACE)
        if message is not None:
            # said here and exited at once: a normal exit runs jax.distributed's shutdown, whose barrier
            # waits for the dead process until the heartbeat timeout, then aborts with a stack dump
            import os
            import sys
            sys.stdout.flush()
            print(f"incdsl: error: {message}", file=sys.stderr, flush=True)
            os._exit(1)

    def failed(self, error: BaseException) -> None:
        """This process's run failed with `error`: the others are told why and end at once (their
        message names this process and the error's first line), and this one will end without
        JAX's shutdown barrier (`jax_link.Link.fail`, `exit_if_failed`)."""
        from ..text import first_line
        why = first_line(error)
        self.link.fail(why.removeprefix("error: "))  # incdsl's errors render as "error: ...", hint below

    def finished(self) -> None:
        """This process ended normally (`jax_link.Link.done`)."""
        self.link.done()


@contextlib.contextmanager
def _without_distribution():
    old = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(old)


HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
         "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


class Alone(keras.callbacks.Callback):
    """A callback that only process 0 runs (it writes: the backup, the best checkpoint, logs), run
    without the distribution: whatever it makes (Keras' saving builds a scratch optimizer, whose
    variables would otherwise be put on every process's devices, which needs every process) stays on
    this process. `skip`: hooks not passed on (a backup's restore, which FromChief does)."""

    def __init__(self, inner, skip: tuple[str, ...] = ()):
        super().__init__()
        self.inner = inner
        for hook in HOOKS:
            if hook not in skip:
                setattr(self, hook, self._forward(getattr(inner, hook)))

    @staticmethod
    def _forward(method):
        def call(*args, **kwargs):
            with _without_distribution():
                return method(*args, **kwargs)
        return call

    def set_model(self, model):
        """Give the model to the wrapped callback too."""
        super().set_model(model)
        self.inner.set_model(model)

    def set_params(self, params):
        """Give fit's parameters to the wrapped callback too."""
        super().set_params(params)
        self.inner.set_params(params)
