"""Precise batch norm before each validation, so that every epoch's validation measures the model
the run would save.

With momentum 0.99 (the Keras-matched specs) the moving averages of a short run still sit near
their initial values, and validation with them is at chance on v3-family specs: the best epoch
picked on those numbers was arbitrary (issue 31: MODEL.best.keras 58.9% on the test images
against 87.8% for the final model). Like detectron2's PreciseBN hook (detectron2/engine/hooks.py,
which runs fvcore's update_bn_stats before each evaluation), this callback recalibrates the
training model's batch-norm statistics (`bn.recalibrate`) on N training batches right before Keras
validates (`on_test_begin`, which fit calls from inside its epoch loop), so validation, the CSV
log, TensorBoard, the best checkpoint (exported at `on_epoch_end`, after validation) and the final
report all see the statistics the saved model keeps. The weights are untouched; the moving
averages go on from the recalibrated values.
"""
from __future__ import annotations

import time

import keras

from .bn import Recalibrated, recalibrate, statistics_probe


def _batches(data):
    """Numpy (x, y) batches of a tf.data dataset or a keras.utils.PyDataset, once through."""
    if hasattr(data, "as_numpy_iterator"):
        yield from data.as_numpy_iterator()
    else:
        yield from iter(data)


class PreciseBN(keras.callbacks.Callback):
    """Before each validation inside fit, set every trainable BN layer's moving statistics of
    `model` (the training model) to their average over the first `batches` batches of
    `train_data` (NHWC uint8 images, or (images, labels) pairs; run/data.py's `recalibration`
    stream: the same batches at every epoch, in a resumed run too). `seconds` holds what each
    recalibration took (wall-clock s), `done` what the last one did."""

    def __init__(self, model, train_data, batches: int):
        super().__init__()
        self.target, self.train_data, self.batches = model, train_data, batches
        self.seconds: list[float] = []
        self.done: Recalibrated | None = None
        self._probe = None
        self._trains: tuple[str, ...] = ()
        self._fitting = False

    def on_train_begin(self, logs=None):
        """Recalibrate only inside fit (a separate `evaluate` call measures the model as it is)."""
        self._fitting = True

    def on_train_end(self, logs=None):
        """fit is over."""
        self._fitting = False

    def on_test_begin(self, logs=None):
        """Recalibrate (fvcore's update_bn_stats) and time it, before fit's validation runs."""
        if not self._fitting:
            return
        start = time.perf_counter()
        # built again when what trains changed (--unfreeze-after): the unfrozen BN layers are
        # recalibrated too, and the probe's compiled predict step, whose output shardings under a
        # keras.distribution are those of the variables it was built with, fits the new split
        # (a stale one: "pjit out_shardings ... a list of length 10, but ... of length 13")
        trains = tuple(v.path for v in self.target.trainable_variables)
        if self._probe is None or trains != self._trains:
            self._probe, self._trains = statistics_probe(self.target), trains
        self.done = recalibrate(self.target, _batches(self.train_data), self.batches, probe=self._probe)
        self.seconds.append(time.perf_counter() - start)

    def on_epoch_end(self, epoch, logs=None):
        """Put this epoch's recalibration time (s) in its logs, as `bn_seconds` (the CSV log's
        column)."""
        if logs is not None and self._fitting and self.seconds:
            logs["bn_seconds"] = round(self.seconds[-1], 3)

    def describe(self) -> str:
        """One line for the log: layers, batches and images, and the mean cost per epoch (the first
        recalibration, which builds the probe, left out when there are later ones)."""
        if self.done is None:
            return "precise batch norm: no validation ran"
        timed = self.seconds[1:] or self.seconds
        return (
            f"batch norm: {self.done.layers} layers recalibrated over {self.done.batches} training batches "
            f"({self.done.images} images) before each validation, {sum(timed) / len(timed):.2f} s per epoch"
        )
