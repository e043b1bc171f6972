"""The few layers Keras lacks, written with `keras.ops` only (so they run on every Keras backend).

Each is registered under the package "incdsl" (`incdsl>LRN`, ...), which is what a saved `.keras`
file names; `register.py` makes sure this module is imported whenever Keras is, once
`incdsl` has been imported, so `keras.models.load_model` finds them.

- `LRN`: local response normalization across channels, Caffe/PyTorch convention.
- `MaxPool2D`: max pooling with explicit (possibly asymmetric) padding that never wins the max,
  which also gives PyTorch's ceil mode (the caller adds the extra bottom/right padding).
- `AvgPool2D`: average pooling with explicit padding and PyTorch's divisor rules (count_pad).
- `AdaptiveAvgPool2D`: PyTorch's AdaptiveAvgPool2d bins.
- `GroupedConv2D`: Conv2D(groups=) as one convolution per group (TensorFlow's CPU and tf2onnx).
- `ChannelShuffle`: ShuffleNet's channel shuffle (torch.nn.ChannelShuffle).
- `DropPath`: stochastic depth per sample (timm's DropPath), the identity at inference.
- `Subsample`: every s-th row and column, for a strided dilated conv computed at stride 1.
- `TorchBatchNormalization`: batch norm whose moving variance takes the unbiased batch variance,
  as torch.nn.BatchNorm2d does (`bn_unbiased=true`).
"""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from ...ir import window

register = keras.saving.register_keras_serializable(package="incdsl")


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


@register
class LRN(keras.layers.Layer):
    """x / (bias + alpha/size * sum of x^2 over `size` neighbouring channels)^beta.

    The window is channels [c - size//2, c + (size-1)//2], zero beyond the edges, and alpha is
    divided by `size` (Caffe's and torch.nn.LocalResponseNorm's convention; TensorFlow's
    tf.nn.local_response_normalization takes alpha undivided and a radius instead).
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, bias=1.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.bias = int(size), float(alpha), float(beta), float(bias)

    def call(self, x):
        """Normalize `x` (batch, H, W, C) across channels, computed in float32 and cast back to x's
        dtype; same shape out."""
        c, dtype = x.shape[-1], x.dtype
        x = ops.cast(x, "float32")  # under mixed_float16, squares of activations above 255 overflow
        sq = ops.pad(ops.square(x), [[0, 0], [0, 0], [0, 0], [self.size // 2, (self.size - 1) // 2]])
        total = sq[..., 0:c]
        for i in range(1, self.size):
            total = total + sq[..., i:i + c]
        return ops.cast(x / ops.power(self.bias + (self.alpha / self.size) * total, self.beta), dtype)

    def compute_output_shape(self, input_shape):
        """The output shape: the input's (batch, H, W, C), unchanged."""
        return input_shape

    def get_config(self):
        """Keras' config: the base layer's plus size, alpha, beta and bias, for saving and
        `from_config`."""
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta,
                "bias": self.bias}


@register
class MaxPool2D(keras.layers.Layer):
    """Max pooling over an input padded (top, bottom, left, right) with -inf.

    -inf padding never wins a max, which is what PyTorch's padded and ceil-mode pools do (every
    window holds at least one real value under PyTorch's rules).
    """

    def __init__(self, pool_size, strides, padding=(0, 0, 0, 0), **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides = _pair(pool_size), _pair(strides)
        self.padding = tuple(int(p) for p in padding)

    def call(self, x):
        """Pad `x` (batch, H, W, C) with -inf, then max-pool with 'valid' windows: (batch, H', W',
        C) out, H' = (H + top + bottom - kh) // sh + 1."""
        t, b, l, r = self.padding
        x = ops.pad(x, [[0, 0], [t, b], [l, r], [0, 0]], constant_values=-math.inf)
        return ops.max_pool(x, self.pool_size, self.strides, padding="valid")

    def get_config(self):
        """Keras' config: the base layer's plus pool_size, strides and padding."""
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


@register
class AvgPool2D(keras.layers.Layer):
    """Average pooling with explicit padding and PyTorch's divisor.

    The input is zero-padded by `padding` (top, bottom, left, right) plus `extra` (bottom,
    right: ceil mode's windows that hang past the padding). The divisor of each window is, as in
    torch's avg_pool2d: with count_pad, the window's part inside the input plus `padding` (never
    the ceil-mode `extra`); without count_pad, its part inside the input alone.
    """

    def __init__(self, pool_size, strides, padding=(0, 0, 0, 0), extra=(0, 0), count_pad=False, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides = _pair(pool_size), _pair(strides)
        self.padding = tuple(int(p) for p in padding)
        self.extra = _pair(extra)
        self.count_pad = bool(count_pad)

    def _counts(self, size: int, k: int, s: int, lo: int, hi: int, extra: int) -> np.ndarray:
        out = (size + lo + hi + extra - k) // s + 1
        start = np.arange(out) * s - lo  # window start, in input coordinates
        first, last = (-lo, size + hi) if self.count_pad else (0, size)
        n = np.minimum(start + k, last) - np.maximum(start, first)
        return np.maximum(n, 1).astype("float32")

    def build(self, input_shape):
        """Precompute, from the input's H and W, each output position's divisor (as torch's
        avg_pool2d counts it) as a factor on Keras' kh*kw average."""
        (kh, kw), (sh, sw) = self.pool_size, self.strides
        t, b, l, r = self.padding
        rows = self._counts(input_shape[1], kh, sh, t, b, self.extra[0])
        cols = self._counts(input_shape[2], kw, sw, l, r, self.extra[1])
        # average_pool divides by kh*kw; rescale each output to divide by its own count instead
        self._factor = ((kh * kw) / np.outer(rows, cols))[None, :, :, None].astype("float32")

    def call(self, x):
        """Zero-pad `x` (batch, H, W, C), average-pool with 'valid' windows, and rescale each output
        to its own divisor."""
        t, b, l, r = self.padding
        eb, er = self.extra
        x = ops.pad(x, [[0, 0], [t, b + eb], [l, r + er], [0, 0]])
        y = ops.average_pool(x, self.pool_size, self.strides, padding="valid")
        return y * ops.convert_to_tensor(self._factor, dtype=y.dtype)

    def get_config(self):
        """Keras' config: the base layer's plus pool_size, strides, padding, extra and count_pad."""
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "extra": self.extra, "count_pad": self.count_pad}


@register
class AdaptiveAvgPool2D(keras.layers.Layer):
    """PyTorch's AdaptiveAvgPool2d: bin i covers [floor(i*H/o), ceil((i+1)*H/o)) (bins may overlap)."""

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = _pair(output_size)

    @staticmethod
    def _pool(x, axis: int, out: int):
        size = x.shape[axis]
        if size % out == 0:  # equal, disjoint bins: one strided mean
            k = size // out
            shape = list(x.shape)
            shape[axis:axis + 1] = [out, k]
            return ops.mean(ops.reshape(x, [-1] + shape[1:]), axis=axis + 1)
        bins = []
        for i in range(out):
            lo, hi = window.adaptive_bin(i, size, out)
            part = x[:, lo:hi] if axis == 1 else x[:, :, lo:hi]
            bins.append(ops.mean(part, axis=axis, keepdims=True))
        return ops.concatenate(bins, axis=axis)

    def call(self, x):
        """Average `x` (batch, H, W, C) into output_size bins: (batch, oh, ow, C) out, rows first,
        then columns."""
        oh, ow = self.output_size
        return self._pool(self._pool(x, 1, oh), 2, ow)

    def get_config(self):
        """Keras' config: the base layer's plus output_size."""
        return {**super().get_config(), "output_size": self.output_size}


@register
class GroupedConv2D(keras.layers.Conv2D):
    """Keras' Conv2D(groups=) with the groups computed as one ordinary convolution each, then
    concatenated: the same weights and outputs, but TensorFlow's CPU kernels (which cannot group
    without XLA, so Keras compiles it, and tf2onnx cannot convert the compiled call) run it as is.
    Group g reads input channels [g*C/G, (g+1)*C/G) and writes filters [g*F/G, (g+1)*F/G)."""

    def convolution_op(self, inputs, kernel):
        """Convolve each group's channels of `inputs` (batch, H, W, C) with its slice of `kernel`
        (kh, kw, C/G, F) and concatenate the G results along channels."""
        cin, cout = inputs.shape[-1] // self.groups, kernel.shape[-1] // self.groups
        return ops.concatenate([
            ops.conv(inputs[..., g * cin:(g + 1) * cin], kernel[..., g * cout:(g + 1) * cout],
                     strides=list(self.strides), padding=self.padding, dilation_rate=self.dilation_rate,
                     data_format=self.data_format)
            for g in range(self.groups)], axis=-1)


@register
class ChannelShuffle(keras.layers.Layer):
    """ShuffleNet's channel shuffle (Zhang et al. 2018, Section 3.1): the C channels, read as a
    (groups, C/groups) grid, are transposed to (C/groups, groups); torch.nn.ChannelShuffle's order.
    NHWC in and out."""

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def call(self, x):
        """Shuffle the channels of `x` (batch, H, W, C): reshape to (..., groups, C/groups),
        transpose the last two axes, flatten back."""
        h, w, c = x.shape[1:]
        x = ops.reshape(x, (-1, h, w, self.groups, c // self.groups))
        return ops.reshape(ops.transpose(x, (0, 1, 2, 4, 3)), (-1, h, w, c))

    def compute_output_shape(self, input_shape):
        """The output shape: the input's (batch, H, W, C), unchanged."""
        return input_shape

    def get_config(self):
        """Keras' config: the base layer's plus groups."""
        return {**super().get_config(), "groups": self.groups}


@register
class DropPath(keras.layers.Layer):
    """Stochastic depth (Huang et al. 2016; timm.layers.DropPath): in training, each sample's input
    is zeroed with probability `rate` and the others scaled by 1 / (1 - rate); the identity at
    inference. Put on a residual branch, it drops the branch and keeps the shortcut."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        """In training, zero each sample of `x` with probability `rate` and scale the rest by 1 / (1
        - rate); otherwise return `x` as is."""
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype))
        return x * mask / keep

    def compute_output_shape(self, input_shape):
        """The output shape: the input's, unchanged."""
        return input_shape

    def get_config(self):
        """Keras' config: the base layer's plus rate and seed."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@register
class Subsample(keras.layers.Layer):
    """Keeps rows 0, s, 2s, ... and columns likewise: a stride-1 conv followed by this is the same
    conv at stride s (Keras' Conv2D refuses strides > 1 with dilation_rate > 1)."""

    def __init__(self, strides, **kwargs):
        super().__init__(**kwargs)
        self.strides = _pair(strides)

    def call(self, x):
        """Keep every sh-th row and sw-th column of `x` (batch, H, W, C), starting at 0: (batch,
        ceil(H/sh), ceil(W/sw), C)."""
        sh, sw = self.strides
        return x[:, ::sh, ::sw, :]

    def compute_output_shape(self, input_shape):
        """(batch, ceil(H/sh), ceil(W/sw), C) for an input (batch, H, W, C); unknown sizes stay
        None."""
        b, h, w, c = input_shape
        sh, sw = self.strides
        return (b, None if h is None else -(-h // sh), None if w is None else -(-w // sw), c)

    def get_config(self):
        """Keras' config: the base layer's plus strides."""
        return {**super().get_config(), "strides": self.strides}




@register
class TorchBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization with torch.nn.BatchNorm2d's moving-variance update: in
    training the batch is normalized with its biased variance (as both do), but the moving variance
    moves towards the unbiased one, var * n / (n - 1) with n the values per channel (batch x H x W;
    torch/nn/modules/batchnorm.py, `running_var` "with unbiased estimator"). Keras moves it towards
    the biased one. Inference is identical. Same arguments and weights as BatchNormalization."""

    def call(self, inputs, training=None, mask=None):
        """BatchNormalization's output (NHWC); in training, the moving variance then moves the rest
        of the way to torch's unbiased estimate."""
        out = super().call(inputs, training=training, mask=mask)
        if training and self.trainable:
            axis = self.axis % len(inputs.shape)
            axes = [i for i in range(len(inputs.shape)) if i != axis]
            x = ops.cast(inputs, self.moving_variance.dtype)
            _, var = ops.moments(x, axes)
            shape = ops.shape(x)
            n = ops.cast(math.prod(shape[i] for i in axes), self.moving_variance.dtype)
            # BatchNormalization just moved it by (1 - momentum) * var; the rest of var * n / (n - 1).
            # One value per channel (batch 1 on a 1x1 map): torch refuses to train; here the variance
            # (0) stays the biased one instead of 0 / 0 = NaN in every later prediction.
            self.moving_variance.assign(self.moving_variance
                                        + (1.0 - self.momentum) * var / ops.maximum(n - 1.0, 1.0))
        return out


CUSTOM_OBJECTS = {f"incdsl>{cls.__name__}": cls for cls in (LRN, MaxPool2D, AvgPool2D, AdaptiveAvgPool2D,
                                                           GroupedConv2D, ChannelShuffle, DropPath, Subsample,
                                                           TorchBatchNormalization)}
