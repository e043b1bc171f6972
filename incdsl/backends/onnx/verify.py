"""Verify an exported ONNX model three ways, each against something independent of the emitter:

1. ONNX's full check: `onnx.checker.check_model` (the model is valid ONNX), then ONNX's strict,
   type-checking shape inference, as `check_model(full_check=True)` runs it, but on the skeleton
   (below) rather than on a second parsed copy of the weights;
2. ONNX's shape inference agrees with the front end's shapes (`incdsl summary`) for every tensor
   named after an IR layer whose shape it inferred (NHWC in the IR, NCHW in the model);
3. onnxruntime on a random batch agrees with incdsl's numpy interpreter of the graph
   (backends/numpy_ref.py: the default, which needs neither Keras nor TensorFlow and costs well
   under a second for Inception v3), or, when asked (`--verify keras`, `verify="keras"`), with
   the Keras model holding the same weights.

Each step reads the serialized model once: the checker takes the bytes the file holds, shape
inference runs on a copy whose large weight tensors are typed graph inputs instead (a weight's
values never decide a shape, and its type and dims are kept, so the same errors are found), and
onnxruntime gets the same bytes with the extra outputs appended as a second message.

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
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ...errors import SpecError
from ...ir.graph import Graph
from ...text import first_line, shape_text

_REFERENCE = {"keras": "Keras", "numpy": "incdsl's numpy reference"}
RTOL = 1e-4  # max |diff| allowed, as a fraction of the reference output's largest magnitude


SKELETON_ABOVE = 1024  # initializers of more elements than this become typed inputs for shape inference


class VerifyError(SpecError):
    """The exported model fails a check (exit code 1; the file is not written)."""


@dataclass(frozen=True)
class Exported:
    """An ONNX model both as the bytes its file holds and as a ModelProto, so that no check has to
    serialize or parse ~100 MB of weights again."""
    data: bytes
    # the model, or (with `skeleton`) its nodes, inputs, outputs and small initializers
    proto: onnx.ModelProto
    skeleton: onnx.ModelProto | None = None  # for shape inference: `_skeleton(proto)` unless given

    @classmethod
    def of(cls, model) -> "Exported":
        """`model` as an Exported: a path (str or Path), the serialized bytes, a ModelProto or an
        Exported (returned as it is)."""
        if isinstance(model, Exported):
            return model
        if isinstance(model, onnx.ModelProto):
            return cls(model.SerializeToString(), model)
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        return cls(data, onnx.load_from_string(data))


def check_structure(model, net, layer_tensors: dict[str, str], layout: str,
                    batch: int | None) -> tuple[int, int]:
    """Checker and shape agreement for `model` (a path, bytes, ModelProto or `Exported`): every
    tensor named after an IR layer has the shape `net.shapes` gives it (NCHW in the model, batch
    first). Returns (tensors compared, tensors named after a layer). Raises VerifyError."""
    inferred = _checked(model)
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
        got = [
            d.dim_value if d.HasField(
                "dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]
        compared += 1
        if len(got) != len(want) or any(g is not None and g != w for g, w in zip(got, want)):
            raise VerifyError(f"ONNX shape inference gives {_fmt(got)} for '{layer}' (tensor '{tensor}'), "
                              f"incdsl summary says {_fmt(want)}", net.layers[layer].span)
    return compared, total


def check_io_shapes(model, net, layout: str, batch: int | None) -> tuple[int, int]:
    """Shape agreement on the graph's input and outputs only (tf2onnx names tensors its own way).
    `model` as for `check_structure`. Raises VerifyError."""
    model = _checked(model)
    want = {"input": _dims(net.input_shape, batch, nhwc=layout == "nhwc")}
    for h in net.heads:
        if not h.train_only:
            want[h.name] = _dims(h.shape, batch, nhwc=layout == "nhwc")
    compared = 0
    for vi in list(model.graph.input) + list(model.graph.output):
        if vi.name not in want:
            continue
        got = [
            d.dim_value if d.HasField(
                "dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]
        w = want[vi.name]
        if len(got) != len(w) or any(isinstance(g, int) and g and g != x for g, x in zip(got, w)):
            raise VerifyError(f"the model's '{vi.name}' is {_fmt(got)}, incdsl summary says {_fmt(w)}")
        compared += 1
    if compared != len(want):
        raise VerifyError(f"the model's inputs/outputs are {[v.name for v in model.graph.input]} / "
                          f"{[v.name for v in model.graph.output]}, expected {sorted(want)}")
    return compared, compared


def compare_runtime(model, net, weights: dict, layout: str, batch: int | None,
                    seed: int = 0, preprocess=None, reference: str = "keras") -> tuple[float, float, float,
                                                                                       int, str]:
    """onnxruntime running `model` (a path, bytes, ModelProto or `Exported`) vs a reference on one
    random batch (NHWC images of `net.input_shape`, `batch` of them, 1 when dynamic): the Keras
    model holding the same weights (`reference="keras"`, imports Keras and its backend), or
    incdsl's numpy interpreter of the graph (`"numpy"`, backends/numpy_ref.py). Returns (max diff /
    scale, max |diff|, scale, batch, what was compared). With `preprocess`, the ONNX model takes
    raw pixels (a random image in [0, 255]) and the reference gets them scaled. Raises VerifyError
    when they disagree by more than RTOL of the output's scale, numpy_ref.Unsupported for an op the
    numpy interpreter lacks."""
    import onnxruntime as ort

    # one image when the batch is dynamic: the batch dimension's handling is checked symbolically
    # by shape inference (a node that fixes it, e.g. a Reshape to (1, -1), gives a dim other than
    # `batch` there: check_structure refuses it), and a second image doubles both runs, a third of
    # the export's CPU time for Inception v3
    n = batch or 1
    rng = np.random.default_rng(seed)
    if preprocess is None:
        x = rng.standard_normal((n, *net.input_shape)).astype(np.float32)
        raw = x
    else:
        raw = rng.uniform(0, 255, (n, *net.input_shape)).astype(np.float32)
        x = raw * preprocess.scale + preprocess.offset
    feed = raw if layout == "nhwc" else raw.transpose(0, 3, 1, 2)

    ex = Exported.of(model)
    heads = [h for h in net.heads if not h.train_only]
    extra = {}  # output -> the tensor feeding its final softmax
    for h in heads:
        t = _before_softmax(ex.proto, h.name)
        if t is not None:
            extra[h.name] = t
    data = ex.data
    if extra:
        # protobuf merges concatenated messages, appending repeated fields: a ModelProto holding only
        # the extra graph outputs, appended to the bytes, adds them without re-serializing the weights
        more = onnx.GraphProto(output=[onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None)
                                       for t in extra.values()])
        data = data + onnx.ModelProto(graph=more).SerializeToString()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # idle worker threads that spin burn CPU time (a loaded machine: seconds of it) for no speed
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # one thread: a run of one image is short enough that a thread pool costs more CPU than it saves
    opts.intra_op_num_threads = 1
    # basic optimizations (constant folding, redundant nodes) only: the layout and fusion passes
    # of ORT_ENABLE_ALL copy every weight into blocked formats, which for one run costs more CPU
    # (page faults on a second copy of ~100 MB) than their faster kernels save; and the graph
    # checked is then closer to the file's own
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: feed})))

    ref_net = strip_final_softmax(net, set(extra))
    if reference == "numpy":
        from threadpoolctl import threadpool_limits

        from ..numpy_ref import run
        # one BLAS thread: OpenBLAS's idle threads spin, which on a busy machine costs more CPU time
        # than the whole reference (threadpoolctl: the maintained way to set it after numpy loaded)
        with threadpool_limits(limits=1, user_api="blas"):
            ref = run(ref_net, weights, x, np.float32)  # as onnxruntime computes; float64 doubles the cost
    else:
        import keras

        from ..keras.build import build_model
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
                raise VerifyError(
                    f"onnxruntime gives '{h.name}' as {o.shape}, {_REFERENCE[reference]} as {want.shape}")
            scale = float(np.abs(want).max()) or 1.0
            d = float(np.abs(o.astype(np.float64) - want).max())
            if not np.isfinite(d) or d > RTOL * scale:
                raise VerifyError(f"onnxruntime and {_REFERENCE[reference]} disagree on '{h.name}': max "
                                  f"|diff| {d:.3g} is more than "
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


def _checked(model) -> onnx.ModelProto:
    """The ONNX checker on the model's bytes, then ONNX's strict shape inference (what the checker's
    full_check adds) on the model's skeleton (`_skeleton`), which is returned with inferred shapes."""
    ex = Exported.of(model)
    try:
        onnx.checker.check_model(ex.data)
        skeleton = ex.skeleton if ex.skeleton is not None else _skeleton(ex.proto)
        return onnx.shape_inference.infer_shapes(skeleton, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise VerifyError(f"the ONNX checker rejects the model: {first_line(e)}") from None


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with each initializer of more than SKELETON_ABOVE elements turned into a graph input
    of the same type and shape: shape inference gives the same shapes (it reads the values of
    small constants only, such as a Reshape's target shape) without copying the weights."""
    out = onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import,
                          functions=model.functions)
    g, sg = model.graph, out.graph
    sg.name = g.name
    sg.node.extend(g.node)
    sg.input.extend(g.input)
    sg.output.extend(g.output)
    sg.value_info.extend(g.value_info)
    for t in g.initializer:
        if math.prod(t.dims) > SKELETON_ABOVE:
            sg.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            sg.initializer.append(t)
    return out


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
