"""`incdsl import` (issue 17): Keras and ONNX models back into readable specs.

The exact cases: keras.applications InceptionV3, InceptionResNetV2 and Xception (weights=None, with
random batch-norm statistics so that every array matters) and torchvision googlenet and
inception_v3 exported here with torch.onnx.export. For each, the imported spec's counts equal the
source's (Keras' count_params and MACs computed from the Keras layers; the ONNX graph's own
weights and MACs from ONNX shape inference), and the spec compiled with the weights the import
wrote gives the source's outputs to 1e-5 relative (Keras for Keras sources, onnxruntime for ONNX
sources). A spec incdsl compiled comes back with the same `incdsl expand`. Bad input is one clear
error and no file.
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import ROOT, SPECS
from incdsl.cli import main

RTOL = 1e-5


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def rel_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(a)))


def summary(capsys, spec) -> dict:
    code, out, err = run(capsys, "summary", spec, "--json")
    assert code == 0, err
    return json.loads(out)


# --- bad input: tiny hand-made ONNX graphs (no torch, no Keras) ---------------------------------

def _onnx_model(tmp_path, nodes, inputs, inits=(), name="m.onnx"):
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", inputs, [out], initializer=list(inits))
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _image(name="x", dims=(1, 3, 8, 8)):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def _kernel():
    return helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))


def _assert_clean_failure(code, err, tmp_path, *words):
    assert code == 1, err
    assert "Traceback" not in err and len(err.splitlines()) <= 6, err
    for w in words:
        assert w in err, err
    assert not (tmp_path / "out.inc").exists() and not (tmp_path / "w.keras").exists(), list(tmp_path.iterdir())


def test_bad_input_not_a_model(tmp_path, capsys):
    for name in ("notes.onnx", "notes.keras", "notes.txt"):
        bad = tmp_path / name
        bad.write_text("these are my notes, not a model\n")
        code, _, err = run(capsys, "import", bad, "-o", tmp_path / "out.inc", "--weights-out", tmp_path / "w.keras")
        _assert_clean_failure(code, err, tmp_path, f"{name}: not a")


def test_bad_input_unsupported_op_names_node_and_op(tmp_path, capsys):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="stem/conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Sin", ["c"], ["y"], name="stem/wave")]
    path = _onnx_model(tmp_path, nodes, [_image()], [_kernel()])
    code, _, err = run(capsys, "import", path, "-o", tmp_path / "out.inc")
    _assert_clean_failure(code, err, tmp_path, "'stem/wave' (Sin)", "no incdsl equivalent")


def test_bad_input_dynamic_spatial_size_names_the_input(tmp_path, capsys):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])]
    path = _onnx_model(tmp_path, nodes, [_image("pixels", ("batch", 3, "height", "width"))], [_kernel()])
    code, _, err = run(capsys, "import", path, "-o", tmp_path / "out.inc")
    _assert_clean_failure(code, err, tmp_path, "input 'pixels' has a dynamic height, width", "fixed")


def test_bad_input_several_inputs(tmp_path, capsys):
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], name="sum")]
    path = _onnx_model(tmp_path, nodes, [_image("a"), _image("b")])
    code, _, err = run(capsys, "import", path, "-o", tmp_path / "out.inc")
    _assert_clean_failure(code, err, tmp_path, "2 inputs (a, b)", "one image")


def test_bad_usage_is_exit_2(tmp_path, capsys):
    code, _, err = run(capsys, "import", tmp_path / "missing.onnx")
    assert code == 2 and "no such model file" in err
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])]
    path = _onnx_model(tmp_path, nodes, [_image()], [_kernel()])
    code, _, err = run(capsys, "import", path, "-o", tmp_path / "out.txt")
    assert code == 2 and ".inc" in err
    code, _, err = run(capsys, "import", path, "--weights-out", tmp_path / "w.h5")
    assert code == 2 and ".keras" in err


SMALL = """
network small(classes=10, size=16) {
  input(size, size, 3)
  conv(8, 3, stride=2, pad=1, act=relu)
  concat {
    conv(4, 1, act=relu)
    conv(4, 1, act=relu) -> conv(6, 3, act=relu)
    maxpool(3, stride=1, pad=1, ceil=true) -> conv(2, 1, act=relu)
  }
  gap
  output logits = dense(classes)
}
"""


def test_import_onnx_loads_no_keras_and_front_end_reads_the_spec(tmp_path):
    """An ONNX import (without --weights-out) never loads TensorFlow or Keras; the spec it writes is
    then checked by the front end alone."""
    spec = tmp_path / "small.inc"
    spec.write_text(SMALL)
    onnx_file = tmp_path / "small.onnx"
    code = f"""
import sys, incdsl
from incdsl.backends.onnx import export
export(incdsl.load({str(spec)!r}), {str(onnx_file)!r}, verify=False)
for m in ("keras", "tensorflow"):
    sys.modules.pop(m, None)
from incdsl.cli import main
assert main(["import", {str(onnx_file)!r}, "-o", {str(tmp_path / "back.inc")!r}]) == 0
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"keras", "tensorflow", "torch"}}))
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "[]"
    back = (tmp_path / "back.inc").read_text()
    assert "module" in back and "concat {" in back and "output logits = dense(classes)" in back
    import incdsl
    a, b = incdsl.load(spec).total(), incdsl.load(tmp_path / "back.inc").total()
    assert (a.params, a.macs) == (b.params, b.macs)
