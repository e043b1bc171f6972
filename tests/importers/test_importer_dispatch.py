"""Each importer maps an ONNX op type or a Keras layer class to its converter through one dict
(issue 26, item 3, as TVM's `_convert_map`): every key is a real op type or class, and every op type
or class our own backends write for the importable ops is there, so a model incdsl compiled reads
back."""
import pytest

import incdsl
from incdsl.ops import ACTIVATION_TABLE

# every op the importers read, each activation with a one-node ONNX form, and batch norm alone
IMPORTABLE = """
network importable() {
  input 12x12x3
  conv(8, 3, bn=true, act=relu) -> dwconv(3, multiplier=2, bias=false) -> bn -> relu6
  zeropad((1, 0, 1, 0)) -> maxpool(3, stride=2, ceil=true)
  add { identity; conv(16, 1, act=elu) -> scale(0.2) }
  concat { avgpool(3, stride=1, pad=same); conv(4, 1) -> lrn(5) -> sigmoid -> tanh -> hard_sigmoid -> gelu }
  multiply { identity; gap -> dense(20, act=leaky_relu) }
  leaky_relu(0.1) -> gap -> dropout(0.5) -> dense(10) -> softmax
}
"""


def _onnx_op_types(model) -> set[str]:
    return {n.op_type for n in model.graph.node}


@pytest.mark.parametrize("fold_bn", [True, False])
def test_every_onnx_op_type_the_emitter_writes_for_importable_ops_is_converted(tmp_path, fold_bn):
    import onnx

    from incdsl.backends.onnx.direct import emit
    from incdsl.importers import model_onnx
    from incdsl.importers.onnx_ops import CONVERT
    from incdsl.weights.arrays import init_weights

    assert all(onnx.defs.has(op) for op in CONVERT), [op for op in CONVERT if not onnx.defs.has(op)]
    net = incdsl.loads(IMPORTABLE)
    model = emit(net, init_weights(net, 0), opset=20, fold_bn=fold_bn).model
    assert _onnx_op_types(model) - set(CONVERT) == set()
    path = tmp_path / "importable.onnx"
    onnx.save(model, str(path))
    flat = model_onnx.read(path)
    ops = {n.op for n in flat.nodes.values()}
    assert ops >= {"conv", "dwconv", "zeropad", "maxpool", "add", "scale", "concat", "avgpool", "lrn", "act",
                   "multiply", "gap", "dense"}
    fns = {n.attrs["fn"] for n in flat.nodes.values() if n.op == "act"} | \
          {n.attrs.get("act") for n in flat.nodes.values() if n.op in ("conv", "dwconv", "dense")}
    assert {"relu", "relu6", "elu", "sigmoid", "tanh", "hard_sigmoid", "gelu", "leaky_relu", "softmax"} <= fns


def test_every_activation_with_an_onnx_op_is_converted():
    from incdsl.importers.onnx_ops import CONVERT
    from incdsl.importers.onnx_parts import ACTS
    assert {a.onnx_op for a in ACTIVATION_TABLE.values() if a.onnx_op} == set(ACTS) <= set(CONVERT)


@pytest.mark.slow  # imports Keras (TensorFlow): some 13 s
def test_every_keras_class_the_backend_builds_for_importable_ops_is_converted():
    import keras
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    from incdsl.backends.keras.layers import CUSTOM_OBJECTS
    from incdsl.importers.keras_convert import CONVERT, KERAS_ACTIVATIONS
    from incdsl.importers.model_keras import from_model

    known = {c.__name__ for c in CUSTOM_OBJECTS.values()} | {CustomScaleLayer.__name__}
    assert all(hasattr(keras.layers, cls) or cls in known for cls in CONVERT)
    net = incdsl.loads(IMPORTABLE)
    model = net.to_keras()
    built = {type(layer).__name__ for layer in model.layers}
    assert built - set(CONVERT) == set()
    flat = from_model(model, "importable.keras")
    assert {n.op for n in flat.nodes.values()} >= {"conv", "dwconv", "bn", "act", "zeropad", "maxpool", "add",
                                                   "scale", "concat", "avgpool", "lrn", "multiply", "gap",
                                                   "dense", "dropout"}
    assert {KERAS_ACTIVATIONS[a.keras] for a in ACTIVATION_TABLE.values()} == set(ACTIVATION_TABLE)
