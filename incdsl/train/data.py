"""The input pipeline of `incdsl train`: batches of uint8 pixels that keep the device busy.

Pixels travel as uint8 (4x fewer bytes than float32) and become floats on the device, inside the
model's own preprocessing layer. Nothing copies a whole batch on the host per step. The backends'
machinery overlaps loading, transfer and compute:
- image folders on TensorFlow: tf.data (tf.io decoding in a parallel map, prefetch);
- image folders on JAX and PyTorch: a Keras PyDataset whose threads (its own) run Pillow (it releases
  the GIL while it decodes and resizes, so threads scale with cores without forking a process that
  JAX's threads run in), each file decoded once and kept in memory while the folder fits a budget
  (incdsl/train/image_cache.py), then Keras' JAX trainer puts the next batch on the device while the current
  step runs (JAXEpochIterator._one_batch_ahead_iterator; on GPUs) or lays it out over the devices
  under keras.distribution;
- synthetic data: a few uint8 batches made once and served as they are.
Both folder readers follow one `incdsl.train.images.FolderPlan`: same split, order and flips.
"""
from __future__ import annotations

import importlib.util
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from ..errors import SpecError
from ..text import ParamText
from .images import FolderPlan, read_batch


def has_tensorflow() -> bool:
    """Whether TensorFlow is installed (found, not imported): tf.data readers are used only when it
    is."""
    return importlib.util.find_spec("tensorflow") is not None


def _labels(y, heads: list[str] | None):
    return y if heads is None else {h: y for h in heads}


class SyntheticImages(keras.utils.PyDataset):
    """Random uint8 images (pixel values 0-255) and int32 labels, as (image batch, labels per head).

    A few batches are made once and served in turn: the point is to exercise the model, not the
    random number generator. `copy=True` hands out fresh copies (needed under TF's
    MultiWorkerMirroredStrategy, whose input pipeline writes into the arrays it is handed: seen with
    TF 2.21, half of a pooled batch overwritten after one epoch); otherwise no per-step copy."""

    def __init__(self, batches: int, batch_size: int, shape, classes: int, heads: list[str] | None,
                 seed: int = 0, pool: int = 4, copy: bool = False):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.batches, self.copy = batches, copy
        self.pool = []
        for _ in range(min(pool, batches)):
            x = rng.integers(0, 256, size=(batch_size, *shape), dtype=np.uint8)
            y = rng.integers(0, classes, size=(batch_size,)).astype("int32")
            self.pool.append((x, _labels(y, heads)))

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, i):
        x, y = self.pool[i % len(self.pool)]
        if not self.copy:
            return x, y
        return x.copy(), (y.copy() if not isinstance(y, dict) else {h: v.copy() for h, v in y.items()})


class FolderBatches(keras.utils.PyDataset):
    """The training images of a FolderPlan as an endless stream of uint8 batches (item k is the plan's
    batch first_batch + k), decoded by Pillow in `workers` threads (each file once with `cache`, an
    image_cache.DecodedImages; every epoch without). Endless so
    that Keras keeps one iterator across epochs (fit is called with steps_per_epoch=plan.steps) and
    the batch index alone says which epoch it belongs to.

    The threads are this class's own (`_Ahead`), not Keras' PyDataset workers: Keras' enqueuer
    hands out the indices of an endless dataset from one counter shared by every iterator made
    from it, so the batch fit takes to build the model (JAX trainer's `_symbolic_build`) used up
    item 0 and training began at item 1 with two or more workers, at item 0 with one: --workers
    changed the numbers. Here Keras reads items in order in its own thread (workers=1: no
    enqueuer, each iterator counts from 0), and item k is the same batch whatever the threads."""

    def __init__(self, plan: FolderPlan, shape, heads: list[str] | None, first_batch: int = 0,
                 workers: int = 1, cache=None, read_ahead_below: int | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.plan, self.shape, self.heads, self.first_batch = plan, tuple(shape), heads, first_batch
        self.cache, self.threads = cache, workers
        # precise BN's stream reads items 0..N-1 and no further: nothing read ahead past them
        self._ahead = _Ahead(self.batch, workers, max(4, 2 * workers), read_ahead_below)

    @property
    def num_batches(self):
        """None: the stream is endless (keras.utils.PyDataset's convention), so fit needs
        steps_per_epoch."""
        return None

    def batch(self, k: int):
        """Item k, read now in the caller's thread: (uint8 images NHWC, labels)."""
        indices, flips = self.plan.train_batch(self.first_batch + k)
        return (read_batch(self.plan, indices, flips, self.shape, self.cache),
                _labels(self.plan.labels[indices], self.heads))

    def __getitem__(self, k):
        return self._ahead.get(k)

    def seek(self, batch: int) -> None:
        """Make item 0 the plan's batch `batch` from now on (see `seek`); what was read ahead is
        dropped."""
        old, self.first_batch = self._ahead, batch
        self._ahead = _Ahead(self.batch, old.threads, old.depth, old.below)
        old.close()


class _Ahead:
    """`read(k)` for k = 0, 1, 2, ... computed ahead in `threads` threads: get(k) returns read(k)
    (raising what it raised) and starts reading k+1 ... k+depth (those below `below` only, when
    given). A pure `read` makes the results independent of the threads; a reader that goes back
    is served too, the batches read ahead for the other kept while they are few."""

    def __init__(self, read, threads: int, depth: int, below: int | None = None):
        self.read, self.threads, self.depth, self.below = read, threads, depth, below
        self.pool = None  # made on first use: a dataset that is never read starts no thread
        self.pending: dict[int, object] = {}
        self.lock = threading.Lock()

    def get(self, k: int):
        if self.threads <= 1:
            return self.read(k)
        with self.lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="incdsl-reader")
            future = self.pending.pop(k, None) or self.pool.submit(self.read, k)
            last = k + 1 + self.depth if self.below is None else min(k + 1 + self.depth, self.below)
            for j in range(k + 1, last):
                if j not in self.pending:
                    self.pending[j] = self.pool.submit(self.read, j)
            # keep what was read ahead near k, and one other reader's window (see the docstring)
            for j in sorted(self.pending, key=lambda j: abs(j - k))[2 * self.depth:]:
                self.pending.pop(j).cancel()
        return future.result()

    def close(self) -> None:
        """Cancel what was read ahead and let the threads end."""
        with self.lock:
            for future in self.pending.values():
                future.cancel()
            self.pending.clear()
            if self.pool is not None:
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = None


def seek(stream, batch: int) -> None:
    """Make the next pass over the training `stream` (what `folder_data` or `SyntheticImages`
    made) start at the plan's batch `batch`. Keras makes a new iterator for each fit, which starts
    a stream at its item 0: the second phase of --unfreeze-after must go on where the first
    stopped, as an uninterrupted epoch count and a resumed run do, not read the first phase's
    batches again. Synthetic batches are the same every epoch: nothing to move."""
    move = getattr(stream, "seek", None) or getattr(stream, "incdsl_seek", None)
    if move is not None:
        move(batch)


class FolderValBatches(keras.utils.PyDataset):
    """The validation images of a FolderPlan, in its fixed order, unflipped (through `cache` as
    FolderBatches)."""

    def __init__(self, plan: FolderPlan, shape, heads: list[str] | None, batch_size: int,
                 drop_remainder: bool,
                 workers: int = 1, cache=None):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.plan, self.shape, self.heads, self.cache = plan, tuple(shape), heads, cache
        self.batches = plan.val_batches(batch_size, drop_remainder)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i):
        idx = self.batches[i]
        return read_batch(self.plan, idx, None, self.shape, self.cache), _labels(self.plan.labels[idx],
                                                                                 self.heads)


def tf_folder_datasets(plan: FolderPlan, shape, heads: list[str] | None, first_batch: int, val_batch: int,
                       drop_remainder: bool, recalibration_batches: int):
    """The same streams and validation set as FolderBatches / FolderValBatches, as tf.data
    pipelines: tf.io decodes and tf.image.resize (bilinear, antialiased: Pillow's filter) in a
    parallel, deterministic map, then prefetch. The plan's order comes from a generator of index
    batches. Returns (training stream from `first_batch`, validation set or None, precise BN's
    stream: the first `recalibration_batches` batches of the plan)."""
    import tensorflow as tf

    h, w, c = shape
    paths = tf.constant(plan.paths)
    labels = tf.constant(plan.labels)

    def load(i, flip):
        img = tf.io.decode_image(tf.io.read_file(paths[i]), channels=c, expand_animations=False)
        img.set_shape([None, None, c])
        img = tf.image.resize(img, (h, w), method="bilinear", antialias=True)
        img = tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)
        img = tf.cond(flip, lambda: tf.reverse(img, [1]), lambda: img)
        return img, labels[i]

    auto = tf.data.AUTOTUNE

    def batches(start: list[int]):
        """The plan's batches from start[0], read as each new iterator begins."""
        def stream():
            k = start[0]
            while True:
                yield plan.train_batch(k)
                k += 1
        indices = tf.data.Dataset.from_generator(stream, output_signature=(tf.TensorSpec([None], tf.int64),
                                                                           tf.TensorSpec([None], tf.bool)))
        return (indices.unbatch().map(load, num_parallel_calls=auto, deterministic=True).batch(plan.batch)
                .map(lambda x, y: (x, _labels(y, heads))))

    start = [first_batch]  # `seek` moves it
    train = batches(start).prefetch(auto)
    train.incdsl_seek = lambda batch: start.__setitem__(0, batch)  # data.seek
    recalibration = batches([0]).take(recalibration_batches).prefetch(auto)
    val = None
    batches = plan.val_batches(val_batch, drop_remainder)
    if batches:
        idx = np.concatenate(batches)
        val = (tf.data.Dataset.from_tensor_slices(idx).map(lambda i: load(i, tf.constant(False)),
                                                           num_parallel_calls=auto, deterministic=True)
               .batch(val_batch).map(lambda x, y: (x, _labels(y, heads))).prefetch(auto))
    return train, val, recalibration


def folder_data(plan: FolderPlan, shape, heads: list[str] | None, first_batch: int, replicas: int,
                workers: int,
                reader: str, cache=None, recalibration_batches: int = 0):
    """(training stream from the plan's batch `first_batch`, validation data or None, precise BN's
    stream: the plan's first `recalibration_batches` batches and no more read) for `reader`
    "tf.data" or "pillow" (sharing `cache`, an image_cache.DecodedImages, or decoding every epoch
    without one). With several
    replicas every batch must split evenly: on tf.data a last partial validation batch is left out,
    and a validation set smaller than one batch is left out altogether (with a note); the Pillow
    reader's validation batches keep every image, and the placement fills the last one up for
    several replicas (placement.py, shard.ShardValBatches)."""
    drop = replicas > 1 and reader == "tf.data"
    if drop and 0 < len(plan.val) < plan.batch:
        print(f"note: {len(plan.val)} validation image(s), less than a batch of {plan.batch}: left out under "
              f"{replicas} replicas (use a smaller --batch-size)", file=sys.stderr)
    if replicas > 1 and plan.batch % replicas:
        raise SpecError(f"a training batch of {plan.batch} images does not split over {replicas} replicas",
                        hint=ParamText("use a {batch_size} that is a multiple of {replicas}",
                                       replicas=replicas))
    if reader == "tf.data":
        return tf_folder_datasets(plan, shape, heads, first_batch, plan.batch, drop, recalibration_batches)
    val = FolderValBatches(plan, shape, heads, plan.batch, drop, workers, cache)
    return (FolderBatches(plan, shape, heads, first_batch, workers, cache), (val if len(val) else None),
            FolderBatches(plan, shape, heads, 0, workers, cache, read_ahead_below=recalibration_batches))




def folder_input(folder, config, shape, heads: list[str] | None, replicas: int, start_epoch: int):
    """The image folder `folder` (scan_image_folder's classes, files) as (training stream, validation
    data or None, steps per epoch, a description, the training stream from the plan's first batch
    for precise BN): tf.data on TensorFlow, Pillow in PyDataset threads on JAX and PyTorch (each file
    decoded once while all fit `config.image_cache_mb`: incdsl/train/image_cache.py), all following
    one FolderPlan. A resumed run starts the training stream at the batch where epoch `start_epoch`
    begins."""
    from .finish import recalibration_batches
    from .image_cache import image_cache
    from .images import MODES, default_workers, plan_folder

    classes, files = folder
    if shape[-1] not in MODES:
        raise SpecError(f"the network's input has {shape[-1]} channels; image folders give 1, 3 or 4")
    total = sum(len(f) for f in files)
    val_split = 0.1 if config.val_split is None else config.val_split
    if val_split and int(total * val_split) < 1:
        print(f"note: {total} images are too few for --val-split {val_split}; training without validation",
              file=sys.stderr)
        val_split = 0.0
    plan = plan_folder(config.data, classes, files, config.batch_size, val_split, config.seed, config.augment)
    steps = config.steps_per_epoch or plan.steps
    reader = "tf.data" if keras.backend.backend() == "tensorflow" else "pillow"
    workers = config.workers or default_workers()
    cache = image_cache(plan, shape, config.image_cache_mb) if reader == "pillow" else None
    n_bn = recalibration_batches(config.bn_recalibrate, steps)
    train, val, recalibration = folder_data(plan, shape, heads, start_epoch * steps, replicas, workers,
                                            reader, cache, n_bn)
    how = "tf.data" if reader == "tf.data" else f"Pillow, {workers} thread{'s' * (workers != 1)}"
    if cache is not None:
        how += f", each image decoded once and kept ({cache.nbytes / 2**20:.1f} MiB)"
    described = (f"{config.data} ({total} images, {len(classes)} classes"
                 f"{', validating on ' + format(val_split, 'g') if val is not None else ''}; read by {how})")
    return train, val, steps, described, recalibration


def steps_per_execution(asked: int | None, steps: int, backend: str, distributed: bool) -> int:
    """Training steps per call into the backend: `asked`, or up to 8 where the backend allows it.

    Keras reads the logs back to the host (a device sync) after every call while a callback watches
    batches (ours and BackupAndRestore do), so on a GPU one step per call leaves the device idle while
    the host catches up; several steps per call keep it busy. PyTorch's trainer allows only 1; under a
    tf.distribute strategy we keep 1 (Keras' multi-worker workaround, Placement.prepare, wraps one
    step). The value divides `steps` so that every epoch ends on a call's last step."""
    if backend == "torch" or distributed:
        return 1
    limit = min(asked or 8, steps)
    return max(d for d in range(1, limit + 1) if steps % d == 0)


__all__ = ["has_tensorflow", "folder_input", "SyntheticImages", "FolderBatches", "FolderValBatches",
           "tf_folder_datasets", "folder_data",
           "steps_per_execution"]
