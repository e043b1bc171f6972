"""A plain numpy interpreter of the checked graph: the reference that `incdsl compile --to onnx`
checks onnxruntime against by default (no Keras, no TensorFlow: `pip install incdsl[onnx]` is enough).

It shares no code with the ONNX emitter but `adaptive_bins`; its pads are the pads pass's
(`Network.pads`, incdsl/passes/pads.py), and it follows the ops' documented meaning:
NHWC (float64 unless asked otherwise), TF 'same' padding, PyTorch ceil mode, count_pad, adaptive bins and LRN windows,
Keras 3's activations. Plain rather than fast, though convolutions are matrix products (BLAS);
inference only (dropout is the identity).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ops import LEAKY_RELU_SLOPE, affine_of
from .onnx_ops import adaptive_bins


class Unsupported(Exception):
    """The graph has an op this interpreter does not know."""


def _act(fn, x, slope=None):
    if fn is None:
        return x
    if fn == "relu":
        return np.maximum(x, 0)
    if fn == "relu6":
        return np.clip(x, 0, 6)
    if fn == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if fn == "hard_sigmoid":
        return np.clip(x + 3, 0, 6) / 6
    if fn == "tanh":
        return np.tanh(x)
    if fn in ("softmax", "log_softmax"):
        z = x - x.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return np.exp(z - lse) if fn == "softmax" else z - lse
    if fn == "silu":
        return x / (1 + np.exp(-x))
    if fn == "gelu":  # exact: x * Phi(x)
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    if fn == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    if fn == "leaky_relu":
        return np.where(x > 0, x, (LEAKY_RELU_SLOPE if slope is None else slope) * x)
    raise Unsupported(f"activation {fn}")


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
        # BLAS does many times faster than einsum over the window view
        y = np.concatenate([np.tensordot(win[:, :, :, i * cin:(i + 1) * cin], k[..., i * cout:(i + 1) * cout],
                                         axes=([4, 5, 3], [0, 1, 2])) for i in range(g)], axis=-1)
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


def run(net, weights: dict, x: np.ndarray, dtype=np.float64) -> list[np.ndarray]:
    """The inference heads of `net` on an NHWC batch `x` (batch, H, W, C), computed in `dtype`
    (float64 by default; float32, as the runtimes compute, takes half the time),
    in `net.heads` order (training-only heads left out); each output is (batch, units) or
    (batch, H', W', C'). `weights` is a weights dict (layer name -> arrays in Keras layouts,
    `incdsl.weights`). A slow, plain reference for checking ONNX exports without Keras, not a
    runtime. Raises Unsupported for an op it does not know."""
    shapes, out = net.shapes, {}
    for name, layer in net.layers.items():
        if name not in net.inference:
            continue
        a, op = layer.attrs, layer.op
        ins = [out[i] for i in layer.inputs]
        if op == "input":
            y = np.asarray(x, dtype)
        elif op in ("conv", "dwconv", "sepconv"):
            y = _conv(layer, ins[0], weights, net)
        elif op == "maxpool":
            y = _windows(ins[0], layer, net.pads[name], shapes[name], -np.inf).max(axis=(-2, -1))
        elif op == "avgpool":
            y = _avgpool(layer, ins[0], net)
        elif op == "adaptive_avgpool":
            (h, w, _), (oh, ow, _) = shapes[layer.inputs[0]], shapes[name]
            y = np.einsum("ph,nhwc,qw->npqc", adaptive_bins(h, oh), ins[0], adaptive_bins(w, ow))
        elif op in ("gap", "gmp"):
            y = ins[0].mean(axis=(1, 2)) if op == "gap" else ins[0].max(axis=(1, 2))
        elif op == "flatten":
            y = ins[0].reshape(len(ins[0]), -1)
        elif op == "dense":
            p = weights[name]
            y = ins[0] @ np.asarray(p["kernel"], dtype) + (np.asarray(p["bias"], dtype) if a["bias"] else 0)
            y = _act(a["act"], y)
        elif op == "dropout":
            y = ins[0]
        elif op == "bn":
            y = _bn(ins[0], {k: np.asarray(v, dtype) for k, v in weights[name].items()}, a["eps"])
        elif op == "act":
            y = _act(a["fn"], ins[0], a.get("slope"))
        elif op == "channel_shuffle":
            *lead, c = ins[0].shape
            g = a["groups"]
            y = ins[0].reshape(*lead, g, c // g).swapaxes(-1, -2).reshape(*lead, c)
        elif op == "drop_path":
            y = ins[0]
        elif op == "multiply":  # a vector (N, C) scales a map's channels
            y = ins[0]
            for t in ins[1:]:
                y, t = (y[:, None, None, :] if y.ndim < t.ndim else y), (t[:, None, None, :] if t.ndim < y.ndim else t)
                y = y * t
        elif op == "lrn":
            y = _lrn(a, ins[0])
        elif op == "scale":
            y = ins[0] * a["factor"]
        elif op == "zeropad":
            t, b, l, r = a["pad"]
            y = np.pad(ins[0], ((0, 0), (t, b), (l, r), (0, 0)))
        elif op in ("affine", "normalize"):
            scale, shift = affine_of(a)
            y = ins[0] * np.asarray(scale) + np.asarray(shift)
        elif op == "concat":
            y = np.concatenate(ins, axis=-1)
        elif op == "add":
            y = sum(ins)
        else:
            raise Unsupported(f"op {op} ('{name}')")
        out[name] = y
    return [out[h.node] for h in net.heads if not h.train_only]
