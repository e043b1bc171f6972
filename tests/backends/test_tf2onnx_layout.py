"""Issue 13, item 7: with --layout nchw, tf2onnx's feature-map outputs are NCHW with a named batch
dimension, like the direct emitter's, and onnxruntime gives the same values through both."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import incdsl
from incdsl.backends.onnx.convert import export

MIXED = """network t() {
  input(8, 8, 3)
  mixed = concat {
    conv(4, 1)
    conv(2, 3)
  }
}
"""
# H, W and C equal at the output (4x4x4): a layout mix-up would not show in the shapes
SQUARE = "network t() {\n  input(8, 8, 3)\n  conv(4, 3, stride=2)\n}\n"


def _io(path):
    m = onnx.load(path)
    dims = lambda vi: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]  # noqa: E731
    return {vi.name: dims(vi) for vi in list(m.graph.input) + list(m.graph.output)}


@pytest.mark.slow
@pytest.mark.parametrize("text,out", [(MIXED, ["batch", 6, 8, 8]), (SQUARE, ["batch", 4, 4, 4])],
                         ids=["mixed", "square"])
def test_tf2onnx_gives_the_direct_layout_for_feature_map_outputs(spec_file, tmp_path, text, out):
    net = incdsl.load(spec_file(text))
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    results = {}
    for via in ("direct", "tf2onnx"):
        path = tmp_path / f"{via}.onnx"
        export(net, path, via=via)  # verified: shapes against incdsl summary, onnxruntime against Keras
        io = _io(path)
        assert io["input"] == ["batch", 3, 8, 8], (via, io)
        assert list(io.values())[1] == out, (via, io)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        results[via] = sess.run(None, {"input": x})[0]
    np.testing.assert_allclose(results["tf2onnx"], results["direct"], rtol=1e-5, atol=1e-5)
