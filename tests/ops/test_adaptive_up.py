"""Issue 13, item 8: adaptive_avgpool to an output larger than its input, with PyTorch's
overlapping bins (bin i covers [floor(i*H/o), ceil((i+1)*H/o))), in Keras and ONNX both."""
from __future__ import annotations

import numpy as np
import pytest

import incdsl

# the language puts input on its own line
SPEC = "network t() {\n  input(3, 3, 1)\n  adaptive_avgpool(4)\n}\n"
# torch.nn.functional.adaptive_avg_pool2d(torch.arange(9.).reshape(1, 1, 3, 3), 4), as the issue gives it
TORCH = np.array([[0, 0.5, 1.5, 2], [1.5, 2, 3, 3.5], [4.5, 5, 6, 6.5], [6, 6.5, 7.5, 8]], np.float32)


def test_adaptive_avgpool_up_matches_torch_in_keras_and_onnx(spec_file, tmp_path):
    import onnxruntime as ort
    import torch

    from incdsl.backends.onnx.convert import export

    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    t = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 4)
    np.testing.assert_allclose(t[0, 0].numpy(), TORCH)  # the figures are torch's
    net = incdsl.load(spec_file(SPEC))
    assert net.shapes[net.heads[0].node] == (4, 4, 1)
    keras_out = np.asarray(net.to_keras()(x))[0, :, :, 0]
    np.testing.assert_allclose(keras_out, TORCH, atol=1e-6)
    export(net, tmp_path / "t.onnx", verify="keras")  # verified: checker, shapes, onnxruntime vs Keras
    sess = ort.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = sess.run(None, {"input": x.transpose(0, 3, 1, 2)})[0][0, 0]
    np.testing.assert_allclose(onnx_out, TORCH, atol=1e-6)


@pytest.mark.parametrize("size", [32, 40, 56])
def test_googlenet_tv_with_aux_checks_at_small_sizes(size):
    net = incdsl.load("specs/googlenet_tv.inc", size=size, aux=True)
    # inception4a is ceil-pooled down to 2x2 (32), 3x3 (40) or 4x4 (56): the aux heads pool up to 4x4
    assert net.shapes["aux1/adaptive_avgpool_1"] == (4, 4, 512)
    assert {h.name: h.shape for h in net.heads} == {"fc": (1000,), "aux1": (1000,), "aux2": (1000,)}
