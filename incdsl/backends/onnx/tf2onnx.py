"""The second way to ONNX: build the Keras inference model, trace it, convert it with tf2onnx.

Slow (TensorFlow import, Keras build, graph freezing and tf2onnx's optimizers), but independent of
the direct emitter, so the two check each other. Keras 3 models are not tf.keras models, and
`tf2onnx.convert.from_keras` reaches into tf.keras internals that Keras 3 does not have (and a
never-called Keras 3 model has no traced signature), so we trace a `tf.function` with an explicit
input signature and hand that to `tf2onnx.convert.from_function`. Returning a dict names the ONNX
outputs after the heads; `inputs_as_nchw` makes tf2onnx take NCHW input (it adds the transpose).
"""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import SpecError
from ...text import ParamText


def convert(net, weights: dict, path: str | Path, *, opset: int, layout: str, batch: int | None,
            preprocess=None):
    """Build the Keras inference model of `net` with `weights`, convert it with
    tf2onnx.convert.from_function at `opset`, write it to `path` and return it (an
    onnx.ModelProto). The input is named "input": (batch, H, W, C) for layout "nhwc", or
    (batch, C, H, W) for "nchw" (tf2onnx's inputs_as_nchw; 4-D outputs are transposed to match);
    `batch` None is dynamic. `preprocess` (a `onnx_weights.Preprocess`) scales raw pixels first,
    as the trained model did. Needs TensorFlow and tf2onnx (incdsl[keras])."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import onnx
    import tensorflow as tf
    import tf2onnx

    from ..keras.build import build_model

    model = build_model(net, inference=True, weights=weights)
    heads = [h.name for h in net.heads if not h.train_only]
    spec = (tf.TensorSpec((batch, *net.input_shape), tf.float32, name="input"),)

    @tf.function(input_signature=spec)
    def infer(x):
        if preprocess is not None:  # raw pixels in, as the trained model took them
            x = x * preprocess.scale + preprocess.offset
        y = model(x, training=False)
        ys = y if isinstance(y, (list, tuple)) else [y]
        if layout == "nchw":  # feature-map outputs in the input's layout, as the direct emitter gives them
            ys = [tf.transpose(t, [0, 3, 1, 2]) if len(t.shape) == 4 else t for t in ys]
        return dict(zip(heads, ys))

    proto, _ = tf2onnx.convert.from_function(infer, input_signature=spec, opset=opset,
                                             inputs_as_nchw=["input"] if layout == "nchw" else None)
    unknown = sorted({n.op_type for n in proto.graph.node
                      if n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type)})
    if unknown:  # tf2onnx leaves TensorFlow ops it cannot translate in the graph, as they are
        raise SpecError(
            f"tf2onnx cannot translate the TensorFlow op(s) {', '.join(unknown)} of network {net.name}",
                        hint=ParamText("{via_direct} translates every op",
                                       words={"via_direct": 'via="direct"'}))
    _name_batch_dim(proto)
    Path(path).write_bytes(proto.SerializeToString())
    return proto


def _name_batch_dim(proto) -> None:
    """tf2onnx calls the free batch dimension `unk__N` (another N on each output, or none at all);
    call it `batch` on the input and every output, as the direct model does."""
    first = proto.graph.input[0].type.tensor_type.shape.dim[0]
    if not first.dim_param:
        return
    old = {first.dim_param}
    for vi in proto.graph.output:
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            old.add(dims[0].dim_param)
            dims[0].dim_param = "batch"
    for vi in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in old:
                d.dim_param = "batch"
