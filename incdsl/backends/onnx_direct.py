"""The direct ONNX emitter: the checked graph IR to an ONNX model with the `onnx` package alone.

No TensorFlow, Keras or onnxruntime here. Every IR layer becomes one or a few ONNX nodes; the
tensor a layer produces is named after the layer (`inception3a/b2/conv_1`), its weights after it
too (`inception3a/b2/conv_1/kernel`), so Netron, `incdsl summary` and Keras show the same names.

Inside, tensors are NCHW (what ONNX's Conv and pools take). With layout="nhwc" the graph takes an
NHWC input and transposes it once at the start; feature-map outputs are transposed back.

Padding and pooling windows are always written as explicit pads, computed from the shapes the
front end inferred (this backend translates, it never recomputes shapes):
- pad=same (TF/Keras) puts any odd pixel at the bottom/right: asymmetric pads;
- ceil mode becomes extra padding at the bottom/right, so that ONNX's floor rule gives the same
  output size (ONNX's own ceil_mode differs across opsets and runtimes on the "last window must
  start inside the input" rule);
- max pooling ignores pads (ONNX pads MaxPool with -inf), average pooling excludes them
  (count_include_pad=0) except the real padding of count_pad=true, which becomes a zero Pad node
  first; the ceil overhang then still does not count, as in PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import SpecError
from ..ops import LEAKY_RELU_SLOPE, affine_of

NEG_INF = float("-inf")  # what max pooling pads with (Keras and ONNX MaxPool alike)

# Keras 3's activation defaults (keras.activations), which the Keras backend uses by name.
# leaky_relu without a slope: ops.LEAKY_RELU_SLOPE, keras.activations.leaky_relu's 0.2
ELU_ALPHA = 1.0


@dataclass
class Emitted:
    """The model plus what verification needs to know about it."""
    model: onnx.ModelProto
    layer_tensors: dict[str, str]  # IR layer -> ONNX tensor holding its output (NCHW inside)
    folded: int = 0  # batch norms folded into convolutions


def emit(net: Network, weights: dict, opset: int = 18, layout: str = "nchw", batch: int | None = None,
         fold_bn: bool = True, preprocess=None) -> Emitted:
    """Build the inference graph of `net` (training-only heads and dropout left out). With
    `preprocess` (an onnx_weights.Preprocess), the model takes raw pixels as the trained Keras
    model it came from does, and scales them first."""
    sets = ", ".join(f"{k}={v}" for k, v in net.params.items())
    doc = f"incdsl: network {net.name} from {net.path}" + (f" ({sets})" if sets else "")
    return _Emitter(net, weights, opset, layout, batch, fold_bn, preprocess).build(doc)


def _dims(shape, batch):
    """ONNX dims of an NHWC-without-batch shape, in NCHW."""
    b = "batch" if batch is None else batch
    if len(shape) == 3:
        h, w, c = shape
        return [b, c, h, w]
    return [b, *shape]


def same_pads(n: int, k: int, s: int, d: int, out: int) -> tuple[int, int]:
    """TF/Keras pad=same on one axis of size `n` (kernel `k`, stride `s`, dilation `d`, output
    `out` = ceil(n / s)): (begin, end) pads whose total gives `out`, the odd pixel at the end
    (TensorFlow's 'SAME' padding rule, tf.nn.convolution; torch.nn.Conv2d(padding='same'), stride 1
    only, puts it the same way)."""
    ke = d * (k - 1) + 1
    total = max((out - 1) * s + ke - n, 0)
    return total // 2, total - total // 2


def window_pads(layer, in_shape, out_shape) -> tuple[list[int], list[int]]:
    """(begin, end) pads per spatial dim [h, w] for a conv/pool layer, from the inferred shapes.

    The end pads include the ceil-mode overhang: whatever padding makes ONNX's floor rule give
    the inferred output size.
    """
    a = layer.attrs
    kernel, stride = a["kernel"], a["stride"]
    dil = a.get("dilation", (1, 1))
    pad = a["pad"]
    begin, end = [], []
    for i in range(2):
        n, k, s, d, out = in_shape[i], kernel[i], stride[i], dil[i], out_shape[i]
        if pad == "same":
            lo, hi = same_pads(n, k, s, d, out)
        elif pad == "valid":
            lo, hi = 0, 0
        else:
            lo, hi = pad[2 * i], pad[2 * i + 1]
        ke = d * (k - 1) + 1
        hi += max((out - 1) * s + ke - (n + lo + hi), 0)
        begin.append(lo)
        end.append(hi)
    return begin, end


def real_pads(layer, in_shape, out_shape) -> tuple[list[int], list[int]]:
    """The padding the spec asks for, without the ceil overhang (for count_pad=true)."""
    pad = layer.attrs["pad"]
    if pad == "valid":
        return [0, 0], [0, 0]
    if pad == "same":
        return window_pads(layer, in_shape, out_shape)
    return [pad[0], pad[2]], [pad[1], pad[3]]


def adaptive_bins(n: int, out: int) -> np.ndarray:
    """PyTorch's adaptive average pooling as an (out, n) matrix: bin i averages
    [floor(i*n/out), ceil((i+1)*n/out))."""
    m = np.zeros((out, n), np.float64)
    for i in range(out):
        lo, hi = (i * n) // out, -(-((i + 1) * n) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def bn_affine(p: dict, eps: float, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm at inference as y = x * scale + shift per channel (float64 arrays of shape
    (channels,)): scale = gamma / sqrt(moving_variance + eps), shift = beta - moving_mean * scale
    (Keras' BatchNormalization and torch.nn.BatchNorm2d in eval mode; gamma 1 when the layer does
    not scale). Used to fold a batch norm into the convolution before it."""
    gamma = np.asarray(p.get("gamma", np.ones(channels)), np.float64)
    scale = gamma / np.sqrt(np.asarray(p["moving_variance"], np.float64) + eps)
    shift = np.asarray(p["beta"], np.float64) - np.asarray(p["moving_mean"], np.float64) * scale
    return scale, shift


class _Emitter:
    def __init__(self, net: Network, weights: dict, opset: int, layout: str, batch: int | None, fold_bn: bool,
                 preprocess=None):
        self.net, self.w, self.opset, self.layout, self.batch, self.fold_bn = net, weights, opset, layout, batch, fold_bn
        self.preprocess = preprocess
        self.nodes: list[onnx.NodeProto] = []
        # initializers go straight into the model: copying ~100 MB of weights through
        # make_graph/make_model costs more than emitting the whole graph
        self.model = onnx.ModelProto()
        self.tensor: dict[str, str] = {}  # IR layer -> tensor name
        self.folded = 0
        self.keep = [n for n in net.layers if n in net.inference]
        self.absorbed = self._standalone_bn_folds() if fold_bn else {}

    # -- helpers -------------------------------------------------------------------------
    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        """Add one node whose single output tensor has the node's name."""
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def const(self, name: str, value, dtype=np.float32) -> str:
        arr = np.asarray(value, np.dtype(dtype).newbyteorder("<"))  # ONNX raw data is little-endian
        t = self.model.graph.initializer.add()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
        t.dims.extend(arr.shape)
        t.raw_data = arr.tobytes()  # C order: a transposed view is copied in its logical order
        return name

    def params(self, layer_name: str, key: str) -> np.ndarray:
        return np.asarray(self.w[layer_name][key])

    def _standalone_bn_folds(self) -> dict[str, str]:
        """Standalone `bn` layers that can fold into the conv before them: conv -> bn with the conv
        feeding nothing else and having no batch norm or activation of its own."""
        out: dict[str, str] = {}
        consumers: dict[str, int] = {}
        for n in self.keep:
            for i in self.net.layers[n].inputs:
                consumers[i] = consumers.get(i, 0) + 1
        for h in self.net.heads:  # an output that reads the conv itself needs it before the bn
            if h.node in self.keep:
                consumers[h.node] = consumers.get(h.node, 0) + 1
        for n in self.keep:
            layer = self.net.layers[n]
            if layer.op != "bn":
                continue
            src = self.net.layers[layer.inputs[0]]
            if (src.op in ("conv", "dwconv", "sepconv") and not src.attrs["bn"] and src.attrs["act"] is None
                    and consumers[src.name] == 1):
                out[src.name] = n
        return out

    # -- the graph -----------------------------------------------------------------------
    def build(self, doc: str) -> Emitted:
        net = self.net
        graph_inputs = []
        for name in self.keep:
            layer = net.layers[name]
            if layer.op == "input":
                graph_inputs.append(self.emit_input(layer))
                continue
            ins = [self.tensor[i] for i in layer.inputs]
            out = getattr(self, "op_" + layer.op)(layer, ins)
            self.tensor[name] = out

        outputs = []
        for head in net.heads:
            if head.train_only:
                continue
            t = self.tensor[head.node]
            shape = net.shapes[head.node]
            if len(shape) == 3 and self.layout == "nhwc":
                if t == head.name:  # the output's name goes to the NHWC tensor: rename the NCHW one
                    t = self._rename_tensor(t, f"{t}/nchw")
                self.nodes.append(helper.make_node("Transpose", [t], [head.name], name=f"{head.name}/nhwc",
                                                   perm=[0, 2, 3, 1]))
                t = head.name
            if t != head.name:
                t = self.node("Identity", [t], head.name)
            dims = _dims(shape, self.batch)
            if len(shape) == 3 and self.layout == "nhwc":
                dims = [dims[0], dims[2], dims[3], dims[1]]
            outputs.append(helper.make_tensor_value_info(head.name, TensorProto.FLOAT, dims))

        model = self.model
        g = model.graph
        g.name, g.doc_string = net.name, doc
        g.node.extend(self.nodes)
        g.input.extend(graph_inputs)
        g.output.extend(outputs)
        opsets = [helper.make_opsetid("", self.opset)]
        model.opset_import.extend(opsets)
        model.producer_name, model.producer_version, model.doc_string = "incdsl", _version(), doc
        # The lowest IR version that carries this opset: readable by the oldest runtimes that can.
        model.ir_version = helper.find_min_ir_version_for(opsets)
        return Emitted(model, dict(self.tensor), self.folded)

    def emit_input(self, layer) -> onnx.ValueInfoProto:
        dims = _dims(self.net.shapes[layer.name], self.batch)
        if self.layout == "nhwc":
            b, c, h, w = dims
            vi = helper.make_tensor_value_info(layer.name, TensorProto.FLOAT, [b, h, w, c])
            self.tensor[layer.name] = self.node("Transpose", [layer.name], f"{layer.name}/nchw", perm=[0, 3, 1, 2])
        else:
            vi = helper.make_tensor_value_info(layer.name, TensorProto.FLOAT, dims)
            self.tensor[layer.name] = layer.name
        if self.preprocess is not None:  # raw pixels -> the network's input, per channel
            c = dims[1]
            x = self.node("Mul", [self.tensor[layer.name], self.const("preprocess/scale", self.preprocess.scale.reshape(1, c, 1, 1))],
                          "preprocess/scaled")
            self.tensor[layer.name] = self.node("Add", [x, self.const("preprocess/offset", self.preprocess.offset.reshape(1, c, 1, 1))],
                                                "preprocess")
        return vi

    def finish(self, layer, x: str) -> str:
        """The layer's activation (if any); the last tensor is named after the layer."""
        act = layer.attrs.get("act")
        if act is None:
            return self.rename(x, layer.name)
        return self.activation(act, x, layer.name)

    def rename(self, x: str, name: str) -> str:
        if x == name:
            return x
        last = self.nodes[-1] if self.nodes else None
        if last is not None and last.output[0] == x and x.startswith(name + "/"):
            # rename the node that made x rather than adding an Identity
            last.output[0] = name
            last.name = name
            return name
        return self.node("Identity", [x], name)

    def _rename_tensor(self, old: str, new: str) -> str:
        for n in self.nodes:
            n.input[:] = [new if i == old else i for i in n.input]
            n.output[:] = [new if o == old else o for o in n.output]
        self.tensor = {k: new if v == old else v for k, v in self.tensor.items()}
        return new

    def activation(self, act: str, x: str, layer_name: str, slope: float | None = None) -> str:
        """The activation node; its output is the layer's tensor."""
        n = layer_name
        if act == "relu":
            return self.node("Relu", [x], n)
        if act == "relu6":
            lo = self.const(f"{layer_name}/relu6_min", 0.0)
            hi = self.const(f"{layer_name}/relu6_max", 6.0)
            return self.node("Clip", [x, lo, hi], n)
        if act == "sigmoid":
            return self.node("Sigmoid", [x], n)
        if act == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
            return self.node("HardSigmoid", [x], n, alpha=1.0 / 6.0, beta=0.5)
        if act == "tanh":
            return self.node("Tanh", [x], n)
        if act in ("softmax", "log_softmax"):  # over channels: NCHW axis 1, or a vector's
            return self.node("Softmax" if act == "softmax" else "LogSoftmax", [x], n, axis=1)
        if act == "silu":
            s = self.node("Sigmoid", [x], f"{layer_name}/sigmoid")
            return self.node("Mul", [x, s], n)
        if act == "gelu":  # exact (erf) GELU, keras.activations.gelu(approximate=False)
            if self.opset >= 20:
                return self.node("Gelu", [x], n)
            r = self.node("Mul", [x, self.const(f"{layer_name}/gelu_rsqrt2", 1 / np.sqrt(2.0))], f"{layer_name}/gelu_scaled")
            e = self.node("Erf", [r], f"{layer_name}/gelu_erf")
            e1 = self.node("Add", [e, self.const(f"{layer_name}/gelu_one", 1.0)], f"{layer_name}/gelu_erf1")
            hx = self.node("Mul", [x, self.const(f"{layer_name}/gelu_half", 0.5)], f"{layer_name}/gelu_half_x")
            return self.node("Mul", [hx, e1], n)
        if act == "elu":
            return self.node("Elu", [x], n, alpha=ELU_ALPHA)
        if act == "leaky_relu":
            return self.node("LeakyRelu", [x], n, alpha=LEAKY_RELU_SLOPE if slope is None else slope)
        raise AssertionError(f"activation {act} has no ONNX translation")

    # -- convolutions --------------------------------------------------------------------
    def conv_bn(self, layer, x: str, kernel: np.ndarray, kernel_name: str, bias, group: int,
                pads: list[int], strides, dilations, node_name: str) -> str:
        """Conv, then the layer's batch norm: folded into kernel and bias, or a BatchNormalization
        node. `kernel` is ONNX's (cout, cin / group, kh, kw), possibly a transposed view."""
        name = layer.name
        channels = kernel.shape[0]
        bn_of = layer.name if layer.attrs["bn"] else self.absorbed.get(layer.name)
        eps = None
        if bn_of is not None:
            a = self.net.layers[bn_of].attrs
            eps = a["bn_eps"] if bn_of == name else a["eps"]
        fold = bn_of is not None and self.fold_bn
        if fold:
            scale, shift = bn_affine(self.w[bn_of], eps, channels)  # float64
            kernel = np.multiply(kernel, scale.astype(np.float32)[:, None, None, None], order="C")
            bias = shift + (bias * scale if bias is not None else 0.0)
            self.folded += 1
        ins = [x, self.const(kernel_name, kernel)]
        if bias is not None:
            ins.append(self.const(f"{name}/bias", bias))
        y = self.node("Conv", ins, node_name, kernel_shape=list(kernel.shape[2:]), strides=list(strides),
                      dilations=list(dilations), pads=pads, group=group)
        if bn_of is not None and not fold:
            y = self.batchnorm(bn_of, y, eps, channels, f"{name}/bn")
        return y

    def batchnorm(self, bn_name: str, x: str, eps: float, channels: int, out: str) -> str:
        p = self.w[bn_name]
        gamma = p.get("gamma", np.ones(channels, np.float32))
        ins = [x, self.const(f"{bn_name}/gamma", gamma), self.const(f"{bn_name}/beta", p["beta"]),
               self.const(f"{bn_name}/moving_mean", p["moving_mean"]),
               self.const(f"{bn_name}/moving_variance", p["moving_variance"])]
        return self.node("BatchNormalization", ins, out, epsilon=float(eps))

    def _bias(self, layer):
        if not layer.attrs["bias"]:
            return None
        return np.asarray(self.params(layer.name, "bias"), np.float64)  # small: folds in float64

    def _pads(self, layer) -> list[int]:
        begin, end = window_pads(layer, self.net.shapes[layer.inputs[0]], self.net.shapes[layer.name])
        return begin + end

    def _more(self, layer) -> bool:
        """Does anything follow the conv node inside this layer?"""
        unfolded_bn = (layer.attrs["bn"] or layer.name in self.absorbed) and not self.fold_bn
        return unfolded_bn or layer.attrs["act"] is not None

    def op_conv(self, layer, ins):
        k = np.asarray(self.params(layer.name, "kernel"), np.float32)  # Keras (kh, kw, cin, cout)
        a = layer.attrs
        y = self.conv_bn(layer, ins[0], k.transpose(3, 2, 0, 1), f"{layer.name}/kernel", self._bias(layer), a["groups"],
                         self._pads(layer), a["stride"], a["dilation"],
                         f"{layer.name}/conv" if self._more(layer) else layer.name)
        return self._after_conv(layer, y)

    @staticmethod
    def _depthwise(k: np.ndarray) -> np.ndarray:
        # Keras (kh, kw, cin, mult) -> ONNX (cin*mult, 1, kh, kw); output channel c*mult + m reads
        # input channel c in both
        kh, kw, cin, mult = k.shape
        return k.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)

    def op_dwconv(self, layer, ins):
        k = np.asarray(self.params(layer.name, "depthwise_kernel"), np.float32)
        a = layer.attrs
        y = self.conv_bn(layer, ins[0], self._depthwise(k), f"{layer.name}/depthwise_kernel", self._bias(layer),
                         k.shape[2], self._pads(layer), a["stride"], a["dilation"],
                         f"{layer.name}/conv" if self._more(layer) else layer.name)
        return self._after_conv(layer, y)

    def op_sepconv(self, layer, ins):
        name, a = layer.name, layer.attrs
        dk = np.asarray(self.params(name, "depthwise_kernel"), np.float32)
        d = self.node("Conv", [ins[0], self.const(f"{name}/depthwise_kernel", self._depthwise(dk))],
                      f"{name}/depthwise", kernel_shape=list(dk.shape[:2]), strides=list(a["stride"]),
                      dilations=list(a["dilation"]), pads=self._pads(layer), group=dk.shape[2])
        pk = np.asarray(self.params(name, "pointwise_kernel"), np.float32)  # (1, 1, cin*mult, cout)
        # batch norm folds into the pointwise half (a 1x1 conv without padding)
        y = self.conv_bn(layer, d, pk.transpose(3, 2, 0, 1), f"{name}/pointwise_kernel", self._bias(layer), 1,
                         [0, 0, 0, 0], (1, 1), (1, 1), f"{name}/pointwise" if self._more(layer) else name)
        return self._after_conv(layer, y)

    def _after_conv(self, layer, y: str) -> str:
        if layer.name in self.absorbed:
            # the standalone bn after this conv was folded in (or emitted just above): the bn
            # layer's output is this tensor
            self.tensor[self.absorbed[layer.name]] = y = self.rename(y, layer.name)
            return y
        return self.finish(layer, y)

    # -- pooling -------------------------------------------------------------------------
    def op_maxpool(self, layer, ins):
        a = layer.attrs
        begin, end = window_pads(layer, self.net.shapes[layer.inputs[0]], self.net.shapes[layer.name])
        x = ins[0]
        if any(p >= k for p, k in zip(begin + end, list(a["kernel"]) * 2)):
            # onnxruntime refuses pool pads as large as the window: pad with -inf first
            x = self.pad(x, begin, end, f"{layer.name}/pad", NEG_INF)
            begin, end = [0, 0], [0, 0]
        return self.node("MaxPool", [x], layer.name, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                         pads=begin + end)

    def op_avgpool(self, layer, ins):
        a = layer.attrs
        in_shape, out_shape = self.net.shapes[layer.inputs[0]], self.net.shapes[layer.name]
        begin, end = window_pads(layer, in_shape, out_shape)
        x = ins[0]
        if a["count_pad"]:
            # the real padding counts in the average: make it real zeros; the ceil overhang
            # beyond it does not count (PyTorch), so it stays an excluded pool pad
            rb, re = real_pads(layer, in_shape, out_shape)
            if any(rb + re):
                x = self.pad(x, rb, re, f"{layer.name}/pad", 0.0)
                begin, end = [0, 0], [e - r for e, r in zip(end, re)]
        if any(p >= k for p, k in zip(begin + end, list(a["kernel"]) * 2)):
            # some window would hold padding only: onnxruntime refuses such pads
            raise SpecError("ONNX cannot average-pool with padding as large as the window", layer.span,
                            hint="use less padding than the pooling window")
        return self.node("AveragePool", [x], layer.name, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                         pads=begin + end, count_include_pad=0)

    def pad(self, x: str, begin, end, name: str, value: float) -> str:
        pads = self.const(f"{name}/pads", [0, 0, *begin, 0, 0, *end], np.int64)
        v = self.const(f"{name}/value", value)
        return self.node("Pad", [x, pads, v], name, mode="constant")

    def op_adaptive_avgpool(self, layer, ins):
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
        p = self.node("GlobalAveragePool", [ins[0]], f"{layer.name}/pool")
        return self.node("Flatten", [p], layer.name, axis=1)

    def op_gmp(self, layer, ins):
        p = self.node("GlobalMaxPool", [ins[0]], f"{layer.name}/pool")
        return self.node("Flatten", [p], layer.name, axis=1)

    def op_flatten(self, layer, ins):
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
        ins = [ins[0], self.const(f"{layer.name}/kernel", self.params(layer.name, "kernel"))]
        if layer.attrs["bias"]:
            ins.append(self.const(f"{layer.name}/bias", self.params(layer.name, "bias")))
        y = self.node("Gemm", ins, f"{layer.name}/gemm" if layer.attrs["act"] else layer.name)
        return self.finish(layer, y)

    def op_dropout(self, layer, ins):
        return ins[0]  # inference: identity

    def op_bn(self, layer, ins):
        if layer.name in self.tensor:  # folded into the conv before it
            return self.tensor[layer.name]
        c = self.net.shapes[layer.name][-1]  # BatchNormalization takes (N, C, ...), a vector's (N, C) too
        return self.batchnorm(layer.name, ins[0], layer.attrs["eps"], c, layer.name)

    def op_act(self, layer, ins):
        return self.activation(layer.attrs["fn"], ins[0], layer.name, layer.attrs["slope"])

    def op_channel_shuffle(self, layer, ins):
        # NCHW: (N, g, C/g, H, W) -> (N, C/g, g, H, W) -> (N, C, H, W); 0 keeps the batch dim
        h, w, c = self.net.shapes[layer.name]
        g = layer.attrs["groups"]
        x = self.node("Reshape", [ins[0], self.const(f"{layer.name}/grid_shape", [0, g, c // g, h, w], np.int64)],
                      f"{layer.name}/grid")
        x = self.node("Transpose", [x], f"{layer.name}/swap", perm=[0, 2, 1, 3, 4])
        return self.node("Reshape", [x, self.const(f"{layer.name}/out_shape", [0, c, h, w], np.int64)], layer.name)

    def op_drop_path(self, layer, ins):
        return ins[0]  # inference: identity

    def op_multiply(self, layer, ins):
        out = self.net.shapes[layer.name]
        xs = []
        for i, (src, x) in enumerate(zip(layer.inputs, ins)):
            if len(self.net.shapes[src]) == 1 and len(out) == 3:  # (N, C) -> (N, C, 1, 1) broadcasts
                x = self.node("Reshape", [x, self.const(f"{layer.name}/expand{i + 1}/shape", [0, -1, 1, 1], np.int64)],
                              f"{layer.name}/expand{i + 1}")
            xs.append(x)
        y = xs[0]
        for i, x in enumerate(xs[1:], 2):
            y = self.node("Mul", [y, x], layer.name if i == len(xs) else f"{layer.name}/mul{i}")
        return y if len(xs) > 1 else self.rename(y, layer.name)

    def op_lrn(self, layer, ins):
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
            band[o, max(0, o - size // 2):min(c, o + (size - 1) // 2 + 1), 0, 0] = 1.0
        sq = self.node("Mul", [ins[0], ins[0]], f"{layer.name}/square")
        s = self.node("Conv", [sq, self.const(f"{layer.name}/window", band)], f"{layer.name}/sum", kernel_shape=[1, 1])
        s = self.node("Mul", [s, self.const(f"{layer.name}/alpha", alpha / size)], f"{layer.name}/scaled")
        s = self.node("Add", [s, self.const(f"{layer.name}/bias", bias)], f"{layer.name}/base")
        s = self.node("Pow", [s, self.const(f"{layer.name}/beta", -beta)], f"{layer.name}/inv")
        return self.node("Mul", [ins[0], s], layer.name)

    def op_scale(self, layer, ins):
        return self.node("Mul", [ins[0], self.const(f"{layer.name}/factor", layer.attrs["factor"])], layer.name)

    def op_affine(self, layer, ins):
        scale, shift = affine_of(layer.attrs)
        c = self.net.shapes[layer.name][-1]
        dims = (1, c, 1, 1) if len(self.net.shapes[layer.name]) == 3 else (1, c)
        per_channel = lambda v: np.broadcast_to(np.asarray(v, np.float32), (c,)).reshape(dims)  # noqa: E731
        x = self.node("Mul", [ins[0], self.const(f"{layer.name}/scale", per_channel(scale))], f"{layer.name}/scaled")
        return self.node("Add", [x, self.const(f"{layer.name}/shift", per_channel(shift))], layer.name)

    op_normalize = op_affine

    def op_zeropad(self, layer, ins):
        t, b, l, r = layer.attrs["pad"]
        return self.pad(ins[0], [t, l], [b, r], layer.name, 0.0)

    def op_concat(self, layer, ins):
        return self.node("Concat", ins, layer.name, axis=1)  # channels: NCHW axis 1, or a vector's

    def op_add(self, layer, ins):
        return self.node("Add" if len(ins) == 2 else "Sum", ins, layer.name)


def _version() -> str:
    from ..version import __version__
    return __version__
