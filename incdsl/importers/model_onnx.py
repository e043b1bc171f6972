"""Read an ONNX file into the flat imported graph, with the `onnx` package alone.

Models of another opset are first brought to OPSET with onnx's version converter. Tensors are
NCHW in ONNX and NHWC in incdsl: weights are transposed to Keras' layouts (Conv OIHW -> HWIO,
Gemm's (out, in) -> (in, out)), and a dense layer after a Flatten of a real feature map gets its
rows permuted from channels-first to channels-last order. Explicit pads map back to `same`
wherever they are exactly TF's same padding for that input size (so a 3x3/1 conv with padding 1
reads `conv(c, 3)`), else to `valid` or the numbers. Constants: initializers, Constant nodes and
Identity nodes of them (the PyTorch exporter shares equal initializers that way).

Node names of the PyTorch exporter are module paths (`/Mixed_5b/branch1x1/conv/Conv`): the path
without the op is what the spec writer uses for module calls and layer names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import window
from ..errors import SpecError
from ..source import visible_name
from ..text import first_line
from .flat import Flat, Head, Node, fuse, spec_name
from .onnx_parts import ACTS, head_name, node_attrs, scope_of, short_float, show_names

OPSET = 17  # what the converter brings other opsets to; the ops read here mean the same from 13 on


def read(path: Path) -> Flat:
    """The flat graph of an ONNX model (NCHW weights transposed to Keras' layouts; other opsets through onnx's version converter). Raises SpecError for a file that is not ONNX, an unsupported op (named with its node), dynamic spatial sizes or several inputs."""
    import onnx

    try:
        # external data would be read from other files the tensors name: refused below instead
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
        raise SpecError(f"{path}: not an ONNX model ({type(e).__name__})",
                        hint="incdsl import reads .onnx files, .keras and whole-model Keras .h5 files") from None
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise SpecError(f"{path}: initializer '{visible_name(external[0])}' keeps its data in another file "
                        f"(ONNX external data); incdsl reads only the file it was given",
                        hint="save the model with its weights inside (onnx.save(model, path, "
                             "save_as_external_data=False))")
    if not model.graph.node:
        raise SpecError(f"{path}: not an ONNX model (no graph nodes)")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset < 13:
        try:
            model = onnx.version_converter.convert_version(model, OPSET)
        except Exception as e:  # the converter names the op it cannot adapt
            raise SpecError(f"{path}: cannot convert opset {opset} to {OPSET}: {first_line(e)[:200]}") from None
    show_names(model.graph)
    flat = _Reader(model, str(path)).run()
    fuse(flat)
    return flat


class _Reader:
    def __init__(self, model, source: str):
        import onnx.numpy_helper as nh

        self.model, self.source, self.g = model, source, model.graph
        self.consts: dict[str, np.ndarray] = {t.name: self._array(t, nh) for t in self.g.initializer}
        self.value: dict[str, str] = {}  # ONNX tensor -> node of ours holding it
        self.layout: dict[str, str] = {}  # ONNX tensor -> "nchw" feature map or "flat" vector
        self.nh = nh

    def _array(self, tensor, nh) -> np.ndarray:
        """An initializer as numpy; its data must fill the dims it declares (a damaged file's does not)."""
        dims = "x".join(map(str, tensor.dims)) or "a scalar"
        try:
            return nh.to_array(tensor)
        except (ValueError, TypeError, KeyError) as e:  # numpy's "cannot reshape", an unknown data_type
            raise SpecError(f"{self.source}: initializer '{tensor.name}' declares dims {dims} but its data does "
                            f"not fill them ({first_line(e)[:120]})",
                            hint="the file is damaged or was not written by an ONNX exporter") from None

    def err(self, node, why: str, hint: str | None = None) -> SpecError:
        return SpecError(f"{self.source}: node '{node.name or node.output[0]}' ({node.op_type}): {why}", hint=hint)

    def run(self) -> Flat:
        g = self.g
        # exporters name the graph after themselves (torch's main_graph, tf2onnx): the file says more
        flat = self.flat = Flat(spec_name(Path(self.source).stem), self.source)
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise SpecError(f"{self.source}: the model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                            f"incdsl networks take one image")
        self._input(inputs[0])
        for node in g.node:
            self._node(node)
        taken: set[str] = set()
        for k, out in enumerate(g.output):
            if out.name not in self.value:
                raise SpecError(f"{self.source}: output '{out.name}' is not computed from the input")
            name = head_name(out.name, k, flat.nodes[self.value[out.name]].op, taken)
            taken.add(name)
            flat.heads.append(Head(name, self.value[out.name]))
        return flat

    def _input(self, inp) -> None:
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in inp.type.tensor_type.shape.dim]
        if len(dims) != 4:
            raise SpecError(f"{self.source}: input '{inp.name}' has {len(dims)} dimensions; incdsl networks take "
                            f"an NCHW image (4 dimensions)")
        _, c, h, w = dims
        fixed = [isinstance(v, int) and v > 0 for v in (c, h, w)]
        if not all(fixed):
            which = ", ".join(n for n, ok in zip(("channels", "height", "width"), fixed) if not ok)
            raise SpecError(f"{self.source}: input '{inp.name}' has a dynamic {which} "
                            f"({'x'.join(str(d) for d in dims)}); incdsl needs a fixed image size",
                            hint="export with a fixed size (no dynamic_axes on dims 2 and 3); the batch may stay dynamic")
        self.flat.add(Node("input", "input", {"height": h, "width": w, "channels": c}, [], what=f"input '{inp.name}'"))
        self.value[inp.name] = "input"
        self.layout[inp.name] = "nchw"

    def const(self, name: str):
        return self.consts.get(name)

    def _add(self, node, op: str, attrs: dict, ins: list[str], weights=None, out_layout="nchw"):
        nm = node.name or node.output[0]
        while nm in self.flat.nodes:
            nm += "_"
        n = Node(nm, op, attrs, ins, weights or {}, scope_of(node.name or ""), None, f"'{node.name}' ({node.op_type})")
        self.flat.add(n)
        self.value[node.output[0]] = nm
        self.layout[node.output[0]] = out_layout
        return nm

    def _node(self, node) -> None:
        op, a = node.op_type, node_attrs(node)
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, f"op of domain '{node.domain}' has no incdsl equivalent")
        if op == "Constant":
            t = a.get("value")
            if t is None:
                raise self.err(node, "only tensor constants are read")
            self.consts[node.output[0]] = self.nh.to_array(t) if not isinstance(t, np.ndarray) else t
            return
        if op == "Identity" or op == "Dropout":
            src = node.input[0]
            if src in self.consts:
                self.consts[node.output[0]] = self.consts[src]
            elif src in self.value:
                self._alias(node.output[0], src)
            if op == "Dropout" and len(node.output) > 1 and node.output[1]:
                raise self.err(node, "a dropout mask output is training-only")
            return
        data = [i for i in node.input if i and i not in self.consts]
        for i in data:
            if i not in self.value:
                raise self.err(node, f"input '{i}' is computed from something other than the image",
                                hint="incdsl reads inference graphs of a fixed-size image")
        ins = [self.value[i] for i in data]
        handler = getattr(self, f"op_{op}", None)
        if handler is None and op in ACTS:
            self._need_map(node, data)
            self._add(node, "act", {"fn": ACTS[op]}, ins, out_layout=self.layout[data[0]])
            return
        if handler is None:
            raise self.err(node, "this op has no incdsl equivalent",
                           hint="incdsl's ops are listed in specs/README.md")
        handler(node, a, data, ins)

    def _alias(self, out: str, src: str) -> None:
        self.value[out], self.layout[out] = self.value[src], self.layout[src]

    def _need_map(self, node, data) -> None:
        if not data:
            raise self.err(node, "has no input computed from the image")

    def shape(self, tensor: str):
        return self.flat.shapes[self.value[tensor]]

    # --- ops -------------------------------------------------------------------------------
    def _pads(self, node, a, n_in: tuple[int, int], kernel, stride, dilation=(1, 1)):
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            mode = a["auto_pad"].decode() if isinstance(a["auto_pad"], bytes) else a["auto_pad"]
            if mode == "VALID":
                return "valid"
            if mode == "SAME_UPPER":
                return "same"
            raise self.err(node, f"auto_pad={mode} has no incdsl equivalent (SAME_LOWER puts the odd pixel first)")
        p = list(a.get("pads", [0, 0, 0, 0]))
        t, l, b, r = p
        same = [window.same_split(n, k, s, d, window.output_length(n, k, s, d, "same", False)[0])
                for n, k, s, d in zip(n_in, kernel, stride, dilation)]  # TF's SAME, the odd pixel after
        if (t, b) == same[0] and (l, r) == same[1] and (not a.get("ceil_mode") or tuple(stride) == (1, 1)):
            return "same"
        if not any(p):
            return "valid"
        return (t, b, l, r)

    def op_Conv(self, node, a, data, ins):
        w = self.const(node.input[1])
        if w is None or len(w.shape) != 4:
            raise self.err(node, "only 2-D convolutions with constant weights are read")
        cout, cin_g, kh, kw = w.shape
        h, wd, cin = self.shape(data[0])
        group = a.get("group", 1)
        stride, dil = tuple(a.get("strides", [1, 1])), tuple(a.get("dilations", [1, 1]))
        pad = self._pads(node, a, (h, wd), (kh, kw), stride, dil)
        bias = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        common = {"kernel": (kh, kw), "stride": stride, "pad": pad, "dilation": dil, "bias": bias is not None}
        if group == 1:
            weights = {"kernel": np.ascontiguousarray(w.transpose(2, 3, 1, 0), np.float32)}
            op, attrs = "conv", {"filters": int(cout), **common}
        elif group == cin and cin_g == 1:
            mult = cout // cin
            weights = {"depthwise_kernel": np.ascontiguousarray(
                w.reshape(cin, mult, kh, kw).transpose(2, 3, 0, 1), np.float32)}
            op, attrs = "dwconv", {"multiplier": int(mult), **common}
        else:
            raise self.err(node, f"grouped convolution (group={group}) has no incdsl op")
        if bias is not None:
            weights["bias"] = bias.astype(np.float32)
        self._add(node, op, attrs, ins, weights)

    def _pool(self, node, a, data, ins, op):
        if a.get("storage_order"):
            raise self.err(node, "storage_order=1 is not read")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise self.err(node, "dilated pooling has no incdsl op")
        k = tuple(a["kernel_shape"])
        s = tuple(a.get("strides", [1, 1]))
        h, w, _ = self.shape(data[0])
        pad = self._pads(node, a, (h, w), k, s)
        attrs = {"kernel": k, "stride": s, "pad": pad, "ceil": bool(a.get("ceil_mode", 0)) and pad != "same"}
        if op == "avgpool":
            attrs["count_pad"] = bool(a.get("count_include_pad", 0)) and pad != "valid"
        self._add(node, op, attrs, ins)

    def op_MaxPool(self, node, a, data, ins):
        if len([o for o in node.output if o]) > 1:
            raise self.err(node, "max pooling with indices has no incdsl op")
        self._pool(node, a, data, ins, "maxpool")

    def op_AveragePool(self, node, a, data, ins):
        self._pool(node, a, data, ins, "avgpool")

    def op_GlobalAveragePool(self, node, a, data, ins):
        self._add(node, "gap", {}, ins, out_layout="flat11")

    def op_GlobalMaxPool(self, node, a, data, ins):
        self._add(node, "gmp", {}, ins, out_layout="flat11")

    def op_Flatten(self, node, a, data, ins):
        if a.get("axis", 1) != 1:
            raise self.err(node, "only Flatten(axis=1) is read")
        self._flatten(node, data)

    def op_Reshape(self, node, a, data, ins):
        shape = self.const(node.input[1])
        src = self.shape(data[0])
        total = int(np.prod(src))
        if (shape is not None and len(shape) == 4 and self.layout[data[0]] in ("flat", "flat11") and len(src) == 1
                and tuple(int(d) for d in shape[2:]) == (1, 1) and int(shape[1]) in (-1, src[0])
                and int(shape[0]) in (-1, 0, 1)):
            # a vector as (N, C, 1, 1), to scale a map's channels (incdsl's ONNX multiply writes this)
            self._alias(node.output[0], data[0])
            self.layout[node.output[0]] = "flat11"
            return
        if shape is None or not (len(shape) == 2 and (int(shape[1]) in (-1, total))):
            raise self.err(node, "only a reshape to (batch, features) or of a vector to (batch, channels, 1, 1) is read")
        self._flatten(node, data)

    def _flatten(self, node, data) -> None:
        src, lay = self.shape(data[0]), self.layout[data[0]]
        if lay in ("flat", "flat11"):
            self._alias(node.output[0], data[0])  # already a vector
            self.layout[node.output[0]] = "flat"
            return
        if len(src) == 3 and src[0] == src[1] == 1:  # a 1x1 map (torch's adaptive max pool): same order
            self._add(node, "flatten", {}, [self.value[data[0]]], out_layout="flat")
            return
        self._add(node, "flatten", {}, [self.value[data[0]]], out_layout="flat_nchw")

    def op_Gemm(self, node, a, data, ins):
        w = self.const(node.input[1])
        if w is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise self.err(node, "only x @ W + b with constant W maps to dense")
        kernel = w.T if a.get("transB", 0) else w
        bias = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        self._dense(node, data, kernel, bias)

    def op_MatMul(self, node, a, data, ins):
        w = self.const(node.input[1])
        if w is None or w.ndim != 2:
            raise self.err(node, "only x @ W with constant W maps to dense")
        self._dense(node, data, w, None)

    def _dense(self, node, data, kernel, bias) -> None:
        src = self.shape(data[0])
        if len(src) != 1:
            raise self.err(node, "needs a flat vector (Flatten or global pooling first)")
        kernel = np.asarray(kernel, np.float32)
        if self.layout[data[0]] == "flat_nchw":  # rows in C,H,W order; incdsl's flatten is H,W,C
            flat_node = self.flat.nodes[self.value[data[0]]]
            h, w, c = self.flat.shapes[flat_node.inputs[0]]
            order = np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
            kernel = kernel[order]
        weights = {"kernel": np.ascontiguousarray(kernel)}
        if bias is not None:
            weights["bias"] = np.asarray(bias, np.float32).reshape(-1)
        self._add(node, "dense", {"units": int(kernel.shape[1]), "bias": bias is not None}, [self.value[data[0]]],
                  weights, out_layout="flat")

    def op_Add(self, node, a, data, ins):
        if len(data) == 2:
            self._add(node, "add", {}, ins, out_layout=self.layout[data[0]])
            return
        c = self.const(node.input[1]) if node.input[0] in data else self.const(node.input[0])
        if len(data) == 1 and c is not None and self.layout[data[0]] == "flat" and c.ndim <= 1:
            prev = self.flat.nodes[ins[0]]
            if prev.op == "dense" and not prev.attrs["bias"]:  # MatMul + Add: one dense layer
                prev.weights["bias"] = np.broadcast_to(c, (prev.attrs["units"],)).astype(np.float32)
                prev.attrs = {**prev.attrs, "bias": True}
                self._alias(node.output[0], data[0])
                return
        raise self.err(node, "only the sum of two feature maps (a residual) or a dense layer's bias is read")

    def op_LeakyRelu(self, node, a, data, ins):
        self._need_map(node, data)
        self._add(node, "act", {"fn": "leaky_relu", "slope": short_float(a.get("alpha", 0.01))}, ins,
                  out_layout=self.layout[data[0]])

    def op_Mul(self, node, a, data, ins):
        if len(data) == 2:  # two values: incdsl's multiply (a squeeze-and-excitation gate)
            lay = [self.layout[d] for d in data]
            self._add(node, "multiply", {}, ins, out_layout="nchw" if "nchw" in lay else lay[0])
            return
        c = self.const(node.input[1]) if node.input[0] in data else self.const(node.input[0])
        if len(data) != 1 or c is None or c.size != 1:
            raise self.err(node, "only multiplication by one constant maps to scale")
        self._add(node, "scale", {"factor": short_float(c.reshape(-1)[0])}, ins, out_layout=self.layout[data[0]])

    def op_Concat(self, node, a, data, ins):
        axis = a.get("axis", 1)
        layouts = {self.layout[d] for d in data}
        if not ((axis in (1, -3) and layouts == {"nchw"}) or (axis in (1, -1) and layouts <= {"flat", "flat11"})):
            raise self.err(node, f"concatenation along axis {axis}; incdsl concatenates channels")
        if len(ins) == 1:
            self._alias(node.output[0], data[0])
            return
        self._add(node, "concat", {}, ins, out_layout=layouts.pop())

    def op_BatchNormalization(self, node, a, data, ins):
        vals = [self.const(x) for x in node.input[1:5]]
        if any(v is None for v in vals) or len([o for o in node.output if o]) > 1:
            raise self.err(node, "only inference batch norm with constant statistics is read")
        gamma, beta, mean, var = (np.asarray(v, np.float32) for v in vals)
        scale = not np.all(gamma == 1.0)
        w = {"beta": beta, "moving_mean": mean, "moving_variance": var}
        if scale:
            w["gamma"] = gamma
        # ONNX's momentum is the weight of the old mean, as Keras'; PyTorch exports 1 - its momentum
        self._add(node, "bn", {"eps": short_float(a.get("epsilon", 1e-5)), "scale": scale,
                               "momentum": short_float(a.get("momentum", 0.9))}, ins, w)

    def op_Softmax(self, node, a, data, ins):
        if self.layout[data[0]] not in ("flat", "flat11") or a.get("axis", -1) not in (-1, 1):
            raise self.err(node, "only a softmax over a flat vector is read")
        self._add(node, "act", {"fn": "softmax"}, ins, out_layout="flat")

    def op_Clip(self, node, a, data, ins):
        lo = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("min")
        hi = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else a.get("max")
        if lo is None or hi is None or float(lo) != 0.0 or float(hi) != 6.0:
            raise self.err(node, "only Clip(0, 6) (relu6) maps to an activation")
        self._add(node, "act", {"fn": "relu6"}, ins, out_layout=self.layout[data[0]])

    def op_LRN(self, node, a, data, ins):
        self._add(node, "lrn", {"size": a["size"], "alpha": short_float(a.get("alpha", 1e-4)),
                                "beta": short_float(a.get("beta", 0.75)), "bias": short_float(a.get("bias", 1.0))}, ins)

    def op_Pad(self, node, a, data, ins):
        pads = self.const(node.input[1]) if len(node.input) > 1 else a.get("pads")
        mode = a.get("mode", b"constant")
        value = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else 0.0
        if pads is None or mode not in (b"constant", "constant") or float(np.asarray(value).reshape(-1)[0] if np.size(value) else 0) != 0:
            raise self.err(node, "only zero padding with constant pads maps to zeropad")
        p = [int(x) for x in pads]
        if len(p) != 8 or p[0] or p[1] or p[4] or p[5]:
            raise self.err(node, "only padding of height and width maps to zeropad")
        self._add(node, "zeropad", {"pad": (p[2], p[6], p[3], p[7])}, ins)
