"""Each process's part of every global batch, for training across processes on JAX.

Every process follows the same `FolderPlan` (the same split, order and flips: it depends on the
folder and the seed alone), and reads only its own contiguous slice of each global batch: process i
of n takes images [i * b/n, (i + 1) * b/n) of a batch of b. That is the order in which
`jax.make_array_from_process_local_data` (what Keras' JAX trainer calls on each batch under a
`keras.distribution` with `auto_shard_dataset=False`) lays the processes' parts along the batch axis
of a `DataParallel` mesh over `jax.devices()` (process 0's devices first), so the global batch is the
one a single process would train on. Validation batches are filled up to full ones, weighted so
that every validation image counts once (ShardValBatches). Nothing here needs TensorFlow.
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
    the plan's batch first_batch + k), through the run's image cache when it has one."""

    def __init__(self, whole: FolderBatches, shard: Shard):
        super().__init__(whole.plan, whole.shape, whole.heads, whole.first_batch, whole.threads, whole.cache)
        shard.check(whole.plan.batch)
        self.shard = shard

    def batch(self, k: int):
        """Item k, read now in the caller's thread: this process's part of the plan's batch
        first_batch + k (uint8 images NHWC, labels)."""
        indices, flips = self.plan.train_batch(self.first_batch + k)
        s = self.shard.part(len(indices))
        return (read_batch(self.plan, indices[s], flips[s], self.shape, self.cache),
                _labels(self.plan.labels[indices[s]], self.heads))


class ShardValBatches(FolderValBatches):
    """Validation under several replicas on JAX (one process's DataParallel, or this process's part
    of each global batch in a multi-worker job: `shard`), counting every validation image once, as
    one device does.

    Every batch must split evenly over the replicas, so a last partial batch cannot go as it is.
    It is filled up to a full batch (the plan's batch, which splits: `folder_data` checks it) with
    repeats of its own images, and each batch comes with sample weights: 0 for those repeats,
    S / n for every real image (n validation images, S images validated with the repeats). Why that
    weight: Keras weights each batch's mean loss by the batch's size (its loss trackers:
    `update_state(loss, sample_weight=batch size)`, the repeats included), and the mean loss is
    sum(weight * loss) / batch size (the losses' default 'sum_over_batch_size' reduction); so a
    batch adds S / n * (its images' summed loss) over a count of its size, and the epoch's
    val_loss is S / n * (summed loss) / S, the mean over the n images. Accuracy, a weighted mean,
    is unchanged by a common weight and ignores the repeats. Every batch the same size also means
    the test step compiles once. Labels of the repeats are real labels: a weight of 0 times a
    finite loss is 0."""

    def __init__(self, whole: FolderValBatches, shard: Shard):
        super().__init__(whole.plan, whole.shape, whole.heads, whole.plan.batch, False, whole.workers,
                         whole.cache)
        self.shard = shard
        self.batches, self.weights = padded_batches(whole.plan.val, whole.plan.batch)

    def __getitem__(self, i):
        idx, w = self.batches[i], self.weights[i]
        s = self.shard.part(len(idx))
        idx = idx[s]
        return (read_batch(self.plan, idx, None, self.shape, self.cache),
                _labels(self.plan.labels[idx], self.heads), w[s])


def padded_batches(val: np.ndarray, batch: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`val` (image indices) in batches of `batch`, the last one filled up with repeats of its own
    images, and each batch's sample weights (float32): S / n for the n real images, 0 for the
    repeats (S: the images of every batch). See ShardValBatches for why."""
    n = len(val)
    if not n:
        return [], []
    count = -(-n // batch)
    total = count * batch
    batches, weights = [], []
    for b in range(count):
        idx = val[b * batch:(b + 1) * batch]
        real = len(idx)
        idx = np.resize(idx, batch)  # repeats the batch's own images cyclically
        w = np.zeros(batch, "float32")
        w[:real] = total / n
        batches.append(idx)
        weights.append(w)
    return batches, weights


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


def shard_input(train, val, shard: Shard):
    """(train, val) as this process reads them: its part of every global batch of the stream
    `train` (FolderBatches or a PyDataset of global batches) and of the validation batches `val`
    (None stays None; an image folder's: every image once, ShardValBatches)."""
    if isinstance(train, FolderBatches):
        mine = ShardBatches(train, shard)
    else:
        shard.check(len(train[0][0]))
        mine = ShardOf(train, shard)
    if val is None:
        return mine, None
    if isinstance(val, FolderValBatches):
        return mine, ShardValBatches(val, shard)
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
