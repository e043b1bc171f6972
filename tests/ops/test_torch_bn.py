"""Issue 27 item 4: torch's batch-norm update. torch.nn.BatchNorm2d moves its running variance towards
the unbiased batch variance (n / (n - 1)), Keras towards the biased one; `bn_unbiased=true` (the
torch-matched specs set it) gives torch's rule. One training step at batch 2 on 7x7 maps, against
torch itself to 1e-6; inference (Keras, ONNX export, the numpy reference) is unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import incdsl

from conftest import SPECS

SPEC = """network n(unbiased=true) {
  input(7, 7, 3)
  conv(8, 1, bias=false, bn=true, bn_eps=0.001, bn_momentum=0.9, bn_unbiased=unbiased, act=relu)
  gap -> dense(2)
}
"""


def _step(unbiased: bool, x):
    """One SGD step (learning rate 0, so the weights stay) of the spec's Keras model; returns the
    conv kernel, the moving mean and variance before and after."""
    import keras
    net = incdsl.Spec.from_text(SPEC).build(unbiased=unbiased)
    model = net.to_keras()
    bn = next(l for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
    conv = next(l for l in model.layers if isinstance(l, keras.layers.Conv2D))
    rng = np.random.default_rng(1)
    bn.moving_mean.assign(rng.normal(size=8).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=8).astype("float32"))
    before = (np.array(bn.moving_mean), np.array(bn.moving_variance))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    model.train_on_batch(x, np.zeros((2, 2), "float32"))
    return np.array(conv.kernel), before, (np.array(bn.moving_mean),
                                           np.array(bn.moving_variance)), type(bn).__name__


@pytest.mark.slow
def test_one_training_step_matches_torch_batchnorm2d():
    import torch
    x = np.random.default_rng(0).normal(size=(2, 7, 7, 3)).astype("float32") * 3 + 1
    kernel, (mean0, var0), (mean1, var1), cls = _step(True, x)
    assert cls == "TorchBatchNormalization"
    bn = torch.nn.BatchNorm2d(8, eps=0.001, momentum=0.1)  # Keras momentum 0.9
    bn.running_mean.copy_(torch.from_numpy(mean0))
    bn.running_var.copy_(torch.from_numpy(var0))
    feat = np.einsum("bhwc,cd->bdhw", x, kernel[0, 0])  # the 1x1 conv, NCHW for torch
    bn.train()(torch.from_numpy(np.ascontiguousarray(feat)))
    np.testing.assert_allclose(mean1, bn.running_mean.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(var1, bn.running_var.numpy(), atol=1e-6, rtol=0)
    # Keras' own rule misses torch's by (1 - momentum) * var / (n - 1): visible at 1e-6
    _, _, (_, keras_var), cls = _step(False, x)
    assert cls == "BatchNormalization"
    assert np.abs(keras_var - bn.running_var.numpy()).max() > 1e-4


@pytest.mark.slow
def test_inference_and_export_unchanged(tmp_path):
    x = np.random.default_rng(2).normal(size=(2, 7, 7, 3)).astype("float32")
    outs = []
    for unbiased in (True, False):
        net = incdsl.Spec.from_text(SPEC).build(unbiased=unbiased)
        model = net.to_keras(inference=True, seed=0)
        outs.append(np.array(model(x, training=False)))
    np.testing.assert_array_equal(outs[0], outs[1])
    import onnx
    graphs = []
    for unbiased in (True, False):  # the direct ONNX exporter never sees a training-only option
        path = tmp_path / f"n_{unbiased}.onnx"
        result = incdsl.Spec.from_text(SPEC).build(unbiased=unbiased).to_onnx(path, verify="keras")
        assert "onnxruntime vs Keras" in result.checked  # the export's own check against Keras inference
        graphs.append(onnx.load(path).graph)
    assert graphs[0].node == graphs[1].node
    assert [onnx.numpy_helper.to_array(t).tolist() for t in graphs[0].initializer] == \
        [onnx.numpy_helper.to_array(t).tolist() for t in graphs[1].initializer]


def test_torch_matched_specs_use_torchs_rule():
    for name in ("googlenet_tv", "inception_v3_tv", "inception_v4"):
        net = incdsl.load(SPECS / f"{name}.inc")
        bns = [l.attrs["bn_unbiased"] for l in net.layers.values() if l.op == "conv" and l.attrs["bn"]]
        assert bns and all(bns), name
    net = incdsl.load(SPECS / "inception_v3.inc")  # Keras-matched: Keras' rule
    assert not any(l.attrs.get("bn_unbiased") for l in net.layers.values())


def test_op_table_knows_the_option():
    from incdsl.ops import OPS
    assert OPS["conv"].arg("bn_unbiased").default is False and OPS["bn"].arg("unbiased").default is False


@pytest.mark.slow
def test_saved_model_keeps_torchs_rule(tmp_path):
    import keras
    model = incdsl.Spec.from_text(SPEC).build(unbiased=True).to_keras()
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert any(type(l).__name__ == "TorchBatchNormalization" for l in again.layers)


def test_one_value_per_channel_keeps_the_moving_variance_finite():
    """Review of issue 27: batch 1 on a 1x1 map (inception_v3_tv at size 75, an aux head's 1x1 map)
    once gave var / (n - 1) = 0 / 0 and a model that predicts NaN. torch refuses to train there; the
    variance stays the biased estimate (here 0) instead."""
    import keras
    net = incdsl.Spec.from_text(SPEC.replace("input(7, 7, 3)", "input(1, 1, 3)")).build(unbiased=True)
    model = net.to_keras()
    bn = next(l for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
    before = np.array(bn.moving_variance)
    model(np.ones((1, 1, 1, 3), "float32"), training=True)
    after = np.array(bn.moving_variance)
    assert np.isfinite(after).all()
    np.testing.assert_allclose(after, 0.9 * before, rtol=1e-6)  # moved towards the batch's variance, 0


def test_recalibration_keeps_torchs_rule():
    """Review of issue 27: precise BN (train/bn.py, on by default) wrote the biased variance over a
    `bn_unbiased` layer's moving variance. Recalibrated on one batch of 2 images of 7x7, torch's
    layer holds var * n / (n - 1), n = 98; Keras' the biased var, as fvcore's update_bn_stats gives."""
    import keras

    from incdsl.train.bn import recalibrate
    x = np.random.default_rng(3).normal(size=(2, 7, 7, 3)).astype("float32") * 2 + 1
    got = {}
    for unbiased in (True, False):
        model = incdsl.Spec.from_text(SPEC).build(unbiased=unbiased).to_keras()
        recalibrate(model, [x], limit=1)
        bn = next(l for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
        got[unbiased] = np.array(bn.moving_variance, dtype="float64")
    np.testing.assert_allclose(got[True], got[False] * 98 / 97, rtol=1e-5)
