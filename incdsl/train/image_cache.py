"""Decoded images held in memory, so that the Pillow reader (JAX, PyTorch) decodes each file once per
run rather than once per epoch.

Why (issue 31 item 4, measured with tools/bench_train_vs_keras.py on JAX): decoding every epoch cost
the reader threads about 0.3 s of CPU per epoch of the digits (1,437 PNGs, 75x75) against an epoch of
about 8 s; the plain Keras loop a user writes decodes once into arrays. So does this cache: the
first time an image is read its pixels (exactly what `images.read_image` returns) are kept, and
every later batch copies them from memory, flipped where the plan says; a batch is the same bit for
bit as one decoded from the files.

A folder is cached when all of its decoded images (train and validation: files x height x width x
channels bytes) fit the memory budget (`TrainConfig.image_cache_mb`, 1 GiB by default; 0 turns the
cache off); otherwise every epoch decodes from the files, as before. The array is allocated whole
but filled as images are first read (pages untouched cost no memory), during the first epoch, in
the reader's threads, so the cache adds nothing to a run's start-up.

A file changed or removed after its first read is not read again: the run trains on the images as
they were when it first read them (as tf.data's `Dataset.cache()` and arrays loaded up front do).
An image not yet read (the first epoch) is still read from its file, with the same errors. The
TensorFlow reader (tf.data) does not cache: it decodes every epoch, as Keras'
image_dataset_from_directory does.

This module imports neither Keras nor TensorFlow (numpy only).
"""
from __future__ import annotations

import numpy as np

from .images import FolderPlan, read_image


class DecodedImages:
    """Every image of a FolderPlan as uint8 pixels (height, width, channels), decoded on first use.

    `pixels` is (files, height, width, channels) uint8, `nbytes` its size in bytes. Reader threads
    may fill it at once: an image is marked ready only after its pixels are written, and two
    threads that decode the same image write the same bytes."""

    def __init__(self, plan: FolderPlan, shape):
        h, w, c = shape
        self.plan, self.size, self.channels = plan, (h, w), c
        self.pixels = np.empty((len(plan.paths), h, w, c), np.uint8)
        self.ready = np.zeros(len(plan.paths), bool)

    @property
    def nbytes(self) -> int:
        """Bytes the decoded images take once all are read."""
        return int(self.pixels.nbytes)

    def image(self, i: int) -> np.ndarray:
        """Image `i` of the plan (uint8, height x width x channels): from memory once read, else
        decoded by `images.read_image` (raising its DataError for a file gone or damaged)."""
        if not self.ready[i]:
            self.pixels[i] = read_image(self.plan.paths[i], self.size, self.channels, self.plan.root)
            self.ready[i] = True
        return self.pixels[i]


def image_cache(plan: FolderPlan, shape, budget_mb: float) -> DecodedImages | None:
    """A DecodedImages for `plan`'s images at NHWC `shape` (batch left out) when all of them fit
    `budget_mb` MiB (uint8: files x height x width x channels bytes), else None (decode every
    epoch). A budget of 0 is None."""
    h, w, c = shape
    need = len(plan.paths) * h * w * c
    if budget_mb <= 0 or need > budget_mb * 2**20:
        return None
    return DecodedImages(plan, shape)


__all__ = ["DecodedImages", "image_cache"]
