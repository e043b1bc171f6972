"""Each process's part of every global batch, for training across processes on JAX.

Every process follows the same `FolderPlan` (the same split, order and flips: it depends on the
folder and the seed alone), and reads only its own contiguous slice of each global batch: process i
of n takes images [i * b/n, (i + 1) * b/n) of a batch of b. That is the order in which
`jax.make_array_from_process_local_data` (what Keras' JAX trainer calls on each batch under a
`keras.distribution` with `auto_shard_dataset=False`) lays the processes' parts along the batch axis
of a `DataParallel` mesh over `jax.devices()` (process 0's devices first), so the global batch is the
one a single process would train on. Nothing here needs TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from ..errors import SpecError
from ..text import ParamText
from .data import FolderBatches, FolderValBatches
from .images import read_batch


@dataclass(frozen=True)
class Shard:
    """Process `index` of `count`: which part of a global batch it reads."""
    index: int
    count: int

    def part(self, n: int) -> slice:
        """This process's slice of a global batch of `n` (n must split evenly: `check`)."""
        size = n // self.count
        return slice(self.index * size, (self.index + 1) * size)

    def check(self, n: int) -> None:
        """Raises SpecError (naming `batch_size`) when a batch of `n` does not split evenly over the
        processes."""
        if n % self.count:
            raise SpecError(f"a batch of {n} images does not split over {self.count} processes",
                            hint=ParamText("use a {batch_size} that is a multiple of {n}", n=self.count))


def _labels(y, heads):
    return y if heads is None else {h: y for h in heads}


class ShardBatches(FolderBatches):
    """FolderBatches that decodes only this process's part of each global batch (item k: its slice of
    the plan's batch first_batch + k)."""

    def __init__(self, plan, shape, heads, first_batch: int, workers: int, shard: Shard):
        super().__init__(plan, shape, heads, first_batch, workers)
        shard.check(plan.batch)
        self.shard = shard

    def __getitem__(self, k):
        indices, flips = self.plan.train_batch(self.first_batch + k)
        s = self.shard.part(len(indices))
        return read_batch(self.plan, indices[s], flips[s], self.shape), _labels(self.plan.labels[indices[s]],
                                                                                self.heads)


class ShardValBatches(FolderValBatches):
    """FolderValBatches that decodes only this process's part of each validation batch (every batch
    full: the last partial one is left out under several replicas)."""

    def __init__(self, whole: FolderValBatches, shard: Shard, workers: int):
        super().__init__(whole.plan, whole.shape, whole.heads, whole.plan.batch, True, workers)
        self.shard = shard

    def __getitem__(self, i):
        idx = self.batches[i]
        idx = idx[self.shard.part(len(idx))]
        return read_batch(self.plan, idx, None, self.shape), _labels(self.plan.labels[idx], self.heads)


class ShardOf(keras.utils.PyDataset):
    """This process's part of each batch of another PyDataset of global batches (synthetic data,
    made in memory: slicing it costs nothing)."""

    def __init__(self, whole, shard: Shard):
        super().__init__()
        self.whole, self.shard = whole, shard

    def __len__(self) -> int:
        return len(self.whole)

    def __getitem__(self, i):
        x, y = self.whole[i]
        s = self.shard.part(len(x))
        return x[s], (y[s] if not isinstance(y, dict) else {h: v[s] for h, v in y.items()})


def shard_input(train, val, shard: Shard, workers: int):
    """(train, val) as this process reads them: its part of every global batch of the stream
    `train` (FolderBatches or a PyDataset of global batches) and of the validation batches `val`
    (None stays None)."""
    if isinstance(train, FolderBatches):
        mine = ShardBatches(train.plan, train.shape, train.heads, train.first_batch, workers, shard)
    else:
        shard.check(len(train[0][0]))
        mine = ShardOf(train, shard)
    if val is None:
        return mine, None
    if isinstance(val, FolderValBatches):
        return mine, ShardValBatches(val, shard, workers)
    return mine, ShardOf(val, shard)


class GlobalBatches:
    """The global batches of `data` (this process's parts), whole on every process, for code that
    calls a model outside fit on every process together (precise BN's `predict_on_batch`, bn.py).
    Each process's part is gathered (`multihost_utils.process_allgather`), so every process holds the
    batch one process would read, and precise BN counts its images and unbiased variance as one
    process does. Keras' JAX trainer then takes each process's copy as that process's part of a
    batch twice the size, the same images once per process: the per-channel means and variances
    precise BN measures are those of the batch itself. Iterating gives (images NHWC, labels),
    NumPy arrays."""

    def __init__(self, data):
        self.data = data

    def __iter__(self):
        from jax.experimental import multihost_utils

        for x, y in iter(self.data):
            yield (
                np.asarray(multihost_utils.process_allgather(x, tiled=True)),
                np.asarray(multihost_utils.process_allgather(y, tiled=True))
                if not isinstance(y, dict)
                else y,
            )
