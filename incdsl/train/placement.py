"""Where training runs: one device, tf.distribute (mirrored, multiworker) or keras.distribution."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

import keras
import numpy as np

from ..backends.keras.devices import check_precision
from ..errors import OptionError
from .config import Cluster, read_tf_config

# What each Keras backend can do with --strategy (the README's table says the same).
SUPPORTED = {"tensorflow": ("default", "mirrored", "multiworker"),
             "jax": ("default", "mirrored", "multiworker"),
             "torch": ("default",)}


def check_strategy(kind: str, backend: str) -> None:
    """Raises OptionError (naming `strategy`) when the Keras backend cannot run strategy `kind`: mirrored is
    tf.distribute.MirroredStrategy on TensorFlow and keras.distribution.DataParallel on JAX;
    multiworker is TensorFlow's MultiWorkerMirroredStrategy, or jax.distributed with DataParallel over
    every process's devices (multiworker_jax.py); the PyTorch backend trains on one device."""
    if kind in SUPPORTED.get(backend, ("default",)):
        return
    able = [b for b, kinds in SUPPORTED.items() if kind in kinds]
    raise OptionError(
        "{strategy} {kind} is not available on the {backend} backend (KERAS_BACKEND={backend}); "
                      "it runs on {able}", kind=kind, backend=backend, able=" or ".join(able))


def place(net, config, folder):
    """Where `config`'s run trains: a `Placement`, or a `multiworker_jax.JaxPlacement` for
    strategy multiworker on JAX (which joins the job first: see its errors)."""
    if config.strategy == "multiworker" and keras.backend.backend() == "jax":
        from .multiworker_jax import JaxPlacement
        return JaxPlacement(net, config, folder)
    return Placement(config.strategy, config.precision, config.worker_timeout, config.paths().backup)


class Placement:
    """Where training runs: a tf.distribute strategy, a keras.distribution, or one device. The
    methods after `prepare` are hooks that only multiworker_jax.JaxPlacement fills in."""

    def __init__(self, kind: str, precision: str = "float32", worker_timeout: float = 300.0,
                 backup: Path | None = None):
        """Raises OptionError (nothing written yet) for a strategy the backend lacks (check_strategy)
        or a precision its GPUs cannot compute in (keras_devices.check_precision); a multi-worker
        run waits at most `worker_timeout` seconds for every worker (rendezvous.py). `backup`: the
        chief's `--resume` folder, which it sends to the other workers (from_chief.py)."""
        self.kind, self.strategy, self.replicas, self.chief, self.worker = kind, None, 1, True, 0
        self.cluster: Cluster | None = None
        self.writes = True  # only the chief of a multi-worker job writes: the others hold nothing on disk
        self.backup, self._send = backup, None
        backend = keras.backend.backend()
        check_strategy(kind, backend)
        check_precision(precision, backend)
        if kind == "default":
            return
        if backend == "tensorflow":
            import tensorflow as tf
            if kind == "mirrored":
                self.strategy = tf.distribute.MirroredStrategy()
            else:  # TF_CONFIG names the cluster and this worker
                self.cluster = read_tf_config(os.environ.get("TF_CONFIG"))
                # a bounded wait, in Python (rendezvous.py)
                if self.cluster is not None and self.cluster.tasks > 1:
                    from .rendezvous import wait_for_workers
                    wait_for_workers(json.loads(os.environ["TF_CONFIG"])["cluster"],
                                     (self.cluster.task_type, self.cluster.index), worker_timeout)
                self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
                if self.cluster is not None:
                    self.chief, self.worker = self.cluster.chief, self.cluster.index
                    self.writes = self.chief
                if self.workers > 1:
                    from .multiworker_tf import Broadcast
                    self._send = Broadcast(self.strategy, self.chief)
            self.replicas = self.strategy.num_replicas_in_sync
        else:  # JAX, mirrored: Keras' own data parallelism over every local device (CPU, GPU or TPU)
            devices = keras.distribution.list_devices()
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            self.replicas = len(devices)

    @property
    def workers(self) -> int:
        """How many processes train together: the cluster's chief and workers under multiworker,
        else 1."""
        return self.cluster.tasks if self.cluster is not None else 1

    def scope(self):
        """The context to build and compile the model in: the tf.distribute strategy's scope, or a
        no-op (one device, or keras.distribution, which is set globally)."""
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

    def shard_input(self, data):
        """The data fit reads (run/data.py's RunData): all of it (tf.distribute splits batches itself).
        Under keras.distribution (JAX, mirrored) an image folder's validation batches are filled up
        to full batches, weighted so that every image counts once (shard.ShardValBatches): each batch
        must split evenly over the devices."""
        if self.strategy is None and self.replicas > 1:
            from .data import FolderValBatches
            from .shard import Shard, ShardValBatches
            if isinstance(data.val, FolderValBatches):
                return dataclasses.replace(data, val=ShardValBatches(data.val, Shard(0, 1)))
        return data

    def model_batches(self, batches):
        """`batches` as a model called outside fit takes them: as they are."""
        return batches

    def local(self):
        """A context for models only this process computes with: nothing to change here."""
        return contextlib.nullcontext()

    def agree(self, decide):
        """`decide()` (an int >= 0, or None) of this process; on a multi-worker job the chief's,
        sent to every worker (the others do not call `decide`). When the chief's `decide` raises,
        the chief raises it and the others an OptionError saying so (exit 2: nothing trained)."""
        if self._send is None:
            return decide()
        error = None
        value = 0
        if self.chief:
            try:
                value = decide()
            except Exception as e:  # said by the chief; the others must not wait for it
                error, value = e, -2
        try:
            agreed = int(self._send(np.array([-1 if value is None else value], np.int64))[0])
        except Exception as e:
            self.check_lost(e)
            raise
        if error is not None:
            raise error
        if agreed == -2:
            raise OptionError("the chief of the job refused to start (its error says why); this worker "
                              "({name}) stops too, having written nothing", name=self.cluster.name)
        return None if agreed == -1 else agreed

    def callbacks(self, start: int) -> list:
        """On a resumed multi-worker job, the chief's restored state sent to the others (its own
        BackupAndRestore restores it, checked: resume.CheckedBackup); else nothing."""
        if self._send is None or not start:
            return []
        from .from_chief import FromChief
        return [FromChief(start, self.backup, self.chief, self._send, load_on_chief=False)]

    def alone(self, callback):
        """A callback only this process runs, as it is."""
        return callback

    def check_lost(self, error: BaseException) -> None:
        """After fit failed with `error`: on a TF multi-worker job, when the collective all-reduce
        was aborted because a peer's connection closed (tf.errors.UnavailableError: a worker was
        killed or its machine went away), say so and end this process (exit status 1) at once,
        before Python's teardown trips over TensorFlow's half-closed worker pools."""
        if self.workers < 2 or not isinstance(error, Exception):
            return
        import tensorflow as tf
        if not isinstance(error, tf.errors.UnavailableError):
            return
        text = str(error.message) if hasattr(error, "message") else str(error)
        lines = [ln.strip() for ln in text.splitlines()]
        # Keras' "Graph execution error:" heads the message and says nothing of the cause
        first = next((ln for ln in lines if ln and not ln.startswith("Graph execution error")),
                     type(error).__name__)
        cause = first.split("}}")[-1].strip() or first  # TF's node prefix says nothing to a user
        sys.stdout.flush()
        print(f"incdsl: error: another worker of the job was lost ({cause}); this worker "
              f"({self.cluster.name}) stops. Start every worker again with --resume: the chief's "
              "backup holds the last finished epoch", file=sys.stderr, flush=True)
        os._exit(1)

    def finished(self) -> None:
        """Nothing to say to other processes at the end."""

    def failed(self, error: BaseException) -> None:
        """Nothing to do when the run fails: a TF worker's error ends its collectives (check_lost)."""

    def describe(self) -> str:
        """One line for the log: the strategy's class (MirroredStrategy, DataParallel, 'one
        device'), the replica count and, on a cluster, this worker."""
        name = type(
            self.strategy).__name__ if self.strategy else (
                "DataParallel" if self.replicas > 1 else "one device")
        where = f" on {self.workers} workers (this one {self.cluster.name})" if self.workers > 1 else ""
        return f"{name}, {self.replicas} replica{'s' * (self.replicas != 1)}{where}"
