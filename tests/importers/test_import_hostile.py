"""`incdsl import` of hostile or damaged ONNX files (issue 24 #9, #12): initializers whose data does
not fill their dims, line feeds in node names, external data, and a long chain imported in
linear time."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from bench_import_chain import chain  # noqa: E402 (the chain tools/bench_import_chain.py times)


def _save(path: Path, nodes, inits, out: str, out_shape=(1, 2, 4, 4)) -> Path:
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_initializer_data_that_does_not_fill_its_dims_is_a_clear_error(tmp_path, cli):
    w = numpy_helper.from_array(np.zeros((2, 2, 1, 1), np.float32), "w")
    w.dims[:] = [2, 2, 3, 3]  # 4 floats of data for 36
    path = _save(tmp_path / "bad.onnx", [helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [w], "y")
    code, err = cli("import", str(path), "-o", str(tmp_path / "bad.inc")).code_err
    assert code == 1
    assert "initializer 'w' declares dims 2x2x3x3 but its data does not fill them" in err
    assert "internal error" not in err and "Traceback" not in err
    assert not (tmp_path / "bad.inc").exists()


def test_a_line_feed_in_a_node_name_cannot_forge_an_error_line(tmp_path, cli):
    w = numpy_helper.from_array(np.zeros((2, 2, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c\nerror: forged one"),
             helper.make_node("Frobnicate", ["y"], ["z"], name="bad\nerror: forged two\r\x1b[2J")]
    path = _save(tmp_path / "lf.onnx", nodes, [w], "z")
    code, err = cli("import", str(path), "-o", str(tmp_path / "lf.inc")).code_err
    assert code == 1
    lines = err.splitlines()
    assert [l for l in lines if l.startswith("error:")] == [l for l in lines if "Frobnicate" in l]
    assert "bad\u240aerror: forged two\u240d\u241b[2J" in err
    assert not any("forged" in l and not l.startswith("error: ") for l in lines)


def test_external_data_is_refused_not_read(tmp_path, cli):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 2, 1, 1])
    w.data_location = TensorProto.EXTERNAL
    for k, v in {"location": "secret.bin", "offset": "0", "length": "16"}.items():
        w.external_data.add(key=k, value=v)
    path = _save(tmp_path / "ext.onnx", [helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [w], "y")
    code, err = cli("import", str(path), "-o", str(tmp_path / "ext.inc"), "--weights-out",
                      str(tmp_path / "ext.keras")).code_err
    assert code == 1
    assert "initializer 'w' keeps its data in another file (ONNX external data)" in err
    assert not (tmp_path / "ext.inc").exists() and not (tmp_path / "ext.keras").exists()


_TIMED = """
import sys, time
from incdsl.importers.model import import_model
t = time.process_time()
import_model(sys.argv[1], sys.argv[2])
print(time.process_time() - t)
"""


@pytest.mark.slow  # about 15 s of CPU: a 20,000-node import
def test_import_time_grows_linearly_with_a_chain(tmp_path):
    # issue 24 #9: a 20,000-node chain did not finish in 120 s (fusion rescanned every node per fold);
    # CPU time of the import alone (not Python's start-up), 20,000 nodes against 2,000 of the same chain
    times = {}
    for n in (2000, 20000):
        src = chain(tmp_path / f"c{n}.onnx", n)
        r = subprocess.run([sys.executable, "-c", _TIMED, str(src), str(tmp_path / f"c{n}.inc")],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        times[n] = float(r.stdout.strip().splitlines()[-1])
    assert times[20000] / times[2000] < 20, times  # quadratic was ~100


@pytest.mark.slow  # Keras builds and saves a 1,001-layer model: about 30 s
def test_weights_out_of_a_chain_deeper_than_pythons_recursion_limit(tmp_path, cli):
    # Keras walks a functional model recursively: 1,000 chained layers overflowed the default limit
    src = chain(tmp_path / "c2k.onnx", 2000)
    code, err = cli("import", str(src), "-o", str(tmp_path / "c2k.inc"), "--weights-out",
                      str(tmp_path / "c2k.keras")).code_err
    assert code == 0, err
    import incdsl
    from incdsl.backends.onnx.weights import read_keras_file
    net = incdsl.load(tmp_path / "c2k.inc")
    weights = read_keras_file(net, tmp_path / "c2k.keras")
    assert len(weights) == 1000
    assert all(np.allclose(w["kernel"], 0.5) for w in weights.values())


def test_a_model_without_outputs_is_a_clear_error(tmp_path, cli):
    # found by tools/fuzz.py --targets files (seed 24): an IndexError in importers/structure.py
    w = numpy_helper.from_array(np.zeros((2, 2, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])], [], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "none.onnx")
    code, err = cli("import", str(tmp_path / "none.onnx"), "-o", str(tmp_path / "none.inc")).code_err
    assert code == 1 and "none.onnx: the model has no outputs" in err, err
