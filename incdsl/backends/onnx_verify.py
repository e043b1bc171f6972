"""Verify an exported ONNX model three ways, each against something independent of the emitter:

1. `onnx.checker.check_model(full_check=True)`: the model is valid ONNX (this runs ONNX's own
   strict shape inference too);
2. ONNX's shape inference agrees with the front end's shapes (`incdsl summary`) for every tensor
   named after an IR layer whose shape it inferred (NHWC in the IR, NCHW in the model);
3. onnxruntime on a random batch agrees with the Keras model holding the same weights, or, where
   Keras is not installed (`incdsl[onnx]` alone), with incdsl's numpy interpreter of the graph.

Outputs are compared as logits, not probabilities: a softmax squashes differences (two sets of
logits that disagree by 1e-2 give probabilities that agree to 1e-5 when one class dominates, and
a random-weight network's near-uniform probabilities hide almost anything), and the log of a
probability loses all precision where it underflows. So where an output ends in a softmax, the
comparison reads the tensor feeding that softmax on the ONNX side, and the Keras side is built
from the same network with that final softmax removed (same weights: a softmax has none). The
probabilities are then compared too, against the softmax of the Keras logits. log_softmax
outputs are log-probabilities already and are compared as they are.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx

from ..errors import SpecError
from ..graph import Graph
from ..text import first_line, shape_text

_REFERENCE = {"keras": "Keras", "numpy": "incdsl's numpy reference"}
RTOL = 1e-4  # max |diff| allowed, as a fraction of the reference output's largest magnitude


class VerifyError(SpecError):
    """The exported model fails a check (exit code 1; the file is not written)."""


def check_structure(path: str, net, layer_tensors: dict[str, str], layout: str,
                    batch: int | None) -> tuple[int, int]:
    """Checker and shape agreement. Returns (tensors compared, tensors named after a layer)."""
    inferred = _checked(path)
    seen = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
            + list(inferred.graph.input)}
    compared = total = 0
    for layer, tensor in layer_tensors.items():
        want = _dims(net.shapes[layer], batch, nhwc=(layer == tensor and net.layers[layer].op == "input"
                                                     and layout == "nhwc"))
        vi = seen.get(tensor)
        total += 1
        if vi is None or not vi.type.tensor_type.HasField("shape"):
            continue
        got = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]
        compared += 1
        if len(got) != len(want) or any(g is not None and g != w for g, w in zip(got, want)):
            raise VerifyError(f"ONNX shape inference gives {_fmt(got)} for '{layer}' (tensor '{tensor}'), "
                              f"incdsl summary says {_fmt(want)}", net.layers[layer].span)
    return compared, total


def check_io_shapes(path: str, net, layout: str, batch: int | None) -> tuple[int, int]:
    """Shape agreement on the graph's input and outputs only (tf2onnx names tensors its own way)."""
    model = _checked(path)
    want = {"input": _dims(net.input_shape, batch, nhwc=layout == "nhwc")}
    for h in net.heads:
        if not h.train_only:
            want[h.name] = _dims(h.shape, batch, nhwc=layout == "nhwc")
    compared = 0
    for vi in list(model.graph.input) + list(model.graph.output):
        if vi.name not in want:
            continue
        got = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]
        w = want[vi.name]
        if len(got) != len(w) or any(isinstance(g, int) and g and g != x for g, x in zip(got, w)):
            raise VerifyError(f"the model's '{vi.name}' is {_fmt(got)}, incdsl summary says {_fmt(w)}")
        compared += 1
    if compared != len(want):
        raise VerifyError(f"the model's inputs/outputs are {[v.name for v in model.graph.input]} / "
                          f"{[v.name for v in model.graph.output]}, expected {sorted(want)}")
    return compared, compared


def keras_installed() -> bool:
    """Can the Keras backend run here (keras and a backend for it)? `incdsl[onnx]` alone has neither."""
    try:
        import keras  # noqa: F401
    except ImportError:
        return False
    return True


def compare_runtime(path: str, net, weights: dict, layout: str, batch: int | None,
                    seed: int = 0, preprocess=None, reference: str = "keras") -> tuple[float, float, float, int, str]:
    """onnxruntime vs a reference on one random batch: the Keras model holding the same weights
    (`reference="keras"`), or incdsl's numpy interpreter of the graph (`"numpy"`, backends/numpy_ref.py,
    when Keras is not installed). Returns (max diff / scale, max |diff|, scale, batch, what was
    compared). With `preprocess`, the ONNX model takes raw pixels (a random image in [0, 255])
    and the reference gets them scaled. Raises numpy_ref.Unsupported for an op the numpy
    interpreter lacks."""
    import onnxruntime as ort

    n = batch or 2
    rng = np.random.default_rng(seed)
    if preprocess is None:
        x = rng.standard_normal((n, *net.input_shape)).astype(np.float32)
        raw = x
    else:
        raw = rng.uniform(0, 255, (n, *net.input_shape)).astype(np.float32)
        x = raw * preprocess.scale + preprocess.offset
    feed = raw if layout == "nhwc" else raw.transpose(0, 3, 1, 2)

    model = onnx.load(path)
    heads = [h for h in net.heads if not h.train_only]
    extra = {}  # output -> the tensor feeding its final softmax
    for h in heads:
        t = _before_softmax(model, h.name)
        if t is not None:
            extra[h.name] = t
            model.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: feed})))

    ref_net = strip_final_softmax(net, set(extra))
    if reference == "numpy":
        from .numpy_ref import run
        ref = run(ref_net, weights, x)
    else:
        import keras

        from .keras import build_model
        keras_model = build_model(ref_net, inference=True, weights=weights)
        # an eager call: predict_on_batch would first trace the whole model into a graph (4x slower)
        ref = keras_model(x, training=False)
        if isinstance(ref, dict):
            ref = [ref[h.name] for h in heads]
        if not isinstance(ref, (list, tuple)):
            ref = [ref]
        ref = [keras.ops.convert_to_numpy(r) for r in ref]
    ref = {h.name: np.asarray(r, np.float64) for h, r in zip(heads, ref)}

    worst = worst_abs = 0.0
    scale_at = 1.0
    for h in heads:
        r = ref[h.name]
        pairs = []
        if h.name in extra:
            pairs.append((got[extra[h.name]], r))  # logits
            e = np.exp(r - r.max(axis=-1 if len(h.shape) == 1 else 3, keepdims=True))
            pairs.append((got[h.name], e / e.sum(axis=-1 if len(h.shape) == 1 else 3, keepdims=True)))
        else:
            pairs.append((got[h.name], r))
        for o, want in pairs:
            if len(h.shape) == 3 and layout == "nchw":
                o = o.transpose(0, 2, 3, 1)
            if o.shape != want.shape:
                raise VerifyError(f"onnxruntime gives '{h.name}' as {o.shape}, {_REFERENCE[reference]} as {want.shape}")
            scale = float(np.abs(want).max()) or 1.0
            d = float(np.abs(o.astype(np.float64) - want).max())
            if not np.isfinite(d) or d > RTOL * scale:
                raise VerifyError(f"onnxruntime and {_REFERENCE[reference]} disagree on '{h.name}': max |diff| {d:.3g} is more than "
                                  f"{RTOL:g} of the output's scale {scale:.3g}")
            if d / scale >= worst:
                worst, worst_abs, scale_at = d / scale, d, scale
    return worst, worst_abs, scale_at, n, "logits" if extra else "outputs"


def strip_final_softmax(net, heads: set[str]):
    """The same network with the softmax that ends each named output removed (for comparing logits)."""
    if not heads:
        return net
    g = net.graph
    layers = dict(g.layers)
    outputs = []
    for o in g.outputs:
        if o.name in heads:
            layer = layers[o.node]
            while layer.op == "dropout":  # inference passes it through, like the ONNX graph does
                layer = layers[layer.inputs[0]]
            if layer.op != "act":
                layers[layer.name] = dataclasses.replace(layer, attrs={**layer.attrs, "act": None})
            elif layer.name == o.node:  # a separate softmax layer ends the head: read its input
                o = dataclasses.replace(o, node=layer.inputs[0])
            else:  # a softmax layer inside the head: make it linear
                layers[layer.name] = dataclasses.replace(layer, attrs={**layer.attrs, "fn": None})
        outputs.append(o)
    new = Graph(g.name, g.params, layers, outputs, list(g.blocks), dict(g.variants), list(g.unused))
    return type(net)(new, net.path)  # a Network; its module is not imported here (no circle)


def _checked(path: str) -> onnx.ModelProto:
    """The ONNX checker (full: with strict shape inference), then the model with inferred shapes."""
    try:
        onnx.checker.check_model(path, full_check=True)
        return onnx.shape_inference.infer_shapes(onnx.load(path), check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise VerifyError(f"the ONNX checker rejects the model: {first_line(e)}") from None


def _before_softmax(model: onnx.ModelProto, output: str) -> str | None:
    producer = {o: n for n in model.graph.node for o in n.output}
    t = output
    while t in producer and producer[t].op_type == "Identity":
        t = producer[t].input[0]
    node = producer.get(t)
    return node.input[0] if node is not None and node.op_type == "Softmax" else None


def _dims(shape, batch, nhwc=False):
    b = "batch" if batch is None else batch
    if len(shape) == 3:
        h, w, c = shape
        return [b, h, w, c] if nhwc else [b, c, h, w]
    return [b, *shape]


def _fmt(dims) -> str:
    return shape_text("?" if d is None else d for d in dims)  # a dimension ONNX leaves unknown: ?
