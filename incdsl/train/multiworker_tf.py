"""What the workers of a TensorFlow multi-worker job (MultiWorkerMirroredStrategy) say to each other
beyond the gradients: the chief's decisions (the epoch to resume from) and, on `--resume`, the
chief's backup (from_chief.FromChief). Only the chief writes; the others hold nothing on disk, so
a job resumes from the chief's last finished epoch whatever the others had done when one died."""
from __future__ import annotations

import numpy as np


class Broadcast:
    """The chief's integer array (int32 or int64) on every worker of `strategy` (a
    MultiWorkerMirroredStrategy), by one collective all-reduce (`strategy.reduce`, SUM) to which
    only the chief's first replica gives its array and every other replica zeros: exact for
    integers. Every worker must call it with an array of the same shape and dtype, in the same
    order as the others."""

    def __init__(self, strategy, chief: bool):
        self.strategy, self.chief = strategy, chief
        # MultiWorkerMirroredStrategy numbers replicas worker by worker, the same count on each
        self.local = len(strategy.extended.worker_devices)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        import tensorflow as tf
        array = np.asarray(array)
        own = tf.constant(array if self.chief else np.zeros_like(array))
        zeros = tf.zeros_like(own)
        per_replica = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: own if ctx.replica_id_in_sync_group % self.local == 0 else zeros)
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()
