"""The ONNX importer's converters: one function per ONNX op type, `(reader, node, attributes,
data, ins)` where `data` are the node's input tensors computed from the image and `ins` the imported
nodes holding them, adding the node's incdsl layer to the reader (model_onnx._Reader). `CONVERT`
maps each ONNX op type to its converter, as TVM's ONNX frontend's `_convert_map`; the activation
ops come from the activation table (incdsl/ops/activations.py, `onnx_op`).
"""
from __future__ import annotations

import numpy as np

from ..ir import window
from .onnx_parts import ACT_ATTRS, ACTS, ONNX_ACT_DEFAULTS, short_float


def image_inputs(rd, node) -> tuple[list[str], list[str]]:
    """(data, ins) of a node: its inputs that are not constants, and the imported nodes holding
    them. Raises SpecError for an input computed from something other than the image."""
    data = [i for i in node.input if i and i not in rd.consts]
    for i in data:
        if i not in rd.value:
            raise rd.err(node, f"input '{i}' is computed from something other than the image",
                        hint="incdsl reads inference graphs of a fixed-size image")
    return data, [rd.value[i] for i in data]


def _on_image(convert):
    """The converter (reader, node, attributes) of a converter that takes the node's image inputs."""
    def on_image(rd, node, a):
        return convert(rd, node, a, *image_inputs(rd, node))
    on_image.__doc__ = convert.__doc__
    return on_image


def _constant(rd, node, a):
    """A tensor Constant: one more constant, no layer."""
    t = a.get("value")
    if t is None:
        raise rd.err(node, "only tensor constants are read")
    rd.consts[node.output[0]] = rd.nh.to_array(t) if not isinstance(t, np.ndarray) else t


def _identity(rd, node, a):
    """Identity and inference Dropout: the same constant or the same layer under another name."""
    src = node.input[0]
    if src in rd.consts:
        rd.consts[node.output[0]] = rd.consts[src]
    elif src in rd.value:
        rd.alias(node.output[0], src)
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        raise rd.err(node, "a dropout mask output is training-only")


def _activation(rd, node, a, data, ins):
    """An activation op of the table (ACTS) as an `act` layer, when its attributes (ONNX's
    defaults filled in) are the activation's: HardSigmoid's default alpha is 0.2, not the 1/6 of
    Keras' and PyTorch's hard_sigmoid."""
    for key, want in ACT_ATTRS[node.op_type].items():
        got = a.get(key, ONNX_ACT_DEFAULTS[node.op_type][key])
        got = got.decode() if isinstance(got, bytes) else got
        same = got == want if isinstance(want, str) else abs(got - want) <= 1e-6 * max(1.0, abs(want))
        if not same:
            wanted = ", ".join(f"{k}={v:.6g}" if not isinstance(v, str) else f"{k}={v}"
                               for k, v in ACT_ATTRS[node.op_type].items())
            raise rd.err(node, f"{key}={short_float(got) if not isinstance(got, str) else got} is not "
                               f"incdsl's {ACTS[node.op_type]} ({wanted}), and no other activation is")
    rd.need_map(node, data)
    rd.add(node, "act", {"fn": ACTS[node.op_type]}, ins, out_layout=rd.layout[data[0]])


def _pads(rd, node, a, n_in: tuple[int, int], kernel, stride, dilation=(1, 1)):
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        mode = a["auto_pad"].decode() if isinstance(a["auto_pad"], bytes) else a["auto_pad"]
        if mode == "VALID":
            return "valid"
        if mode == "SAME_UPPER":
            return "same"
        raise rd.err(node, f"auto_pad={mode} has no incdsl equivalent (SAME_LOWER puts the odd pixel first)")
    p = list(a.get("pads", [0, 0, 0, 0]))
    t, l, b, r = p
    same = [window.same_split(n, k, s, d, window.output_length(n, k, s, d, "same", False)[0])
            for n, k, s, d in zip(n_in, kernel, stride, dilation)]  # TF's SAME, the odd pixel after
    if (t, b) == same[0] and (l, r) == same[1] and (not a.get("ceil_mode") or tuple(stride) == (1, 1)):
        return "same"
    if not any(p):
        return "valid"
    return (t, b, l, r)


def _conv(rd, node, a, data, ins):
    w = rd.const(node.input[1])
    if w is None or len(w.shape) != 4:
        raise rd.err(node, "only 2-D convolutions with constant weights are read")
    cout, cin_g, kh, kw = w.shape
    h, wd, cin = rd.shape(data[0])
    group = a.get("group", 1)
    stride, dil = tuple(a.get("strides", [1, 1])), tuple(a.get("dilations", [1, 1]))
    pad = _pads(rd, node, a, (h, wd), (kh, kw), stride, dil)
    bias = rd.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
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
        raise rd.err(node, f"grouped convolution (group={group}) has no incdsl op")
    if bias is not None:
        weights["bias"] = bias.astype(np.float32)
    rd.add(node, op, attrs, ins, weights)


def _pool(rd, node, a, data, ins, op):
    if a.get("storage_order"):
        raise rd.err(node, "storage_order=1 is not read")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise rd.err(node, "dilated pooling has no incdsl op")
    k = tuple(a["kernel_shape"])
    s = tuple(a.get("strides", [1, 1]))
    h, w, _ = rd.shape(data[0])
    pad = _pads(rd, node, a, (h, w), k, s)
    attrs = {"kernel": k, "stride": s, "pad": pad, "ceil": bool(a.get("ceil_mode", 0)) and pad != "same"}
    if op == "avgpool":
        attrs["count_pad"] = bool(a.get("count_include_pad", 0)) and pad != "valid"
    rd.add(node, op, attrs, ins)


def _max_pool(rd, node, a, data, ins):
    if len([o for o in node.output if o]) > 1:
        raise rd.err(node, "max pooling with indices has no incdsl op")
    _pool(rd, node, a, data, ins, "maxpool")


def _average_pool(rd, node, a, data, ins):
    _pool(rd, node, a, data, ins, "avgpool")


def _global_average_pool(rd, node, a, data, ins):
    rd.add(node, "gap", {}, ins, out_layout="flat11")


def _global_max_pool(rd, node, a, data, ins):
    rd.add(node, "gmp", {}, ins, out_layout="flat11")


def _flatten_op(rd, node, a, data, ins):
    if a.get("axis", 1) != 1:
        raise rd.err(node, "only Flatten(axis=1) is read")
    _flatten(rd, node, data)


def _reshape(rd, node, a, data, ins):
    shape = rd.const(node.input[1])
    src = rd.shape(data[0])
    total = int(np.prod(src))
    if (shape is not None and len(shape) == 4 and rd.layout[data[0]] in ("flat", "flat11") and len(src) == 1
            and tuple(int(d) for d in shape[2:]) == (1, 1) and int(shape[1]) in (-1, src[0])
            and int(shape[0]) in (-1, 0, 1)):
        # a vector as (N, C, 1, 1), to scale a map's channels (incdsl's ONNX multiply writes this)
        rd.alias(node.output[0], data[0])
        rd.layout[node.output[0]] = "flat11"
        return
    if shape is None or not (len(shape) == 2 and (int(shape[1]) in (-1, total))):
        raise rd.err(node,
                     "only a reshape to (batch, features) or of a vector to (batch, channels, 1, 1) is read")
    _flatten(rd, node, data)


def _flatten(rd, node, data) -> None:
    src, lay = rd.shape(data[0]), rd.layout[data[0]]
    if lay in ("flat", "flat11"):
        rd.alias(node.output[0], data[0])  # already a vector
        rd.layout[node.output[0]] = "flat"
        return
    if len(src) == 3 and src[0] == src[1] == 1:  # a 1x1 map (torch's adaptive max pool): same order
        rd.add(node, "flatten", {}, [rd.value[data[0]]], out_layout="flat")
        return
    rd.add(node, "flatten", {}, [rd.value[data[0]]], out_layout="flat_nchw")


def _gemm(rd, node, a, data, ins):
    w = rd.const(node.input[1])
    if w is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise rd.err(node, "only x @ W + b with constant W maps to dense")
    kernel = w.T if a.get("transB", 0) else w
    bias = rd.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    _dense(rd, node, data, kernel, bias)


def _matmul(rd, node, a, data, ins):
    w = rd.const(node.input[1])
    if w is None or w.ndim != 2:
        raise rd.err(node, "only x @ W with constant W maps to dense")
    _dense(rd, node, data, w, None)


def _dense(rd, node, data, kernel, bias) -> None:
    src = rd.shape(data[0])
    if len(src) != 1:
        raise rd.err(node, "needs a flat vector (Flatten or global pooling first)")
    kernel = np.asarray(kernel, np.float32)
    if rd.layout[data[0]] == "flat_nchw":  # rows in C,H,W order; incdsl's flatten is H,W,C
        flat_node = rd.flat.nodes[rd.value[data[0]]]
        h, w, c = rd.flat.shapes[flat_node.inputs[0]]
        order = np.arange(h * w * c).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
        kernel = kernel[order]
    weights = {"kernel": np.ascontiguousarray(kernel)}
    if bias is not None:
        weights["bias"] = np.asarray(bias, np.float32).reshape(-1)
    rd.add(node, "dense", {"units": int(kernel.shape[1]), "bias": bias is not None}, [rd.value[data[0]]],
           weights, out_layout="flat")


def _add(rd, node, a, data, ins):
    if len(data) == 2:
        rd.add(node, "add", {}, ins, out_layout=rd.layout[data[0]])
        return
    c = rd.const(node.input[1]) if node.input[0] in data else rd.const(node.input[0])
    if len(data) == 1 and c is not None and rd.layout[data[0]] == "flat" and c.ndim <= 1:
        prev = rd.flat.nodes[ins[0]]
        if prev.op == "dense" and not prev.attrs["bias"]:  # MatMul + Add: one dense layer
            prev.weights["bias"] = np.broadcast_to(c, (prev.attrs["units"],)).astype(np.float32)
            prev.attrs = {**prev.attrs, "bias": True}
            rd.alias(node.output[0], data[0])
            return
    raise rd.err(node, "only the sum of two feature maps (a residual) or a dense layer's bias is read")


def _leaky_relu(rd, node, a, data, ins):
    rd.need_map(node, data)
    rd.add(node, "act", {"fn": "leaky_relu", "slope": short_float(a.get("alpha", 0.01))}, ins,
           out_layout=rd.layout[data[0]])


def _mul(rd, node, a, data, ins):
    if len(data) == 2:  # two values: incdsl's multiply (a squeeze-and-excitation gate)
        lay = [rd.layout[d] for d in data]
        rd.add(node, "multiply", {}, ins, out_layout="nchw" if "nchw" in lay else lay[0])
        return
    c = rd.const(node.input[1]) if node.input[0] in data else rd.const(node.input[0])
    if len(data) != 1 or c is None or c.size != 1:
        raise rd.err(node, "only multiplication by one constant maps to scale")
    rd.add(node, "scale", {"factor": short_float(c.reshape(-1)[0])}, ins, out_layout=rd.layout[data[0]])


def _concat(rd, node, a, data, ins):
    axis = a.get("axis", 1)
    layouts = {rd.layout[d] for d in data}
    if not ((axis in (1, -3) and layouts == {"nchw"}) or (axis in (1, -1) and layouts <= {"flat", "flat11"})):
        raise rd.err(node, f"concatenation along axis {axis}; incdsl concatenates channels")
    if len(ins) == 1:
        rd.alias(node.output[0], data[0])
        return
    rd.add(node, "concat", {}, ins, out_layout=layouts.pop())


def _batch_normalization(rd, node, a, data, ins):
    vals = [rd.const(x) for x in node.input[1:5]]
    if any(v is None for v in vals) or len([o for o in node.output if o]) > 1:
        raise rd.err(node, "only inference batch norm with constant statistics is read")
    gamma, beta, mean, var = (np.asarray(v, np.float32) for v in vals)
    scale = not np.all(gamma == 1.0)
    w = {"beta": beta, "moving_mean": mean, "moving_variance": var}
    if scale:
        w["gamma"] = gamma
    # ONNX's momentum is the weight of the old mean, as Keras'; PyTorch exports 1 - its momentum
    rd.add(node, "bn", {"eps": short_float(a.get("epsilon", 1e-5)), "scale": scale,
                        "momentum": short_float(a.get("momentum", 0.9))}, ins, w)


def _softmax(rd, node, a, data, ins):
    if rd.layout[data[0]] not in ("flat", "flat11") or a.get("axis", -1) not in (-1, 1):
        raise rd.err(node, "only a softmax over a flat vector is read")
    rd.add(node, "act", {"fn": "softmax"}, ins, out_layout="flat")


def _clip(rd, node, a, data, ins):
    lo = rd.const(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("min")
    hi = rd.const(node.input[2]) if len(node.input) > 2 and node.input[2] else a.get("max")
    if lo is None or hi is None or float(lo) != 0.0 or float(hi) != 6.0:
        raise rd.err(node, "only Clip(0, 6) (relu6) maps to an activation")
    rd.add(node, "act", {"fn": "relu6"}, ins, out_layout=rd.layout[data[0]])


def _lrn(rd, node, a, data, ins):
    rd.add(node, "lrn", {"size": a["size"], "alpha": short_float(a.get("alpha", 1e-4)),
                         "beta": short_float(a.get("beta", 0.75)), "bias": short_float(a.get("bias", 1.0))},
           ins)


def _pad(rd, node, a, data, ins):
    pads = rd.const(node.input[1]) if len(node.input) > 1 else a.get("pads")
    mode = a.get("mode", b"constant")
    value = rd.const(node.input[2]) if len(node.input) > 2 and node.input[2] else 0.0
    if (pads is None or mode not in (b"constant", "constant")
            or float(np.asarray(value).reshape(-1)[0] if np.size(value) else 0) != 0):
        raise rd.err(node, "only zero padding with constant pads maps to zeropad")
    p = [int(x) for x in pads]
    if len(p) != 8 or p[0] or p[1] or p[4] or p[5]:
        raise rd.err(node, "only padding of height and width maps to zeropad")
    rd.add(node, "zeropad", {"pad": (p[2], p[6], p[3], p[7])}, ins)


# ONNX op type -> converter (reader, node, attributes); tests/importers/test_importer_dispatch.py
# checks that every op type the ONNX emitter writes is here
CONVERT = {
    "Constant": _constant, "Identity": _identity, "Dropout": _identity,
    **{op: _on_image(_activation) for op in ACTS},
    **{op: _on_image(f) for op, f in (
        ("Conv", _conv), ("MaxPool", _max_pool), ("AveragePool", _average_pool),
        ("GlobalAveragePool", _global_average_pool), ("GlobalMaxPool", _global_max_pool),
        ("Flatten", _flatten_op), ("Reshape", _reshape), ("Gemm", _gemm),
        ("MatMul", _matmul), ("Add", _add), ("LeakyRelu", _leaky_relu), ("Mul", _mul), ("Concat", _concat),
        ("BatchNormalization", _batch_normalization), ("Softmax", _softmax), ("Clip", _clip), ("LRN", _lrn),
        ("Pad", _pad))},
}
