"""Which image of a class folder a training step sees, and how it is read: the same on every Keras backend.

A `FolderPlan` fixes, from the folder and the seed alone, everything random about the data: the
validation split, each epoch's order and each image's horizontal flip. Both readers follow it:
- `incdsl.train.data.FolderBatches` (JAX, PyTorch) decodes with Pillow in Keras PyDataset worker
  threads;
- `incdsl.train.data.tf_folder_datasets` (TensorFlow) decodes with tf.io in tf.data's map.
So a run on JAX and one on TensorFlow train on the same images in the same order; the pixels agree
to within the two JPEG/PNG decoders' and resamplers' rounding (a level or two of 255).

The order is numpy's: `default_rng(seed)` shuffles the files once for the split (the last
`int(n * val_split)` go to validation, as Keras' image_dataset_from_directory counts them), and
`default_rng([seed, epoch])` gives epoch `epoch`'s permutation and flips, so that a resumed run
(`--resume` after epoch e) sees the same epoch e+1 as an uninterrupted one. Training batches are
full (a last partial batch of an epoch is left out, as torch's drop_last and tf.data's
drop_remainder do), which keeps the step's shapes fixed: one compilation, even splits across replicas.

This module imports neither Keras nor TensorFlow (Pillow and numpy only).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..text import ParamText, first_line
from .config import RESUME

MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # channels -> Pillow mode (tf.io.decode_image's channels)


@dataclass(frozen=True)
class FolderPlan:
    """The files of an image folder, split and ordered for training.

    `train` and `val` are arrays of indices into `paths`/`labels` (labels: the class index, classes in
    sorted sub-folder order). `batch` is the training batch: `batch_size`, or all training images
    when there are fewer. `steps` is the number of full batches per epoch."""
    root: Path
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray  # int32, one per path
    train: np.ndarray
    val: np.ndarray
    batch: int
    seed: int
    augment: bool

    @property
    def steps(self) -> int:
        """Training batches per epoch: the full batches of the training split (a last partial batch
        is dropped), at least 1."""
        return max(1, len(self.train) // self.batch)

    def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Epoch `epoch`'s training images (indices into paths, the full batches' worth) and flips."""
        rng = np.random.default_rng([self.seed, epoch])
        order = self.train[rng.permutation(len(self.train))][: self.steps * self.batch]
        flips = rng.random(len(order)) < 0.5 if self.augment else np.zeros(len(order), bool)
        return order, flips

    def train_batch(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch `k` of the endless stream of epochs 0, 1, ...: (indices, flips). A run resumed
        after `e` epochs of `s` steps continues at batch e * s."""
        epoch, j = divmod(k, self.steps)
        order, flips = self.epoch(epoch)
        s = slice(j * self.batch, (j + 1) * self.batch)
        return order[s], flips[s]

    def val_batches(self, batch_size: int, drop_remainder: bool = False) -> list[np.ndarray]:
        """The validation images in a fixed order, in batches of `batch_size` (a last smaller one
        unless `drop_remainder`, which replicas that must split every batch evenly need)."""
        n = len(self.val)
        ends = range(batch_size, n + (0 if drop_remainder else batch_size), batch_size)
        return [self.val[e - batch_size:min(e, n)] for e in ends if e - batch_size < n]


def plan_folder(root: str | Path, classes: list[str], files: list[list[Path]], batch_size: int,
                val_split: float, seed: int, augment: bool = True) -> FolderPlan:
    """The plan for scan_image_folder's (classes, files): files in class order, shuffled once by `seed`,
    the last int(n * val_split) of them held out for validation."""
    paths = tuple(str(p) for group in files for p in group)
    labels = np.concatenate([np.full(len(g), i, "int32") for i, g in enumerate(files)])
    order = np.random.default_rng(seed).permutation(len(paths))
    n_val = int(len(paths) * val_split)
    train, val = order[:len(paths) - n_val], order[len(paths) - n_val:]
    return FolderPlan(Path(root), tuple(classes), paths, labels, train, val, min(batch_size, len(train)),
                      seed, augment)


def read_image(path: str | Path, size: tuple[int, int], channels: int,
               root: Path | None = None) -> np.ndarray:
    """One image as uint8 pixels (height, width, channels): decoded by Pillow, converted to the
    channels (grey replicated, alpha dropped), resized with Pillow's bilinear filter (antialiased when
    shrinking, as tf.image.resize(antialias=True)). Raises DataError naming the file when it is
    gone (naming the folder when the whole folder is) or does not decode: it is read while the run
    goes on, after the folder was checked."""
    from PIL import Image, UnidentifiedImageError

    h, w = size
    try:
        with Image.open(path) as im:
            if im.mode != MODES[channels]:
                im = im.convert(MODES[channels])
            if im.size != (w, h):
                im = im.resize((w, h), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        if root is not None and not root.is_dir():
            raise DataError(f"the data folder {root} vanished during training (at {path})",
                            hint=ParamText(
                                "keep the folder in place until the run ends; then rerun with {resume}",
                                           words=RESUME)) from None
        raise DataError(f"{path} vanished during training",
                        hint=ParamText("rerun with {resume} once the folder is whole",
                                       words=RESUME)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path} is a damaged image ({first_line(e)})",
                        hint="remove or replace the file") from None
    return arr[..., None] if arr.ndim == 2 else arr


def read_batch(plan: FolderPlan, indices: np.ndarray, flips: np.ndarray | None, shape,
               cache=None) -> np.ndarray:
    """uint8 images (batch, height, width, channels) for `indices`, flipped where `flips` says;
    through `cache` (an image_cache.DecodedImages: each file decoded once) when given."""
    h, w, c = shape
    out = np.empty((len(indices), h, w, c), np.uint8)
    for n, i in enumerate(indices):
        img = cache.image(i) if cache is not None else read_image(plan.paths[i], (h, w), c, plan.root)
        out[n] = img[:, ::-1] if flips is not None and flips[n] else img
    return out


def default_workers() -> int:
    """Reader threads when --workers is not given: every core, at most 16."""
    return max(1, min(os.cpu_count() or 1, 16))


__all__ = ["FolderPlan", "plan_folder", "read_image", "read_batch", "default_workers", "MODES"]
