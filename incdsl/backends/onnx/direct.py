"""The direct ONNX emitter: the checked graph IR to an ONNX model with the `onnx` package alone.

No TensorFlow, Keras or onnxruntime here. Every IR layer becomes one or a few ONNX nodes; the
tensor a layer produces is named after the layer (`inception3a/b2/conv_1`), its weights after it
too (`inception3a/b2/conv_1/kernel`), so Netron, `incdsl summary` and Keras show the same names.

Inside, tensors are NCHW (what ONNX's Conv and pools take). With layout="nhwc" the graph takes an
NHWC input and transposes it once at the start; feature-map outputs are transposed back.

Convolutions and pools read their explicit pads from `Network.pads` (incdsl/passes/pads.py:
TF's "same" split with the odd pixel at the bottom/right, explicit padding, and the ceil-mode
overhang as extra end padding so that ONNX's floor rule gives the inferred output size; ONNX's own
ceil_mode differs across opsets and runtimes on the "last window must start inside the input"
rule). This backend translates: it never recomputes a shape or a pad.

This file assembles the graph and emits the convolutions, which fold batch norm; every other op's
translation is in ops.py. `EMITTERS` (at the end) maps each op to its method.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

from ...ops.groups import CONVS
from .ops import OpEmitters


@dataclass
class Emitted:
    """The model plus what verification needs to know about it. The large initializers (more than
    LARGE elements: the weights) are kept apart as arrays, so that the file's bytes are written
    from them directly (`serialized`) rather than copied through protobuf three times."""
    head: onnx.ModelProto  # the whole model but the large initializers
    layer_tensors: dict[str, str]  # IR layer -> ONNX tensor holding its output (NCHW inside)
    folded: int = 0  # batch norms folded into convolutions
    large: list = field(default_factory=list)  # (name, C-order little-endian array) of the large initializers

    def serialized(self) -> bytes:
        """The model's bytes, as `model.SerializeToString()` would give them up to field order.
        Protobuf reads the fields of a message in any order, so the graph is the head's graph
        with one encoded TensorProto appended per large initializer (GraphProto field 5)."""
        return b"".join(model_pieces(self.head, self.large))

    @property
    def model(self) -> onnx.ModelProto:
        """The whole model as a ModelProto (parsed from `serialized()`: ~100 MB for Inception v3)."""
        return onnx.load_from_string(self.serialized())

    def skeleton(self) -> onnx.ModelProto:
        """The head with each large initializer as a graph input of its type and shape: shape
        inference gives the same shapes (a weight's values never decide one) without the weights."""
        out = onnx.ModelProto()
        out.CopyFrom(self.head)
        out.graph.input.extend(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype),
                                                             a.shape)
                               for name, a in self.large)
        return out


LARGE = 1024  # initializers of more elements than this are kept as arrays (`Emitted.large`)


def _varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, length: int) -> bytes:
    """The key and length of a length-delimited protobuf field (wire type 2) of `length` bytes."""
    return _varint(number << 3 | 2) + _varint(length)


def model_pieces(head: onnx.ModelProto, large: list) -> list:
    """The serialized model as a list of bytes-like pieces: `head` (a ModelProto) with the large
    initializers `large` ((name, C-order little-endian array) pairs) added to its graph, each as a
    TensorProto whose raw_data is the array's own memory (no copy). Field numbers: ModelProto.graph
    7, GraphProto.initializer 5, TensorProto.raw_data 9 (onnx/onnx.proto)."""
    rest = onnx.ModelProto()
    rest.CopyFrom(head)
    rest.ClearField("graph")
    graph = [head.graph.SerializeToString()]
    for name, a in large:
        t = onnx.TensorProto(name=name, dims=a.shape, data_type=helper.np_dtype_to_tensor_dtype(a.dtype))
        meta, raw = t.SerializeToString(), memoryview(a).cast("B")
        body = meta + _field(9, raw.nbytes)
        graph += [_field(5, len(body) + raw.nbytes) + body, raw]
    size = sum(len(g) if isinstance(g, bytes) else g.nbytes for g in graph)
    return [rest.SerializeToString(), _field(7, size), *graph]


def emit(net, weights: dict, opset: int = 18, layout: str = "nchw", batch: int | None = None,
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


def bn_affine(p: dict, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm at inference as y = x * scale + shift per channel (float64 arrays of shape
    (channels,)): scale = gamma / sqrt(moving_variance + eps), shift = beta - moving_mean * scale
    (Keras' BatchNormalization and torch.nn.BatchNorm2d in eval mode; gamma 1 when the layer does
    not scale). Used to fold a batch norm into the convolution before it."""
    variance, beta, mean = (np.asarray(p[k], np.float64) for k in ("moving_variance", "beta", "moving_mean"))
    scale = p.get("gamma", 1.0) / np.sqrt(variance + eps)  # float64: gamma's float32 promotes
    return scale, beta - mean * scale


class _Emitter(OpEmitters):
    def __init__(self, net, weights: dict, opset: int, layout: str, batch: int | None, fold_bn: bool,
                 preprocess=None):
        self.net, self.w, self.opset, self.layout, self.batch, self.fold_bn = (
            net,
            weights,
            opset,
            layout,
            batch,
            fold_bn,
        )
        self.preprocess = preprocess
        self.nodes: list[onnx.NodeProto] = []
        # small initializers go straight into the model (copying through make_graph/make_model
        # costs more than emitting the graph); large ones stay arrays until the file is written
        self.model = onnx.ModelProto()
        self.large: list = []  # (name, array) of the initializers of more than LARGE elements
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
        if arr.size > LARGE:  # kept as an array, written from its memory (Emitted.serialized)
            self.large.append((name, np.ascontiguousarray(arr)))
            return name
        t = self.model.graph.initializer.add()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
        t.dims.extend(arr.shape)
        t.raw_data = arr.tobytes()  # C order: a transposed view is copied in its logical order
        return name

    def params(self, layer_name: str, key: str) -> np.ndarray:
        """One weight array of a layer, in float32 (the model's type; a float64 array a user passes
        is not copied twice the size through the folding)."""
        return np.asarray(self.w[layer_name][key], np.float32)

    def _standalone_bn_folds(self) -> dict[str, str]:
        """Standalone `bn` layers that can fold into the conv before them: conv -> bn with the conv
        feeding nothing else and having no batch norm or activation of its own."""
        readers = Counter(i for n in self.keep for i in self.net.layers[n].inputs)
        outputs = {h.node for h in self.net.heads}  # an output that reads the conv needs it before the bn
        out: dict[str, str] = {}
        for n in self.keep:
            layer = self.net.layers[n]
            if layer.op != "bn":
                continue
            src = self.net.layers[layer.inputs[0]]
            if (src.op in CONVS and not src.attrs["bn"] and src.attrs["act"] is None
                    and readers[src.name] == 1 and src.name not in outputs):
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
            out = EMITTERS[layer.op](self, layer, ins)
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
        return Emitted(model, dict(self.tensor), self.folded, self.large)

    def emit_input(self, layer) -> onnx.ValueInfoProto:
        dims = _dims(self.net.shapes[layer.name], self.batch)
        if self.layout == "nhwc":
            b, c, h, w = dims
            vi = helper.make_tensor_value_info(layer.name, TensorProto.FLOAT, [b, h, w, c])
            self.tensor[layer.name] = self.node("Transpose", [layer.name], f"{layer.name}/nchw",
                                                perm=[0, 3, 1, 2])
        else:
            vi = helper.make_tensor_value_info(layer.name, TensorProto.FLOAT, dims)
            self.tensor[layer.name] = layer.name
        if self.preprocess is not None:  # raw pixels -> the network's input, per channel
            c = dims[1]
            x = self.node("Mul",
                          [self.tensor[layer.name],
                           self.const("preprocess/scale", self.preprocess.scale.reshape(1, c, 1, 1))],
                          "preprocess/scaled")
            self.tensor[layer.name] = self.node("Add",
                                                [x,
                                                 self.const("preprocess/offset",
                                                            self.preprocess.offset.reshape(1, c, 1, 1))],
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

    def conv_bn(self, layer, x: str, kernel: np.ndarray, kernel_name: str, bias, group: int,
                pads: list[int], strides, dilations, node_name: str) -> str:
        """Conv, then the layer's batch norm: folded into kernel and bias, or a BatchNormalization
        node. `kernel` is ONNX's (cout, cin / group, kh, kw), possibly a transposed view. The nodes
        are named inside the layer (`node_name`, LAYER/bn); the layer's last node takes the layer's
        name when it is finished (`finish`, `rename`)."""
        name = layer.name
        channels = kernel.shape[0]
        bn_of = layer.name if layer.attrs["bn"] else self.absorbed.get(layer.name)
        if bn_of is not None:
            a = self.net.layers[bn_of].attrs
            eps = a["bn_eps"] if bn_of == name else a["eps"]
        fold = bn_of is not None and self.fold_bn
        if fold:
            scale, shift = bn_affine(self.w[bn_of], eps)  # float64
            kernel = kernel * scale.astype(np.float32)[:, None, None, None]
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
        gamma = p.get("gamma", np.ones(channels))  # const() writes float32
        ins = [x, self.const(f"{bn_name}/gamma", gamma), self.const(f"{bn_name}/beta", p["beta"]),
               self.const(f"{bn_name}/moving_mean", p["moving_mean"]),
               self.const(f"{bn_name}/moving_variance", p["moving_variance"])]
        return self.node("BatchNormalization", ins, out, epsilon=float(eps))

    def _bias(self, layer):
        if not layer.attrs["bias"]:
            return None
        return self.params(layer.name, "bias")  # folds in float64 with bn_affine's scale

    def _pads(self, layer) -> list[int]:
        p = self.net.pads[layer.name]
        return p.begin + p.end

    def op_conv(self, layer, ins):
        k = self.params(layer.name, "kernel")  # Keras (kh, kw, cin, cout)
        a = layer.attrs
        y = self.conv_bn(layer, ins[0], k.transpose(3, 2, 0, 1), f"{layer.name}/kernel", self._bias(layer),
                         a["groups"],
                         self._pads(layer), a["stride"], a["dilation"],
                         f"{layer.name}/conv")
        return self._after_conv(layer, y)

    @staticmethod
    def _depthwise(k: np.ndarray) -> np.ndarray:
        # Keras (kh, kw, cin, mult) -> ONNX (cin*mult, 1, kh, kw); output channel c*mult + m reads
        # input channel c in both
        kh, kw, cin, mult = k.shape
        return k.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)

    def op_dwconv(self, layer, ins):
        k = self.params(layer.name, "depthwise_kernel")
        a = layer.attrs
        y = self.conv_bn(layer, ins[0], self._depthwise(k), f"{layer.name}/depthwise_kernel",
                         self._bias(layer),
                         k.shape[2], self._pads(layer), a["stride"], a["dilation"],
                         f"{layer.name}/conv")
        return self._after_conv(layer, y)

    def op_sepconv(self, layer, ins):
        name, a = layer.name, layer.attrs
        dk = self.params(name, "depthwise_kernel")
        d = self.node("Conv", [ins[0], self.const(f"{name}/depthwise_kernel", self._depthwise(dk))],
                      f"{name}/depthwise", kernel_shape=list(dk.shape[:2]), strides=list(a["stride"]),
                      dilations=list(a["dilation"]), pads=self._pads(layer), group=dk.shape[2])
        pk = self.params(name, "pointwise_kernel")  # (1, 1, cin*mult, cout)
        # batch norm folds into the pointwise half (a 1x1 conv without padding)
        y = self.conv_bn(layer, d, pk.transpose(3, 2, 0, 1), f"{name}/pointwise_kernel", self._bias(layer), 1,
                         [0, 0, 0, 0], (1, 1), (1, 1), f"{name}/pointwise")
        return self._after_conv(layer, y)

    def _after_conv(self, layer, y: str) -> str:
        if layer.name in self.absorbed:
            # the standalone bn after this conv was folded in (or emitted just above): the bn
            # layer's output is this tensor
            self.tensor[self.absorbed[layer.name]] = y = self.rename(y, layer.name)
            return y
        return self.finish(layer, y)


# op -> (emitter, IR layer, input tensor names) -> the name of the tensor it produced: one entry per
# op of the table but `input` (emit_input), checked by tests/backends/test_backend_dispatch.py
E, O = _Emitter, OpEmitters
EMITTERS = {
    "conv": E.op_conv, "dwconv": E.op_dwconv, "sepconv": E.op_sepconv,
    "maxpool": O.op_maxpool, "avgpool": O.op_avgpool, "adaptive_avgpool": O.op_adaptive_avgpool,
    "gap": O.op_gap, "gmp": O.op_gmp, "flatten": O.op_flatten, "dense": O.op_dense,
    "dropout": O.op_dropout, "drop_path": O.op_drop_path, "bn": O.op_bn, "act": O.op_act, "lrn": O.op_lrn,
    "channel_shuffle": O.op_channel_shuffle, "scale": O.op_scale, "affine": O.op_affine,
    "normalize": O.op_affine,
    "zeropad": O.op_zeropad, "concat": O.op_concat, "add": O.op_add, "multiply": O.op_multiply,
}
del E, O


def _version() -> str:
    from ...version import __version__
    return __version__
