"""The activation table is complete (issue 26, item 2): every activation has each field, the language
and specs/README.md know its word, and its numpy function (the numpy reference's) agrees on sample
values with onnxruntime running its ONNX builder, with Keras' activation of its Keras name and with
torch.nn's module of its torch name: the references, not our own numbers."""
import numpy as np
import pytest

import incdsl
from incdsl.ops import ACTIVATION_NAMES, ACTIVATIONS, LEAKY_RELU_SLOPE, OPS, normalize
from incdsl.ops.activations import TABLE, Activation

# values around every kink: relu6's 0 and 6, hard_sigmoid's -3 and 3, and both signs
SAMPLE = np.concatenate([np.linspace(-7.0, 7.0, 57), [-3.0, 0.0, 3.0, 6.0]]).astype(np.float32)
SHAPE = (2, 2, 5, 3)  # NHWC: a batch of two 2x5 maps of 3 channels (softmax runs over the channels)


def _x() -> np.ndarray:
    return np.resize(SAMPLE, np.prod(SHAPE)).reshape(SHAPE).astype(np.float32)


def test_every_activation_has_every_field():
    assert tuple(TABLE) == ACTIVATIONS and len(ACTIVATIONS) >= 11
    for name, a in TABLE.items():
        assert isinstance(a, Activation) and a.name == name
        assert isinstance(a.keras, str) and a.keras, name
        assert isinstance(a.torch, str) and a.torch, name
        assert callable(a.onnx) and callable(a.numpy), name
        assert a.onnx_op is None or a.onnx_op[0].isupper(), name
    # the ONNX importer reads each onnx_op back as one activation
    ops = [a.onnx_op for a in TABLE.values() if a.onnx_op]
    assert len(ops) == len(set(ops)) and {"Relu", "Sigmoid", "Tanh"} <= set(ops)
    assert set(ACTIVATION_NAMES.values()) <= set(TABLE)


def test_every_activation_is_a_word_of_the_language_and_documented():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "specs" / "README.md").read_text()
    for name in TABLE:
        assert normalize(OPS["act"], {"fn": name})["fn"] == name
        assert normalize(OPS["conv"], {"filters": 4, "act": name})["act"] == name
        assert f" {name} " in " ".join(readme.replace("`",
                                                      " ").split()), f"specs/README.md does not list {name}"
    net = incdsl.loads("network n() {\n  input 4x4x3\n" + "".join(f"  {n}\n" for n in TABLE) + "}\n")
    assert [layer.attrs["fn"] for layer in net.layers.values() if layer.op == "act"] == list(TABLE)


@pytest.mark.parametrize("opset", [18, 20])
def test_numpy_agrees_with_onnxruntime_running_the_onnx_builder(opset):
    """One network of every activation in a row would let one error hide another: one network each."""
    import onnxruntime as ort

    from incdsl.backends.numpy_ref import run
    from incdsl.backends.onnx.direct import emit
    x = _x()
    for name, a in TABLE.items():
        net = incdsl.loads(f"network n() {{\n  input 2x5x3\n  act({name})\n}}\n")
        model = emit(net, {}, opset=opset, layout="nhwc").model
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        want = a.numpy(np, x.astype(np.float64), None)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name}, opset {opset}")
        np.testing.assert_allclose(run(net, {}, x)[0], want, rtol=1e-12, atol=1e-12, err_msg=name)
        if name == "gelu":  # opset 20 has Gelu; before it the erf formula
            assert ("Gelu" in {n.op_type for n in model.graph.node}) == (opset >= 20)


def test_leaky_relus_slope_reaches_numpy_and_onnx():
    import onnxruntime as ort

    from incdsl.backends.onnx.direct import emit
    x = _x()
    a = TABLE["leaky_relu"]
    assert np.allclose(a.numpy(np, x, None), np.where(x > 0, x, LEAKY_RELU_SLOPE * x))
    net = incdsl.loads("network n() {\n  input 2x5x3\n  leaky_relu(0.01)\n}\n")
    sess = ort.InferenceSession(emit(net, {}, layout="nhwc").model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, np.where(x > 0, x, 0.01 * x), rtol=1e-6)
    np.testing.assert_allclose(a.numpy(np, x, 0.01), np.where(x > 0, x, 0.01 * x), rtol=1e-6)


@pytest.mark.slow  # imports Keras (TensorFlow) and torch: some 15 s
def test_numpy_agrees_with_keras_and_torch():
    import keras
    import torch

    x = _x()
    torch_args = {"leaky_relu": {"negative_slope": LEAKY_RELU_SLOPE}, "softmax": {"dim": -1},
                  "log_softmax": {"dim": -1}}
    for name, a in TABLE.items():
        want = a.numpy(np, x.astype(np.float64), None)
        fn = keras.activations.get(a.keras)
        # the name Keras writes into a saved model, which the Keras importer reads back
        assert keras.activations.serialize(fn) == a.keras, (a.name, keras.activations.serialize(fn))
        got = keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(x)))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"keras {a.keras}")
        module = getattr(torch.nn, a.torch)(**torch_args.get(name, {}))
        got = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"torch.nn.{a.torch}")
