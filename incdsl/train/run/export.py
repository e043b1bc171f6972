"""The saved models of a run: model.keras and model.best.keras hold the inference model (raw 0-255
pixels in, NHWC; float32 whatever training used; training-only heads left out), written from the
training network's weights.

Why the best epoch is held in memory and written when the run stops, not at each new best: a
.keras save costs seconds of Python per call (Keras' saving walks every layer's attributes and
writes one HDF5 dataset per variable: 0.6 s of CPU for Inception v3 at width 0.25 even with
keras_saving_fix, 1.2 s without, plus 0.4 s to copy the weights layer by layer), which on the
digits was a tenth of an epoch; keeping the weights costs a read of each variable (0.05 s). The
held weights are written on every way out of fit (finished, diverged, interrupted, failed: see
fit.py), so "the best model so far" is on disk whenever the run says so; only a run killed with
SIGKILL loses the best epoch not yet written (its backup still holds the last epoch).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import keras

from ...analysis.rebuild import KEY as REBUILD
from ...analysis.rebuild import record
from ...backends.keras.build import build_model
from .. import finetune
from ..config import TrainConfig
from ..model import with_preprocessing
from ..saving import META_FORMAT, save_model


@dataclass
class Exporter:
    """Writes the inference model `model` (whose network is `inner`) from the weights of the
    training network `core` (layers matched by name: both are built from the same IR). `meta`: what
    every saved file records in its incdsl.json besides epoch and metrics. Only the chief (`chief`)
    writes; the other workers' calls do nothing. `settings`: what incdsl.json records after the
    metrics (optimizer, precision). `held`: the best epoch not yet written, as (epoch, metrics,
    weights by layer name)."""
    core: object
    inner: object
    model: object
    meta: dict
    settings: dict = field(default_factory=dict)
    chief: bool = True
    held: tuple | None = None

    def save(self, path: Path, epoch: int, metrics: dict, extra: dict | None = None,
             copy: bool = True) -> None:
        """Write `path` (atomically, saving.save_model) after 0-based `epoch` with `metrics`, the
        weights of `core` copied in first unless `copy` is False (`model` already holds what to
        save, e.g. after precise BN)."""
        if not self.chief:
            return
        if copy:
            self.copy_in()
        meta = {**self.meta, "epoch": epoch + 1, "metrics": metrics, **self.settings, **(extra or {})}
        save_model(self.model, path, meta)

    def hold(self, epoch: int, metrics: dict, best: bool = True) -> None:
        """Keep the weights of `core` now as the best epoch so far (the `export` that KeepBest
        calls); `write_held` writes them."""
        if self.chief:
            self.held = (epoch, dict(metrics), self._snapshot())

    def write_held(self, path: Path) -> bool:
        """Write the held best epoch to `path`, if one is held (then forget it); returns whether
        anything was written. `model` holds those weights afterwards."""
        if self.held is None or not self.chief:
            return False
        epoch, metrics, weights = self.held
        self.held = None
        self._load(weights)
        self.save(path, epoch, metrics, copy=False)
        return True

    def copy_in(self) -> None:
        """Give `model` the current weights of `core`."""
        self._load(self._snapshot())

    def _snapshot(self) -> dict:
        """The weights of `core` that `inner` has, by layer name, as NumPy arrays."""
        return {layer.name: self.core.get_layer(layer.name).get_weights() for layer in self.inner.layers
                if layer.weights}

    def _load(self, weights: dict) -> None:
        for name, arrays in weights.items():
            self.inner.get_layer(name).set_weights(arrays)


def make_exporter(net, config: TrainConfig, core, heads, classes, chief: bool) -> Exporter:
    """The Exporter of a run: the inference model of `net` built in float32 (frozen layers that
    stay frozen marked so, so that precise BN leaves them be), preprocessing as `config.preprocess`,
    and the metadata every saved file records (`heads`: head_losses(net); `classes`: names in
    label order)."""
    main = next(h for h in heads if not h.train_only)
    with _policy("float32"):  # the saved model computes in float32, whatever training used
        inner = build_model(net, inference=True, placeholder=True)  # core's weights are copied in
        finetune.still_frozen(inner, net, config)
        model = with_preprocessing(inner, net.input_shape, config.preprocess, [main.name])
    meta = {"format": META_FORMAT, "network": net.name, "spec": str(net.path),
            "params": _jsonable(net.params),
            "classes": list(classes), "head": main.name, "logits": main.from_logits,
            "preprocess": config.preprocess,
            "input_shape": list(net.input_shape)}
    meta[REBUILD] = record(net)  # the spec's text: `incdsl predict` runs the model without Keras
    return Exporter(core, inner, model, meta, {"optimizer": config.optimizer, "precision": config.precision},
                    chief)


@contextlib.contextmanager
def _policy(name: str):
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def _jsonable(params: dict) -> dict:
    return {k: v if isinstance(v,
                               (bool, int, float, str)) or v is None else str(v) for k, v in params.items()}
