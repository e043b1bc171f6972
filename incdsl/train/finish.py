"""The end of a run: precise batch norm on the saved models, validation accuracy before and after.

Only the chief (the one process that writes the outputs) runs it. It works on the inference model
(raw images in, float32, one device), so it is the same on every Keras backend and under any
`--strategy`: the statistics it sets are those the saved model uses.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from .bn import Recalibrated, bn_layers, recalibrate

DEFAULT_BN_BATCHES = 100  # fvcore/detectron2's NUM_BATCHES_PRECISE is 200; one epoch at most when not asked


def recalibration_batches(asked: int | str | None, batches_per_epoch: int) -> int:
    """How many training batches precise BN averages over: `asked` ("auto": up to 100, no more
    than one epoch gives; None: none)."""
    if asked is None or asked == "off":
        return 0
    if asked == "auto":
        return min(DEFAULT_BN_BATCHES, batches_per_epoch)
    return int(asked)


def _batches(data):
    """Numpy (x, y) batches of a tf.data dataset or a keras.utils.PyDataset, once through (an endless
    training stream, data.FolderBatches: as many as the caller takes)."""
    if hasattr(data, "as_numpy_iterator"):
        yield from data.as_numpy_iterator()
    else:
        yield from iter(data)  # PyDataset.__iter__: range(num_batches), or endless when that is None


def accuracy(model, data, head: str | None) -> float | None:
    """Top-1 accuracy of `model` (one output: class scores) on `data` ((images, labels) batches,
    labels a dict by head name when `head` is given); None without data."""
    if data is None:
        return None
    right = seen = 0
    for x, y in _batches(data):
        labels = np.asarray(y[head] if isinstance(y, dict) else y).reshape(-1)
        scores = keras.ops.convert_to_numpy(model(x, training=False))
        right += int((np.argmax(scores, -1) == labels).sum())
        seen += len(labels)
    return right / seen if seen else None


@dataclass(frozen=True)
class BNResult:
    """What precise batch norm did at the end of a run (`Recalibrated`: layers, batches, images) and
    the validation top-1 accuracy (a fraction in [0, 1]) before and after; None where there
    was no validation data."""
    done: Recalibrated
    before: float | None  # validation accuracy with the moving averages of training
    after: float | None  # ... with the recalibrated statistics

    def meta(self) -> dict:
        """The record saved in the model's metadata, under the key `bn_recalibrated`."""
        return {"bn_recalibrated": {"layers": self.done.layers, "batches": self.done.batches,
                                    "images": self.done.images, "val_accuracy_before": self.before,
                                    "val_accuracy_after": self.after}}

    def describe(self, what: str) -> str:
        """One line for the log: how many BN layers of `what` (e.g. 'model.keras') were recalibrated
        over how many batches and images, and the accuracy before -> after."""
        shown = (f"; val accuracy {self.before:.4f} -> {self.after:.4f}" if self.before is not None
                 and self.after is not None else "")
        return (
            f"batch norm of {what}: {self.done.layers} layers recalibrated over {self.done.batches} training "
                f"batches ({self.done.images} images){shown}")


def recalibrate_and_measure(model, train_data, val_data, head: str | None, batches: int) -> BNResult | None:
    """Precise BN on `model` from `train_data`, with validation accuracy before and after;
    None when the model has no batch norm or `batches` is 0."""
    if not batches or not bn_layers(model):
        return None
    before = accuracy(model, val_data, head)
    done = recalibrate(model, _batches(train_data), batches)
    return BNResult(done, before, accuracy(model, val_data, head))


def refresh_best(model, best: Path, final_epoch: int, final: BNResult, read_meta, save,
                 recal) -> BNResult | None:
    """Give the best checkpoint recalibrated statistics too: the final model's own when the best
    epoch is the last one (`final`: what precise BN did there), else its weights loaded into `model`
    and recalibrated. `recal(model)`
    recalibrates and measures; `save(path, meta)` writes."""
    meta = read_meta(best)
    if meta is None or "bn_recalibrated" in meta:
        return None
    if meta.get("epoch") == final_epoch:
        result = final
    else:
        model.load_weights(best)
        result = recal(model)
    if result is None:
        return None
    metrics = dict(meta.get("metrics") or {})
    if result.after is not None:
        metrics["val_accuracy"] = result.after
    save(best, {**meta, "metrics": metrics, **result.meta()})
    return result


def momenta(model) -> list[float]:
    """The momentum of every trainable BatchNormalization layer of `model` (Keras' convention:
    moving = momentum * moving + (1 - momentum) * batch; torch.nn.BatchNorm2d's momentum is 1
    minus this)."""
    return [float(layer.momentum) for layer in bn_layers(model)]


def note(text: str) -> None:
    """Print a progress line of the run's end to stderr (stdout stays for results)."""
    print(text, file=sys.stderr)
