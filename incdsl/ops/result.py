"""What an op's rule returns (`Rule`: output shape, weight shapes, MACs, derivation) and the counts
derived from it (`Count`), plus `ShapeError`, which a rule raises when its inputs do not fit.

Counting conventions (the README states them too):
- params are split as Keras splits them: trainable (kernels, biases, batch-norm gamma/beta) and
  non-trainable (batch-norm moving mean and variance), so total == keras `count_params()`; they
  are derived from the weight shapes, never counted separately;
- MACs are multiply-accumulates of conv, depthwise/separable conv and dense layers only; biases,
  batch norm, activations, pooling, LRN, adds, scaling and concatenation count zero.
"""

import math
from types import MappingProxyType
from typing import Mapping, NamedTuple

Shape = tuple[int, ...]


class Count(NamedTuple):
    """A layer's (or a sum of layers') counts: `trainable` and `non_trainable` params and `macs` for one
    image.

    Params split as Keras splits them (non-trainable: batch-norm moving mean and variance, so the
    total equals keras `count_params()`); MACs are multiply-accumulates of conv, depthwise/separable
    conv and dense layers only. Counts add with `+`.
    """
    trainable: int = 0
    non_trainable: int = 0
    macs: int = 0

    @property
    def params(self) -> int:
        """All params: trainable plus non-trainable (keras `Model.count_params()`)."""
        return self.trainable + self.non_trainable

    def __add__(self, other):  # type: ignore[override]
        return Count(self.trainable + other.trainable, self.non_trainable + other.non_trainable,
                     self.macs + other.macs)


ZERO = Count()


class ShapeError(Exception):
    """Raised by a shape rule; the shape pass adds the node's span and notes."""

    def __init__(self, message: str, hint: str | None = None, culprit: int | None = None,
                 detail: str | None = None,
                 too_small: bool = False):
        super().__init__(message)
        self.message, self.hint, self.culprit, self.detail = message, hint, culprit, detail
        self.too_small = too_small  # the input is too small for a window: a larger one would fit


# Batch norm's arrays as Keras names them (keras.layers.BatchNormalization), gamma first; the
# moving statistics are updated by training, not by the gradient: Keras' non-trainable weights.
BN_KEYS = ("gamma", "beta", "moving_mean", "moving_variance")
NON_TRAINABLE = frozenset(BN_KEYS[2:])
NO_WEIGHTS: Mapping[str, Shape] = MappingProxyType({})


class Rule(NamedTuple):
    """What an op's rule says about one layer, as jax stax's `init_fun` returns shape and params
    together: its `out` shape (NHWC or (n,), batch left out), its `weights` (Keras' variable names
    -> shapes in Keras' layouts, e.g. conv: kernel (kh, kw, cin/groups, filters), bias (filters,),
    gamma/beta/moving_mean/moving_variance (filters,) for its batch norm), its `macs` for one image
    and `why`, the size arithmetic for error notes (None when there is none worth showing).
    """
    out: Shape
    weights: Mapping[str, Shape] = NO_WEIGHTS
    macs: int = 0
    why: str | None = None

    @property
    def count(self) -> Count:
        """The layer's `Count`, derived from the weight shapes: params of moving_mean and
        moving_variance are non-trainable, every other weight's trainable."""
        w = self.weights
        if not w:
            return Count(0, 0, self.macs) if self.macs else ZERO
        prod = math.prod
        total = sum(map(prod, w.values()))
        # NON_TRAINABLE spelled out: this runs for every layer of every variant a sweep builds
        mean, var = w.get("moving_mean"), w.get("moving_variance")
        non_trainable = (prod(mean) if mean else 0) + (prod(var) if var else 0)
        return Count(total - non_trainable, non_trainable, self.macs)
