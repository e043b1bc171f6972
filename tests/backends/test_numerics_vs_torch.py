"""Batch-norm epsilon, LRN and adaptive average pooling through Keras and ONNX against torch, with
inputs strong enough that the wrong rule gives a different answer (written to catch faults that
once passed the whole suite, injected one at a time into a copy of the code)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import incdsl
from incdsl.weights.arrays import init_weights


def _stats(w: dict, seed: int = 0) -> dict:
    """Batch-norm statistics far from the identity, so that eps and folding show."""
    rng = np.random.default_rng(seed)
    for arrays in w.values():
        for k, a in arrays.items():
            if k == "moving_variance":
                arrays[k] = rng.uniform(0.05, 0.3, a.shape).astype(np.float32)  # eps matters next to these
            elif k in ("moving_mean", "beta"):
                arrays[k] = rng.normal(0, 0.5, a.shape).astype(np.float32)
            elif k == "gamma":
                arrays[k] = rng.uniform(0.5, 2.0, a.shape).astype(np.float32)
    return w


def _onnx_run(net, w, x, tmp_path, layout="nhwc"):
    import onnxruntime as ort
    res = net.to_onnx(tmp_path / "m.onnx", w, layout=layout, verify=False)
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    feed = x if layout == "nhwc" else x.transpose(0, 3, 1, 2)
    out = sess.run(None, {sess.get_inputs()[0].name: feed})[0]
    return out if layout == "nhwc" or out.ndim != 4 else out.transpose(0, 2, 3, 1)


# --- batch-norm epsilon reaches both backends ---------------------------------------------------

BN_SPEC = """
network n() {
  input 5x5x4
  x = conv(3, 1, bias=false, bn=true, bn_eps=0.25)
  bn(eps=0.5)
}
"""


def _bn_reference(net, w, x):
    """torch: 1x1 conv, BatchNorm2d(eps=0.25) in eval mode, BatchNorm2d(eps=0.5)."""
    conv_name, bn_name = [n for n in net.layers if n != "input"]
    k = torch.tensor(w[conv_name]["kernel"]).permute(3, 2, 0, 1)
    t = torch.nn.functional.conv2d(torch.tensor(x).permute(0, 3, 1, 2), k)
    for name, eps in ((conv_name, 0.25), (bn_name, 0.5)):
        a = w[name]
        t = torch.nn.functional.batch_norm(t, torch.tensor(a["moving_mean"]),
                                           torch.tensor(a["moving_variance"]),
                                           torch.tensor(a["gamma"]), torch.tensor(a["beta"]), False, 0.0, eps)
    return t.permute(0, 2, 3, 1).numpy()


@pytest.mark.slow
def test_bn_eps_reaches_keras_and_onnx(tmp_path):
    net = incdsl.loads(BN_SPEC)
    w = _stats(init_weights(net, 0))
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 4)).astype(np.float32)
    want = _bn_reference(net, w, x)
    got_keras = np.asarray(net.to_keras(weights=w).predict(x, verbose=0))
    np.testing.assert_allclose(got_keras, want, rtol=1e-5, atol=1e-5)
    for layout in ("nhwc", "nchw"):
        np.testing.assert_allclose(_onnx_run(net, w, x, tmp_path, layout), want, rtol=1e-5, atol=1e-5)


# --- LRN and adaptive pooling in ONNX against torch ---------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("size", [4, 5])
def test_lrn_matches_torch_at_even_and_odd_sizes(size, tmp_path):
    # alpha = 2 makes alpha vs alpha / size a factor-of-size difference, far above tolerance
    net = incdsl.loads(f"network n() {{\n  input 3x3x6\n  lrn({size}, alpha=2.0, beta=0.75, bias=1.0)\n}}\n")
    x = np.random.default_rng(2).normal(size=(1, 3, 3, 6)).astype(np.float32)
    lrn = torch.nn.LocalResponseNorm(size, alpha=2.0, beta=0.75, k=1.0)
    want = lrn(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(_onnx_run(net, {}, x, tmp_path), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(net.to_keras().predict(x, verbose=0)), want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("size,out", [(8, 4), (7, 3)])  # evenly binned, and PyTorch's uneven bins
def test_adaptive_avgpool_matches_torch(size, out, tmp_path):
    net = incdsl.loads(f"network n() {{\n  input {size}x{size}x2\n  adaptive_avgpool({out})\n}}\n")
    x = np.random.default_rng(3).normal(size=(1, size, size, 2)).astype(np.float32)
    want = torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x).permute(0, 3, 1, 2), out)
    want = want.permute(0, 2, 3, 1).numpy()
    for layout in ("nhwc", "nchw"):
        np.testing.assert_allclose(_onnx_run(net, {}, x, tmp_path, layout), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(net.to_keras().predict(x, verbose=0)), want, rtol=1e-5, atol=1e-6)
