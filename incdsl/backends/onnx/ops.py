"""The ONNX emitter's op translations: one `op_<name>` method per op of the table (convolutions
excepted: they fold batch norm and live in direct.py), mixed into the emitter there, whose
`EMITTERS` dict maps each op to its method.

NCHW inside. Pools read their pads from `Network.pads` (incdsl/passes/pads.py): the end pads
include the ceil overhang, so that ONNX's floor rule gives the inferred output size; max pooling
pads with -inf (ONNX MaxPool's own pads), average pooling excludes its pads (count_include_pad=0)
except the real padding of count_pad=true, which becomes a zero Pad node first (the ceil overhang
then still does not count, as in PyTorch). Every pad is smaller than the window, as onnxruntime
requires: the pool rule refuses explicit pads as large (incdsl/ops/rules.py), and pad=same's split
and the ceil overhang end where the last window, which starts inside the input, ends.
"""
from __future__ import annotations

import numpy as np

from ...ir import window
from ...ops import ACTIVATION_TABLE, affine_of


def adaptive_bins(n: int, out: int) -> np.ndarray:
    """PyTorch's adaptive average pooling as an (out, n) matrix: bin i averages
    [floor(i*n/out), ceil((i+1)*n/out)) (window.adaptive_bin)."""
    m = np.zeros((out, n))
    for i in range(out):
        lo, hi = window.adaptive_bin(i, n, out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


class OpEmitters:
    """The op_* methods of `direct._Emitter` (its `EMITTERS` maps op -> method) and the helpers they
    share (activations, Pad).
    Each takes the IR layer and its input tensor names and returns the name of the tensor it
    produced. Relies on the emitter's `net`, `tensor`, `node`, `const`, `params`, `finish` and
    `rename`."""

    def activation(self, act: str, x: str, layer_name: str, slope: float | None = None) -> str:
        """The activation node(s), from the activation table (incdsl/ops/activations.py); the last
        output is the layer's tensor."""
        return ACTIVATION_TABLE[act].onnx(self, x, layer_name, slope)

    # -- pooling -------------------------------------------------------------------------
    def op_maxpool(self, layer, ins):
        """MaxPool with the pads pass's pads (ceil overhang included)."""
        a = layer.attrs
        pads = self.net.pads[layer.name]
        return self.node("MaxPool", [ins[0]], layer.name, kernel_shape=list(a["kernel"]),
                         strides=list(a["stride"]), pads=pads.begin + pads.end)

    def op_avgpool(self, layer, ins):
        """AveragePool excluding pads; count_pad's real padding becomes zeros first, the ceil overhang never
        counts (PyTorch)."""
        a = layer.attrs
        pads = self.net.pads[layer.name]
        begin, end = pads.begin, pads.end
        x = ins[0]
        if a["count_pad"]:
            # the real padding counts in the average: make it real zeros; the ceil overhang
            # beyond it does not count (PyTorch), so it stays an excluded pool pad
            rb, re = [pads.top, pads.left], [pads.bottom, pads.right]
            if any(rb + re):
                x = self.pad(x, rb, re, f"{layer.name}/pad", 0.0)
                begin, end = [0, 0], [e - r for e, r in zip(end, re)]
        return self.node("AveragePool", [x], layer.name, kernel_shape=list(a["kernel"]),
                         strides=list(a["stride"]),
                         pads=begin + end, count_include_pad=0)

    def pad(self, x: str, begin, end, name: str, value: float) -> str:
        """A constant Pad node on H and W: `begin` (top, left) and `end` (bottom, right) pixels of `value`."""
        pads = self.const(f"{name}/pads", [0, 0, *begin, 0, 0, *end], np.int64)
        v = self.const(f"{name}/value", value)
        return self.node("Pad", [x, pads, v], name, mode="constant")

    def op_adaptive_avgpool(self, layer, ins):
        """PyTorch's adaptive average pooling: an AveragePool for even bins, bin-averaging MatMuls
        otherwise."""
        (h, w, _), (oh, ow, _) = self.net.shapes[layer.inputs[0]], self.net.shapes[layer.name]
        if h % oh == 0 and w % ow == 0:  # uniform bins: an ordinary average pool
            k = [h // oh, w // ow]
            return self.node("AveragePool", [ins[0]], layer.name, kernel_shape=k, strides=k)
        # uneven bins (PyTorch's rule): y = Bh @ x @ Bw^T with the bin-averaging matrices
        bw = self.const(f"{layer.name}/bins_w", adaptive_bins(w, ow).T)
        bh = self.const(f"{layer.name}/bins_h", adaptive_bins(h, oh))
        t = self.node("MatMul", [ins[0], bw], f"{layer.name}/pool_w")
        return self.node("MatMul", [bh, t], layer.name)

    def op_gap(self, layer, ins):
        """Global average pooling to an (N, C) vector."""
        p = self.node("GlobalAveragePool", [ins[0]], f"{layer.name}/pool")
        return self.node("Flatten", [p], layer.name, axis=1)

    def op_gmp(self, layer, ins):
        """Global max pooling to an (N, C) vector."""
        p = self.node("GlobalMaxPool", [ins[0]], f"{layer.name}/pool")
        return self.node("Flatten", [p], layer.name, axis=1)

    def op_flatten(self, layer, ins):
        """Flatten in NHWC order, as the IR and Keras do (a transpose first for a map larger than 1x1)."""
        shape = self.net.shapes[layer.inputs[0]]
        if len(shape) == 1:
            return ins[0]
        x = ins[0]
        if shape[0] * shape[1] > 1:
            # the IR (and the weights of a following dense) flatten in NHWC order
            x = self.node("Transpose", [x], f"{layer.name}/nhwc", perm=[0, 2, 3, 1])
        return self.node("Flatten", [x], layer.name, axis=1)

    # -- the rest --------------------------------------------------------------------------
    def op_dense(self, layer, ins):
        """Gemm with the Keras (cin, units) kernel, then the layer's activation."""
        ins = [ins[0], self.const(f"{layer.name}/kernel", self.params(layer.name, "kernel"))]
        if layer.attrs["bias"]:
            ins.append(self.const(f"{layer.name}/bias", self.params(layer.name, "bias")))
        y = self.node("Gemm", ins, f"{layer.name}/gemm" if layer.attrs["act"] else layer.name)
        return self.finish(layer, y)

    def op_dropout(self, layer, ins):
        """The identity: the export is for inference."""
        return ins[0]  # inference: identity

    def op_bn(self, layer, ins):
        """BatchNormalization, unless it was folded into the conv before it."""
        if layer.name in self.tensor:  # folded into the conv before it
            return self.tensor[layer.name]
        c = self.net.shapes[layer.name][-1]  # BatchNormalization takes (N, C, ...), a vector's (N, C) too
        return self.batchnorm(layer.name, ins[0], layer.attrs["eps"], c, layer.name)

    def op_act(self, layer, ins):
        """The activation node, leaky_relu with the layer's slope."""
        return self.activation(layer.attrs["fn"], ins[0], layer.name, layer.attrs["slope"])

    def op_channel_shuffle(self, layer, ins):
        """ShuffleNet's channel shuffle as Reshape, Transpose, Reshape."""
        # NCHW: (N, g, C/g, H, W) -> (N, C/g, g, H, W) -> (N, C, H, W); 0 keeps the batch dim
        h, w, c = self.net.shapes[layer.name]
        g = layer.attrs["groups"]
        x = self.node("Reshape",
                      [ins[0], self.const(f"{layer.name}/grid_shape", [0, g, c // g, h, w], np.int64)],
                      f"{layer.name}/grid")
        x = self.node("Transpose", [x], f"{layer.name}/swap", perm=[0, 2, 1, 3, 4])
        return self.node("Reshape", [x, self.const(f"{layer.name}/out_shape", [0, c, h, w], np.int64)],
                         layer.name)

    def op_drop_path(self, layer, ins):
        """The identity: stochastic depth only acts in training."""
        return ins[0]  # inference: identity

    def op_multiply(self, layer, ins):
        """Mul of the inputs; a (N, C) gate is reshaped to (N, C, 1, 1) to scale a map's channels."""
        out = self.net.shapes[layer.name]
        xs = []
        for i, (src, x) in enumerate(zip(layer.inputs, ins)):
            if len(self.net.shapes[src]) == 1 and len(out) == 3:  # (N, C) -> (N, C, 1, 1) broadcasts
                x = self.node("Reshape",
                              [x, self.const(f"{layer.name}/expand{i + 1}/shape", [0, -1, 1, 1], np.int64)],
                              f"{layer.name}/expand{i + 1}")
            xs.append(x)
        y = xs[0]
        for i, x in enumerate(xs[1:], 2):
            y = self.node("Mul", [y, x], layer.name if i == len(xs) else f"{layer.name}/mul{i}")
        return self.rename(y, layer.name)  # the last Mul has the layer's name; one input is passed on

    def op_lrn(self, layer, ins):
        """Caffe/PyTorch LRN: ONNX's LRN for odd sizes, a banded 1x1 conv of squares for even ones."""
        a = layer.attrs
        size, alpha, beta, bias = a["size"], a["alpha"], a["beta"], a["bias"]
        if size % 2 == 1:
            # ONNX LRN is Caffe's: x / (bias + alpha / size * sum of squares)^beta over a centred
            # window, which is the IR's (and PyTorch's) for odd sizes
            return self.node("LRN", [ins[0]], layer.name, size=size, alpha=alpha, beta=beta, bias=bias)
        # even sizes: PyTorch sums channels [c - size//2, c + (size-1)//2] while ONNX's window
        # leans the other way; sum the squares with a banded 1x1 conv instead
        c = self.net.shapes[layer.name][-1]
        band = np.zeros((c, c, 1, 1))
        for o in range(c):
            band[o, max(0, o - size // 2):min(c, o + size // 2), 0, 0] = 1.0  # c - size/2 .. c + size/2 - 1
        sq = self.node("Mul", [ins[0], ins[0]], f"{layer.name}/square")
        s = self.node("Conv", [sq, self.const(f"{layer.name}/window", band)], f"{layer.name}/sum",
                      kernel_shape=[1, 1])
        s = self.node("Mul", [s, self.const(f"{layer.name}/alpha", alpha / size)], f"{layer.name}/scaled")
        s = self.node("Add", [s, self.const(f"{layer.name}/bias", bias)], f"{layer.name}/base")
        s = self.node("Pow", [s, self.const(f"{layer.name}/beta", -beta)], f"{layer.name}/inv")
        return self.node("Mul", [ins[0], s], layer.name)

    def op_scale(self, layer, ins):
        """Mul by the constant factor."""
        return self.node("Mul", [ins[0], self.const(f"{layer.name}/factor", layer.attrs["factor"])],
                         layer.name)

    def op_affine(self, layer, ins):
        """Per-channel x * scale + shift (affine, and normalize as its (1/std, -mean/std))."""
        scale, shift = affine_of(layer.attrs)
        c = self.net.shapes[layer.name][-1]
        dims = (1, c, 1, 1) if len(self.net.shapes[layer.name]) == 3 else (1, c)
        per_channel = lambda v: np.broadcast_to(v, (c,)).reshape(dims)  # noqa: E731 (const() writes float32)
        x = self.node("Mul", [ins[0], self.const(f"{layer.name}/scale", per_channel(scale))],
                      f"{layer.name}/scaled")
        return self.node("Add", [x, self.const(f"{layer.name}/shift", per_channel(shift))], layer.name)

    def op_zeropad(self, layer, ins):
        """A zero Pad node of (top, bottom, left, right) pixels."""
        t, b, l, r = layer.attrs["pad"]
        return self.pad(ins[0], [t, l], [b, r], layer.name, 0.0)

    def op_concat(self, layer, ins):
        """Concat along channels (NCHW axis 1, or a vector's)."""
        return self.node("Concat", ins, layer.name, axis=1)  # channels: NCHW axis 1, or a vector's

    def op_add(self, layer, ins):
        """Add for two inputs, Sum for more."""
        return self.node("Add" if len(ins) == 2 else "Sum", ins, layer.name)
