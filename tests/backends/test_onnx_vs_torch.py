"""The ONNX emitter's weightless translations against torch, in the quick suite (no Keras): adaptive
average pooling (an AveragePool for even bins, bin-averaging MatMuls for PyTorch's uneven and
overlapping ones; torch.nn.functional.adaptive_avg_pool2d), the channel gates of multiply (a vector
of C or a 1x1xC map scaling an HxWxC map, several at once; broadcasting as torch does) and flatten
in NHWC order (the order the IR's and Keras' dense weights expect). Run in both layouts on a batch
of 2 (a gate reshaped to the batch of 1 would pass a batch of 1).

The numpy interpreter the ONNX zoo test compares against shares `adaptive_bins` with the emitter,
so it cannot catch a wrong bin: torch can. Found by `tools/mutation.sh onnx`."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

import incdsl


def onnx_run(net, x: np.ndarray, tmp_path, layout: str) -> tuple[np.ndarray, list[str]]:
    """The network's output for NHWC `x` (returned NHWC for a map) and the graph's op types."""
    res = net.to_onnx(tmp_path / f"m_{layout}.onnx", {}, layout=layout, verify=False)
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    feed = x if layout == "nhwc" else x.transpose(0, 3, 1, 2)
    out = sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(feed)})[0]
    ops = [n.op_type for n in onnx.load(str(res.path)).graph.node]
    return (out.transpose(0, 2, 3, 1) if layout == "nchw" and out.ndim == 4 else out), ops


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x).permute(0, 3, 1, 2)


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy() if t.ndim == 4 else t.numpy()


def sample(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, h, w, c)).astype(np.float32)


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("h, w, out, even", [
    (8, 8, (4, 4), True),     # even bins: one AveragePool
    (8, 6, (2, 3), True),
    (7, 7, (3, 3), False),    # PyTorch's uneven bins, overlapping by a pixel
    (6, 5, (3, 3), False),    # even down, uneven across
    (5, 6, (3, 3), False),    # and the other way round
    (3, 3, (5, 5), False),    # larger than the input: each pixel in one or two bins
])
def test_adaptive_avgpool_bins_as_torch(h, w, out, even, layout, tmp_path):
    net = incdsl.loads(f"network n() {{\n  input {h}x{w}x3\n  adaptive_avgpool(({out[0]}, {out[1]}))\n}}\n")
    x = sample(h, w, 3)
    got, ops = onnx_run(net, x, tmp_path, layout)
    np.testing.assert_allclose(got, nhwc(F.adaptive_avg_pool2d(nchw(x), out)), rtol=1e-5, atol=1e-6)
    assert ("AveragePool" in ops) == even and ("MatMul" in ops) == (not even)


GATES = """
network gates() {
  input 5x4x6
  gate = multiply { identity; gap; adaptive_avgpool(1) }
}
"""


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_multiply_gates_scale_the_channels_as_torch_broadcasts(layout, tmp_path):
    # a vector of 6 (gap) and a 1x1x6 map (adaptive_avgpool(1)), both the channel means, scaling the map
    x = sample(5, 4, 6, seed=1)
    got, ops = onnx_run(incdsl.loads(GATES), x, tmp_path, layout)
    t = nchw(x)
    mean = t.mean(dim=(2, 3), keepdim=True)
    np.testing.assert_allclose(got, nhwc(t * mean * mean), rtol=1e-5, atol=1e-6)
    assert ops.count("Mul") == 2 and ops.count("Reshape") == 1  # only the vector is reshaped
    # named as the Keras backend names its layers (input i of the multiply counted from 1)
    nodes = {n.name: n.op_type for n in onnx.load(str(tmp_path / f"m_{layout}.onnx")).graph.node}
    assert (nodes["gate/expand2"], nodes["gate/mul2"], nodes["gate"]) == ("Reshape", "Mul", "Mul")
    model = onnx.load(str(tmp_path / f"m_{layout}.onnx"))
    assert "gate/expand2/shape" in {t.name for t in model.graph.initializer}


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_multiply_of_vectors_and_of_one_input(layout, tmp_path):
    x = sample(3, 3, 4, seed=2)
    vectors = incdsl.loads("network v() {\n  input 3x3x4\n  gap\n  multiply { identity; identity }\n}\n")
    got, ops = onnx_run(vectors, x, tmp_path, layout)
    m = x.mean(axis=(1, 2))
    np.testing.assert_allclose(got, m * m, rtol=1e-5, atol=1e-6)
    assert "Reshape" not in ops


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("h, w", [(2, 1), (1, 2), (3, 3), (1, 1)])
def test_flatten_is_in_nhwc_order(h, w, layout, tmp_path):
    net = incdsl.loads(f"network f() {{\n  input {h}x{w}x3\n  flatten\n}}\n")
    x = sample(h, w, 3, seed=3)
    got, ops = onnx_run(net, x, tmp_path, layout)
    np.testing.assert_array_equal(got, x.reshape(2, -1))
    assert ops[-1] == "Flatten"


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_flatten_of_a_vector_passes_it_on(layout, tmp_path):
    net = incdsl.loads("network f() {\n  input 3x3x4\n  gap\n  flatten\n}\n")
    x = sample(3, 3, 4, seed=4)
    got, ops = onnx_run(net, x, tmp_path, layout)
    np.testing.assert_allclose(got, x.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert ops.count("Flatten") == 1  # gap's own, none for the flatten of its vector
