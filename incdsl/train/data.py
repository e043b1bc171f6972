"""The training data: synthetic images (any Keras backend) and image folders (tf.data)."""
from __future__ import annotations

import importlib.util
import sys

import numpy as np
import keras

from ..errors import SpecError, UsageError
from .config import TrainConfig


def has_tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


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
