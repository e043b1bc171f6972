"""Precise batch norm: re-estimate every BatchNormalization layer's population statistics after training.

During training the weights move at every step, so a moving average of the batch statistics
(Keras' `moving_mean`/`moving_variance`, momentum m: new = m * old + (1 - m) * batch) describes the
network of a few hundred steps ago, and after a short run (momentum 0.99 over 66 steps) it is still
mostly its initial value. Following fvcore's `update_bn_stats` (fvcore/nn/precise_bn.py, Wu &
Johnson, "Rethinking 'Batch' in BatchNorm", arXiv:2105.07576, section 3), with the weights fixed
the network runs in training mode over N training batches and each BN layer's moving mean and
variance become the plain average of the per-batch means and variances of its input. Variances are
biased (divided by the batch's pixel count), as Keras' BatchNormalization computes them in training
(torch's BatchNorm2d keeps the unbiased ones; fvcore averages those).

Pure Keras 3 (keras.ops and eager calls), so it runs on the TensorFlow, JAX and PyTorch backends.
It works on a model that takes raw images (the inference model of `incdsl train`, preprocessing
inside): the statistics of its layers are those that inference uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class Recalibrated:
    """What `recalibrate` did: BN layers updated, batches and images it averaged over."""
    layers: int
    batches: int
    images: int


def bn_layers(model) -> list:
    """Every BatchNormalization layer of `model`, looking inside nested models; frozen ones
    (trainable=False: `incdsl train --freeze`) keep their pretrained statistics and are left out."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            out.append(layer)
        elif isinstance(layer, keras.Model):
            out.extend(bn_layers(layer))
    return out


def _statistics_model(model, layers):
    """A model from `model`'s input to each BN layer's per-channel (mean, mean of squares) over
    batch, height and width: two small vectors per layer instead of the feature maps themselves."""
    outputs = []
    for layer in layers:
        x = keras.ops.cast(layer.input, "float32")
        axes = [i for i in range(len(x.shape)) if i != (layer.axis % len(x.shape))]
        outputs += [keras.ops.mean(x, axis=axes), keras.ops.mean(keras.ops.square(x), axis=axes)]
    return outputs


def _graph_model(model, layers):
    """Tie each BN layer's input to `model`'s raw input, through nested models (a core network
    wrapped by preprocessing): the statistics model is built on the innermost model holding them,
    with the layers in front of it applied first."""
    owners = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            inner = [bn for bn in bn_layers(layer) if bn in layers]
            if inner:
                owners[layer.name] = inner
    direct = [bn for bn in layers if any(bn is l for l in model.layers)]
    if not owners:
        return keras.Model(_one(model.inputs), _statistics_model(model, direct))
    if direct or len(owners) > 1:
        raise ValueError("batch norm layers both in a model and in models nested in it: not supported")
    (name, inner), = owners.items()
    core = model.get_layer(name)
    stats = keras.Model(_one(core.inputs), _statistics_model(core, inner))
    # the layers between the raw input and the core (preprocessing), applied in a model of their own
    fed = core._inbound_nodes[0].input_tensors  # what the outer graph hands the core
    fed = fed[0] if len(fed) == 1 else fed
    if any(fed is t for t in model.inputs):
        return stats
    inputs = _one(model.inputs)
    return keras.Model(inputs, stats(keras.Model(inputs, fed)(inputs)))


def _one(tensors):
    return tensors[0] if len(tensors) == 1 else tensors


class _TrainingMode(keras.Model):
    """`probe` called in training mode (batch statistics, as fvcore's update_bn_stats runs the
    model), behind Keras' predict: `predict_on_batch` compiles it once (tf.function on TensorFlow,
    jax.jit on JAX), where an eager call per batch ran Inception v3 op by op (TF CPU: 211 s for 40
    batches at 75x75, more than the epoch's training).

    Marked built: `probe` is a functional model of layers already built, and on JAX Keras'
    predict_on_batch first builds an unbuilt model by calling it eagerly (in a StatelessScope),
    which ran the whole network op by op, each op compiling an XLA program of its own (googlenet_tv
    at width 0.25, 32x32: ~450 programs, 29 s of the first validation's recalibration)."""

    def __init__(self, probe):
        super().__init__(name="bn_statistics")
        self.probe = probe
        self.built = True

    def call(self, x, training=None):
        """The probe's outputs with every BN layer in training mode, whatever `training` says."""
        return self.probe(x, training=True)


def statistics_probe(model):
    """(the trainable BN layers of `model`, a compiled probe from `model`'s raw input to each one's
    per-channel mean and mean of squares), or ([], None) without batch norm: build it once and hand
    it to `recalibrate` when recalibrating the same model often (before each validation)."""
    layers = bn_layers(model)
    return (layers, _TrainingMode(_graph_model(model, layers))) if layers else ([], None)


def recalibrate(model, batches, limit: int, probe=None) -> Recalibrated:
    """Set every BN layer's moving mean and variance of `model` to the average, over the first
    `limit` of `batches` (an iterable of image batches, NHWC as the model takes them, or of
    (images, labels) pairs), of the per-batch mean and biased variance of the layer's input in
    training mode (fvcore's update_bn_stats). Returns what it did; layers 0 when the model has no
    batch norm. `probe`: `statistics_probe(model)`, built here when not given. Raises ValueError
    when `batches` gives none."""
    layers, probe = probe if probe is not None else statistics_probe(model)
    if not layers:
        return Recalibrated(0, 0, 0)
    # torch's rule (TorchBatchNormalization, `bn_unbiased=true`): each batch's variance unbiased,
    # n / (n - 1) with n its values per channel, as fvcore's update_bn_stats on the torch model gives
    unbiased = [type(l).__name__ == "TorchBatchNormalization" for l in layers]
    per_image = [math.prod(d for i, d in enumerate(l.input.shape) if i not in (0,
                                                                               l.axis % len(l.input.shape)))
                 for l in layers]
    sums = None
    count = images = 0
    for batch in batches:
        if count >= limit:
            break
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        outs = [np.asarray(o, dtype="float64") for o in probe.predict_on_batch(x)]
        means, squares = outs[0::2], outs[1::2]
        n = int(np.shape(x)[0])
        var = [(sq - m * m) * (n * k / max(n * k - 1, 1) if u else 1.0)
               for m, sq, u, k in zip(means, squares, unbiased, per_image)]
        step = [(m, v) for m, v in zip(means, var)]
        sums = step if sums is None else [(a + m, b + v) for (a, b), (m, v) in zip(sums, step)]
        count += 1
        images += int(np.shape(x)[0])
    if count == 0:
        raise ValueError("no batches to recalibrate batch norm with")
    for layer, (m, v) in zip(layers, sums):
        layer.moving_mean.assign((m / count).astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(np.maximum(v / count, 0.0).astype(layer.moving_variance.dtype))
    return Recalibrated(len(layers), count, images)
