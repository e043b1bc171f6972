"""The ONNX emitter's less travelled paths, in the quick suite, found by `tools/mutation.sh onnx`:
batch-norm folding in float64 (bn_affine, against the formula of Keras' BatchNormalization), weights
a user passes in float64 (written as float32 initializers), grouped, strided and dilated
convolutions of each kind, a batch norm that must not fold because another layer or an output also
reads its conv, a multiply of one input, and the node names a reader of the graph sees (each layer's
last node carries the layer's name, without Identity nodes). onnxruntime runs every graph against
incdsl's numpy interpreter (backends/numpy_ref.py, checked against Keras and torch elsewhere)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import incdsl
from incdsl.backends.onnx import direct as onnx_direct
from incdsl.backends.onnx import verify as onnx_verify

from perturbed_weights import perturbed


def matches_numpy(net, w, fold: bool, layout: str = "nchw") -> onnx.ModelProto:
    """The emitted model, after checking its every tensor's shape and its outputs against numpy."""
    em = onnx_direct.emit(net, w, fold_bn=fold, layout=layout)
    compared, total = onnx_verify.check_structure(em.model, net, em.layer_tensors, layout, None)
    assert compared == total > 0
    rel, _, scale, _, _ = onnx_verify.compare_runtime(em.model, net, w, layout, None, reference="numpy")
    assert rel <= onnx_verify.RTOL and scale > 0
    return em.model


def test_bn_affine_is_keras_batch_norm_in_float64():
    rng = np.random.default_rng(0)
    p = {k: rng.uniform(0.1, 2.0, 5).astype(np.float32) for k in ("gamma", "beta", "moving_mean",
                                                                  "moving_variance")}
    scale, shift = onnx_direct.bn_affine(p, 1e-3)
    assert scale.dtype == shift.dtype == np.float64
    g, b, m, v = (p[k].astype(np.float64) for k in ("gamma", "beta", "moving_mean", "moving_variance"))
    np.testing.assert_array_equal(scale, g / np.sqrt(v + 1e-3))
    np.testing.assert_array_equal(shift, b - m * (g / np.sqrt(v + 1e-3)))
    del p["gamma"]  # bn_scale=false: gamma is 1
    scale, _ = onnx_direct.bn_affine(p, 1e-3)
    np.testing.assert_array_equal(scale, 1 / np.sqrt(v + 1e-3))


KINDS = """
network kinds() {
  input 9x9x4
  conv(8, 3, groups=2)                                   # grouped: each filter sees 2 channels
  conv(8, 3, bn=true, bn_scale=false, bias=false)        # a batch norm without gamma
  dwconv(3, multiplier=2, stride=2, bn=true)             # 5x5x16
  sepconv(6, 3, stride=2, bias=true)                     # 3x3
  sepconv(6, 3, dilation=2, pad=same, bn=true)
  conv(5, 1, bias=false) -> bn                           # a standalone bn that folds
  gap
}
"""


@pytest.mark.parametrize("fold", [True, False])
def test_every_conv_kind_from_float64_weights(fold):
    net = incdsl.loads(KINDS)
    w64 = {n: {k: a.astype(np.float64) for k, a in arrays.items()} for n, arrays in perturbed(net).items()}
    model = matches_numpy(net, w64, fold)
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.FLOAT}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    groups = [next(a.i for a in n.attribute if a.name == "group") for n in convs]
    # the dwconv's 8 channels, each sepconv's depthwise (16, 6 channels) and pointwise
    assert groups == [2, 1, 8, 16, 1, 6, 1, 1]
    assert [n.op_type for n in model.graph.node].count("BatchNormalization") == (0 if fold else 4)


def test_a_bn_after_a_conv_that_another_layer_reads_does_not_fold():
    # folding would scale the conv's output for the concat's second input too
    net = incdsl.loads("""
network two() {
  input 6x6x3
  x = conv(4, 3, bias=false)
  concat { bn; identity }
}
""")
    model = matches_numpy(net, perturbed(net), fold=True)
    assert [n.op_type for n in model.graph.node] == ["Conv", "BatchNormalization", "Concat"]


def test_a_multiply_of_one_input_passes_it_on_under_its_name():
    net = incdsl.loads("network one() {\n  input 4x4x3\n  x = conv(4, 1)\n  m = multiply { x }\n  gap\n}\n")
    model = matches_numpy(net, perturbed(net), fold=True)
    nodes = [(n.op_type, n.name, list(n.input)) for n in model.graph.node]
    assert nodes[1] == ("Identity", "m", ["x"])


def test_a_multiply_of_the_graph_input_alone_is_the_first_node():
    # rename() before any node exists (dropout is left out of the graph): the Identity is its first node
    net = incdsl.loads("network one() {\n  input 4x4x3\n  m = multiply { dropout(0.1) }\n  gap\n}\n")
    model = matches_numpy(net, perturbed(net), fold=True)
    first = model.graph.node[0]
    assert (first.op_type, first.name, list(first.input)) == ("Identity", "m", [model.graph.input[0].name])


@pytest.mark.parametrize("fold", [True, False])
def test_each_layers_last_node_carries_its_name(fold):
    """A reader of the graph (Netron, onnxruntime's profiler) finds each layer by its spec name: the
    layer's last node is renamed, not followed by an Identity."""
    net = incdsl.loads(KINDS)
    model = matches_numpy(net, perturbed(net), fold)
    names = {n.name for n in model.graph.node}
    assert "Identity" not in {n.op_type for n in model.graph.node}
    # a folded standalone bn is its conv's node
    made = {name for name, layer in net.layers.items() if layer.op != "input"} - ({"bn_1"} if fold else set())
    assert made <= names
    # inside a layer: LAYER/conv then LAYER (its batch norm or the conv itself)
    conv2 = [n for n in model.graph.node if n.name.startswith("conv_2")]
    want = [("Conv", "conv_2")] if fold else [("Conv", "conv_2/conv"), ("BatchNormalization", "conv_2")]
    assert [(n.op_type, n.name) for n in conv2] == want


MAPS = """
network maps(classes=4) {
  input 7x7x3
  feat = conv(6, 3, stride=2, bn=true)          # 4x4x6
  map = feat -> conv(6, 1)
  output map = map                              # an output named as its layer
  output probs = map -> leaky_relu(0.3) -> gap -> dense(classes, act=softmax)   # reads that layer too
}
"""


@pytest.mark.parametrize("layout, batch", [("nhwc", None), ("nhwc", 3), ("nchw", 2)])
def test_raw_pixels_through_the_models_preprocess_and_map_outputs_in_the_layout(layout, batch):
    """A trained model's file gives raw-pixel ONNX: x * scale + offset per channel before the
    network (onnx/weights.py's Preprocess, from the file's Rescaling or Normalization layer); a map
    output is declared and given in the model's layout, its batch as asked."""
    from incdsl.backends.onnx.weights import Preprocess

    net = incdsl.loads(MAPS)
    w = perturbed(net)
    pre = Preprocess("Normalization", np.array([0.02, -0.01, 0.004], np.float32),
                     np.array([-1.0, 0.5, 2.0], np.float32))
    em = onnx_direct.emit(net, w, layout=layout, batch=batch, preprocess=pre)
    compared, total = onnx_verify.check_structure(em.model, net, em.layer_tensors, layout, batch)
    assert compared == total > 0
    rel, _, scale, n, _ = onnx_verify.compare_runtime(em.model, net, w, layout, batch, preprocess=pre,
                                                      reference="numpy")
    assert rel <= onnx_verify.RTOL and scale > 0 and n == (batch or 1)
    g = em.model.graph
    nodes = [(n.op_type, n.name, list(n.input)) for n in g.node]
    first = "input/nchw" if layout == "nhwc" else "input"
    assert nodes[int(layout == "nhwc"):][:2] == [
        ("Mul", "preprocess/scaled", [first, "preprocess/scale"]),
        ("Add", "preprocess", ["preprocess/scaled", "preprocess/offset"])]
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    np.testing.assert_array_equal(consts["preprocess/scale"], pre.scale.reshape(1, 3, 1, 1))
    np.testing.assert_array_equal(consts["preprocess/offset"], pre.offset.reshape(1, 3, 1, 1))
    b = "batch" if batch is None else batch
    dims = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in g.output}
    assert dims == {"map": [b, 4, 4, 6] if layout == "nhwc" else [b, 6, 4, 4], "probs": [b, 4]}
    if layout == "nhwc":  # the map leaves through a transpose; the layer's NCHW tensor is renamed
        assert ("Transpose", "map/nhwc", ["map/nchw"]) in nodes
        assert [list(n.output) for n in g.node if n.name == "map"] == [["map/nchw"]]
        assert [n.op_type for n in g.node if "map/nchw" in n.input] == ["LeakyRelu", "Transpose"]
    alpha = [a.f for n in g.node if n.op_type == "LeakyRelu" for a in n.attribute if a.name == "alpha"]
    assert alpha == [pytest.approx(0.3)]


def test_emit_defaults_and_the_models_description():
    """emit's defaults (README, "ONNX"): opset 18, NCHW, a dynamic batch, batch norm folded; the
    graph's doc string names the network, its file and the parameters it was built with."""
    net = incdsl.loads(MAPS, classes=3)
    em = onnx_direct.emit(net, perturbed(net))
    m = em.model
    assert m.opset_import[0].version == 18 and "BatchNormalization" not in {n.op_type for n in m.graph.node}
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 7, 7]
    assert m.graph.doc_string == f"incdsl: network maps from {net.path} (classes=3)"


def test_a_first_layer_that_passes_the_input_on_is_an_identity_named_after_it():
    # in NCHW no node precedes it (the input is the graph's own tensor): nothing to rename
    net = incdsl.loads("network first() {\n  input 4x4x3\n  dropout(0.1)\n}\n")
    model = matches_numpy(net, {}, fold=True)
    nodes = [(n.op_type, n.name, list(n.input)) for n in model.graph.node]
    assert nodes == [("Identity", "dropout_1", ["input"])]


def test_the_description_lists_every_parameter_or_none():
    two = incdsl.loads("network two(classes=4, width=2) {\n  input 6x5x3\n  conv(width, 1)\n  gap\n"
                       "  dense(classes)\n}\n", classes=3)
    assert onnx_direct.emit(two, perturbed(two)).model.graph.doc_string == (
        f"incdsl: network two from {two.path} (classes=3, width=2)")
    bare = incdsl.loads("network bare() {\n  input 4x4x3\n  gap\n}\n")
    assert onnx_direct.emit(bare, {}).model.graph.doc_string == f"incdsl: network bare from {bare.path}"


def test_a_non_square_map_output_is_declared_in_nhwc():
    net = incdsl.loads("network wide() {\n  input 7x5x3\n  conv(6, 3)\n}\n")
    model = matches_numpy(net, perturbed(net), fold=True, layout="nhwc")
    dims = [d.dim_value or d.dim_param for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 7, 5, 6]


def test_a_training_only_head_declared_first_leaves_the_outputs_after_it():
    # Heads keep the spec's order: here the auxiliary head comes before the output, and leaving
    # it out of the ONNX graph must not leave out the heads after it.
    net = incdsl.loads("""
network t() {
  input 8x8x3
  a = conv(4, 3)
  train_output aux = a -> gap -> dense(2)
  output main = a -> conv(4, 3) -> gap -> dense(2)
}
""")
    assert [(h.name, h.train_only) for h in net.heads] == [("aux", True), ("main", False)]
    model = matches_numpy(net, perturbed(net), fold=True)
    assert [o.name for o in model.graph.output] == ["main"]
