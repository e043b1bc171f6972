"""A plain numpy interpreter of the checked graph: the reference that `incdsl compile --to onnx`
checks onnxruntime against by default (no Keras, no TensorFlow: `pip install incdsl[onnx]` is enough).

It shares no code with the ONNX emitter but `adaptive_bins`; its pads are the pads pass's
(`Network.pads`, incdsl/passes/pads.py), and it follows the ops' documented meaning:
NHWC (float64 unless asked otherwise), TF 'same' padding, PyTorch ceil mode, count_pad, adaptive bins and LRN
windows, Keras 3's activations. Plain rather than fast, though convolutions are matrix products (BLAS);
inference only (dropout is the identity).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ops import ACTIVATION_TABLE, affine_of
from ..ops.groups import CONVS
from .onnx.ops import adaptive_bins

IM2COL_BYTES = 4 << 20  # about the most a convolution's copied windows take at once


class Unsupported(Exception):
    """The graph has an op this interpreter does not know."""


def _act(fn, x, slope=None):
    """The activation `fn` (a name of the activation table, or None: the identity) of x."""
    if fn is None:
        return x
    if fn not in ACTIVATION_TABLE:
        raise Unsupported(f"activation {fn}")
    return ACTIVATION_TABLE[fn].numpy(np, x, slope)


def _windows(x, layer, pads, out_shape, value):
    """(N, oh, ow, C, kh, kw) windows of x padded with `value` (`pads`: the layer's `Pads`, ceil
    overhang included)."""
    (b0, b1), (e0, e1) = pads.begin, pads.end
    if b0 or b1 or e0 or e1:  # np.pad copies the whole map even for zero pads
        x = np.pad(x, ((0, 0), (b0, e0), (b1, e1), (0, 0)), constant_values=value)
    return _slide(x, layer, out_shape)


def _slide(xp, layer, out_shape):
    a = layer.attrs
    kh, kw = a["kernel"]
    dh, dw = a.get("dilation", (1, 1))
    sh, sw = a["stride"]
    v = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
    return v[:, ::sh, ::sw, :, ::dh, ::dw][:, :out_shape[0], :out_shape[1]]


def _bn(x, p, eps, out=None):
    """Inference batch norm, (x - mean) / sqrt(variance + eps) * gamma + beta, as one per-channel
    scale and shift (two passes over the map instead of four; in place into `out` if given)."""
    scale = p.get("gamma", 1.0) / np.sqrt(p["moving_variance"] + eps)
    shift = p["beta"] - p["moving_mean"] * scale
    y = np.multiply(x, scale, out=out)
    y += shift
    return y


def _conv(layer, x, w, net):
    a, name = layer.attrs, layer.name
    p = {k: np.asarray(v, x.dtype) for k, v in w[name].items()}
    pads = net.pads[name]
    if layer.op == "conv" and a["kernel"] == (1, 1) and a["stride"] == (1, 1) and a.get("groups", 1) == 1 \
            and not any(pads.begin + pads.end):
        y = x @ p["kernel"][0, 0]  # a 1x1 convolution is a matrix product over the channels, no windows
    elif layer.op == "conv":
        win = _windows(x, layer, pads, net.shapes[name], 0.0)
        g = a.get("groups", 1)  # Keras Conv2D(groups=): kernel (kh, kw, cin / g, cout), filters in g blocks
        k = p["kernel"]
        cin, cout = k.shape[2], k.shape[3] // g
        # one matrix product per group (im2col: tensordot copies the windows into rows, in (kh, kw, C)
        # order so that the innermost copy runs along memory, and the kernel needs no copy), which
        # BLAS does many times faster than einsum over the window view. A few output rows at a
        # time: the copied windows stay near IM2COL_BYTES (a whole stem layer's are 50 MB, which
        # the allocator maps fresh from the kernel for each layer: page faults cost more than
        # the copy)
        n, oh, ow = win.shape[:3]
        y = np.empty((n, oh, ow, k.shape[3]), x.dtype)
        step = max(1, IM2COL_BYTES // (n * ow * k[..., 0].size * x.itemsize))  # rows of windows
        for r in range(0, oh, step):
            for i in range(g):
                y[:, r:r + step, :, i * cout:(i + 1) * cout] = np.tensordot(
                    win[:, r:r + step, :, i * cin:(i + 1) * cin], k[..., i * cout:(i + 1) * cout],
                    axes=([4, 5, 3], [0, 1, 2]))
    else:
        win = _windows(x, layer, pads, net.shapes[name], 0.0)
        y = np.einsum("nhwcij,ijcm->nhwcm", win, p["depthwise_kernel"], optimize=True)
        y = y.reshape(*y.shape[:3], -1)
        if layer.op == "sepconv":
            y = y @ p["pointwise_kernel"][0, 0]
    if a["bias"]:
        y += p["bias"]  # y is a fresh array here: in place saves a copy of the map
    if a["bn"]:
        y = _bn(y, p, a["bn_eps"], out=y)
    if a["act"] == "relu":
        return np.maximum(y, 0, out=y)
    return _act(a["act"], y)


def _avgpool(layer, x, net):
    """Sum of the window over the number of its cells that count: the input's, plus the real
    padding's with count_pad (never the ceil overhang), as torch's avg_pool2d divides."""
    pads, out_shape = net.pads[layer.name], net.shapes[layer.name]
    total = _windows(x, layer, pads, out_shape, 0.0).sum(axis=(-2, -1))
    (b0, b1), (e0, e1) = pads.begin, pads.end
    h, w = net.shapes[layer.inputs[0]][:2]
    mask = np.zeros((1, h + b0 + e0, w + b1 + e1, 1), x.dtype)
    if layer.attrs["count_pad"]:
        r0, r1 = pads.bottom, pads.right
        mask[:, :b0 + h + r0, :b1 + w + r1] = 1.0
    else:
        mask[:, b0:b0 + h, b1:b1 + w] = 1.0
    return total / np.maximum(_slide(mask, layer, out_shape).sum(axis=(-2, -1)), 1)


def _lrn(a, x):
    c = x.shape[-1]
    sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (a["size"] // 2, (a["size"] - 1) // 2)))
    total = sum(sq[..., i:i + c] for i in range(a["size"]))
    return x / (a["bias"] + a["alpha"] / a["size"] * total) ** a["beta"]


def _dense(layer, ins, w, net, dtype):
    p = w[layer.name]
    y = ins[0] @ np.asarray(p["kernel"], dtype) + (np.asarray(p["bias"], dtype) if layer.attrs["bias"] else 0)
    return _act(layer.attrs["act"], y)


def _adaptive(layer, ins, w, net, dtype):
    (h, w_, _), (oh, ow, _) = net.shapes[layer.inputs[0]], net.shapes[layer.name]
    return np.einsum("ph,nhwc,qw->npqc", adaptive_bins(h, oh), ins[0], adaptive_bins(w_, ow))


def _channel_shuffle(layer, ins, w, net, dtype):
    *lead, c = ins[0].shape
    g = layer.attrs["groups"]
    return ins[0].reshape(*lead, g, c // g).swapaxes(-1, -2).reshape(*lead, c)


def _multiply(layer, ins, w, net, dtype):
    """A vector (N, C) scales a map's channels."""
    y = ins[0]
    for t in ins[1:]:
        y, t = (y[:, None, None, :] if y.ndim < t.ndim else y), (t[:, None, None,
                                                                   :] if t.ndim < y.ndim else t)
        y = y * t
    return y


def _zeropad(layer, ins, w, net, dtype):
    t, b, l, r = layer.attrs["pad"]
    return np.pad(ins[0], ((0, 0), (t, b), (l, r), (0, 0)))


def _affine(layer, ins, w, net, dtype):
    scale, shift = affine_of(layer.attrs)
    # in the input's dtype: float64 constants would turn a float32 run into float64 from here on
    return ins[0] * np.asarray(scale, ins[0].dtype) + np.asarray(shift, ins[0].dtype)


def _identity(layer, ins, w, net, dtype):
    """Dropout and drop_path: the identity at inference."""
    return ins[0]


# op -> (layer, input arrays, weights dict, net, dtype) -> output array: one entry per op of the
# table but `input` (tests/backends/test_backend_dispatch.py checks that none is missing)
RUNNERS = {
    **dict.fromkeys(sorted(CONVS), lambda layer, ins, w, net, dtype: _conv(layer, ins[0], w, net)),
    "maxpool": lambda layer, ins, w, net, dtype: _windows(ins[0], layer, net.pads[layer.name],
                                                          net.shapes[layer.name],
                                                          -np.inf).max(axis=(-2, -1)),
    "avgpool": lambda layer, ins, w, net, dtype: _avgpool(layer, ins[0], net),
    "adaptive_avgpool": _adaptive,
    "gap": lambda layer, ins, w, net, dtype: ins[0].mean(axis=(1, 2)),
    "gmp": lambda layer, ins, w, net, dtype: ins[0].max(axis=(1, 2)),
    "flatten": lambda layer, ins, w, net, dtype: ins[0].reshape(len(ins[0]), -1),
    "dense": _dense,
    "dropout": _identity,
    "bn": lambda layer, ins, w, net, dtype: _bn(ins[0],
                                                {k: np.asarray(v, dtype) for k, v in w[layer.name].items()},
                                                layer.attrs["eps"]),
    "act": lambda layer, ins, w, net, dtype: _act(layer.attrs["fn"], ins[0], layer.attrs.get("slope")),
    "channel_shuffle": _channel_shuffle,
    "drop_path": _identity,
    "multiply": _multiply,
    "lrn": lambda layer, ins, w, net, dtype: _lrn(layer.attrs, ins[0]),
    "scale": lambda layer, ins, w, net, dtype: ins[0] * layer.attrs["factor"],
    "zeropad": _zeropad,
    "affine": _affine,
    "normalize": _affine,
    "concat": lambda layer, ins, w, net, dtype: np.concatenate(ins, axis=-1),
    "add": lambda layer, ins, w, net, dtype: sum(ins),
}


def run(net, weights: dict, x: np.ndarray, dtype=np.float64) -> list[np.ndarray]:
    """The inference heads of `net` on an NHWC batch `x` (batch, H, W, C), computed in `dtype`
    (float64 by default; float32, as the runtimes compute, takes half the time),
    in `net.heads` order (training-only heads left out); each output is (batch, units) or
    (batch, H', W', C'). `weights` is a weights dict (layer name -> arrays in Keras layouts,
    `incdsl.weights.arrays`). A slow, plain reference for checking ONNX exports without Keras, not a
    runtime. Raises Unsupported for an op it does not know."""
    out = {}
    for name, layer in net.layers.items():
        if name not in net.inference:
            continue
        if layer.op == "input":
            out[name] = np.asarray(x, dtype)
            continue
        runner = RUNNERS.get(layer.op)
        if runner is None:
            raise Unsupported(f"op {layer.op} ('{name}')")
        out[name] = runner(layer, [out[i] for i in layer.inputs], weights, net, dtype)
    return [out[h.node] for h in net.heads if not h.train_only]
