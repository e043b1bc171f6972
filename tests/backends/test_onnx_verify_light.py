"""Issue 23, item 5: `incdsl compile --to onnx` verifies without Keras or TensorFlow by default
(ONNX checker, shape inference, onnxruntime vs incdsl's numpy reference); `--verify keras` keeps
the cross-check against the Keras build. The CPU time is measured by tools/bench_startup.py, not here."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

import incdsl
from incdsl.backends.onnx import verify as onnx_verify
from incdsl.backends.onnx.convert import export
from incdsl.backends.onnx.direct import emit
from incdsl.errors import OptionError
from incdsl.weights.arrays import init_weights

from conftest import ROOT, SPECS

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
HEAVY = {"tensorflow", "keras", "tf2onnx", "torch", "jax"}


def _compile_in_fresh_process(tmp_path, *args: str) -> tuple[int, str, list[str]]:
    """Run `incdsl compile ...` in a fresh interpreter (this one has Keras loaded) and return its
    exit code, its standard output and the heavy packages it imported."""
    code = ("import io, json, sys, contextlib\nfrom incdsl.cli.main import main\nout = io.StringIO()\n"
            f"with contextlib.redirect_stdout(out):\n    rc = main(['compile', *{list(args)!r}])\n"
            f"print(json.dumps([rc, out.getvalue(), sorted({{m.split('.')[0] for m in sys.modules}} "
            f"& set({sorted(HEAVY)!r}))]))")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    rc, out, heavy = json.loads(p.stdout.strip().splitlines()[-1])
    return rc, out, heavy


@pytest.mark.slow
def test_compile_inception_v3_to_onnx_verified_imports_neither_tensorflow_nor_keras(tmp_path):
    """The issue's case, `incdsl compile specs/inception_v3.inc --to onnx`, in a process where
    TensorFlow and Keras are installed (this venv has both): verified, and neither is imported."""
    rc, out, heavy = _compile_in_fresh_process(tmp_path, str(SPECS / "inception_v3.inc"), "--to", "onnx",
                                               "-o", "v3.onnx")
    assert rc == 0 and heavy == [], (out, heavy)
    assert "onnx checker (full)" in out and "125 of 125 layer tensors" in out
    assert "onnxruntime vs incdsl's numpy reference on a random batch of 1" in out
    assert (tmp_path / "v3.onnx").stat().st_size > 90e6


@pytest.mark.slow
def test_verify_keras_cross_checks_against_the_keras_build(tmp_path):
    """`--verify keras` compares onnxruntime with the Keras model holding the same weights (and so
    imports Keras); the default compares with the numpy reference, on the same file's bytes."""
    sets = ["--set", "width=0.25", "--set", "size=75", "--set", "classes=10", "--set", "aux=false"]
    spec = str(SPECS / "inception_v3.inc")
    rc, out, heavy = _compile_in_fresh_process(tmp_path, spec, "--to", "onnx", "--verify", "keras", *sets,
                                               "-o", "k.onnx")
    assert rc == 0 and "keras" in heavy and "onnxruntime vs Keras on a random batch of 1" in out, out
    rc, out, heavy = _compile_in_fresh_process(tmp_path, spec, "--to", "onnx", *sets, "-o", "n.onnx")
    assert rc == 0 and heavy == [] and "onnxruntime vs incdsl's numpy reference" in out, out
    # the check changes no byte
    assert (tmp_path / "k.onnx").read_bytes() == (tmp_path / "n.onnx").read_bytes()


def test_verify_values(tmp_path):
    """verify takes True, False, "numpy" or "keras"; anything else is refused before any work,
    naming the parameter (the CLI's --verify is checked by argparse: exit 2)."""
    net = incdsl.load(SPECS / "googlenet_tv.inc", width=0.25, size=64, classes=5, aux=False)
    with pytest.raises(OptionError, match=r"^verify must be True, False, \"numpy\" or \"keras\", got 'tf'"):
        export(net, tmp_path / "x.onnx", verify="tf")
    assert list(tmp_path.iterdir()) == []
    p = subprocess.run([sys.executable, "-m", "incdsl", "compile", str(SPECS / "googlenet_tv.inc"), "--to",
                        "onnx",
                        "--verify", "tf"], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert p.returncode == 2 and "--verify: invalid choice: 'tf'" in p.stderr and "Traceback" not in p.stderr


def test_shape_inference_on_the_skeleton_equals_the_full_model():
    """Shape inference runs on a copy whose large weights are typed inputs: every tensor gets the
    shape that inference on the whole model gives (Reshape's small target shape stays a constant)."""
    net = incdsl.load(SPECS / "inception_v3.inc", width=0.25, size=75, classes=10, aux=False)
    model = emit(net, init_weights(net, seed=0)).model
    full = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    light = onnx.shape_inference.infer_shapes(onnx_verify._skeleton(model), check_type=True, strict_mode=True)

    def shapes(m):
        return {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
                for v in list(m.graph.value_info) + list(m.graph.output)}
    assert len(shapes(full)) > 100 and shapes(light) == shapes(full)
    assert sum(t.ByteSize() for t in onnx_verify._skeleton(model).graph.initializer) < 1e5 < model.ByteSize()


def test_the_emitters_own_skeleton_infers_the_full_models_shapes():
    """`Emitted.skeleton()`, which the export verifies instead of parsing the whole model back: its
    large weights are graph inputs of their own name, type and shape, so strict shape inference
    gives every tensor the shape it gives on the whole model."""
    net = incdsl.load(SPECS / "inception_v3.inc", width=0.25, size=75, classes=10, aux=False)
    em = emit(net, init_weights(net, seed=0))
    full = onnx.shape_inference.infer_shapes(em.model, check_type=True, strict_mode=True)
    skeleton = em.skeleton()
    light = onnx.shape_inference.infer_shapes(skeleton, check_type=True, strict_mode=True)

    def shapes(m):
        return {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
                for v in list(m.graph.value_info) + list(m.graph.output)}
    assert len(shapes(full)) > 100 and shapes(light) == shapes(full)
    inputs = {v.name: v.type.tensor_type for v in skeleton.graph.input}
    assert len(em.large) > 10 and {name for name, _ in em.large} <= set(inputs)
    for name, a in em.large:
        assert inputs[name].elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_value for d in inputs[name].shape.dim] == list(a.shape)


def test_numpy_reference_in_float32_agrees_with_float64():
    """The verification runs the numpy reference in float32 (as onnxruntime computes); it agrees
    with the float64 run far inside the check's tolerance (RTOL of the output's scale)."""
    from incdsl.backends.numpy_ref import run
    net = incdsl.load(SPECS / "inception_v3.inc", width=0.25, size=75, classes=10, aux=False)
    w = init_weights(net, seed=0)
    x = np.random.default_rng(0).standard_normal((2, *net.input_shape)).astype(np.float32)
    (a,), (b,) = run(net, w, x, np.float32), run(net, w, x)
    assert a.dtype == np.float32 and b.dtype == np.float64
    assert np.abs(a - b).max() < onnx_verify.RTOL / 100 * np.abs(b).max()


def test_a_node_that_fixes_the_batch_is_refused_though_one_image_is_run():
    """With a dynamic batch the runtime check runs one image, which cannot tell a graph that folds
    the batch into one row from a right one: shape inference does, on the symbolic `batch` dim.
    A Reshape to (1, -1) after googlenet's global pooling (one image: the same numbers) is refused."""
    net = incdsl.load(SPECS / "googlenet_tv.inc", width=0.25, size=64, classes=5, aux=False)
    w = init_weights(net, seed=0)
    em = emit(net, w)
    model = em.model
    flatten = next(n for n in model.graph.node if n.output[0] == "gap_1")
    assert flatten.op_type == "Flatten"
    flatten.output[0] = "gap_1/flat"
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([1, -1], np.int64), "gap_1/one_row"))
    model.graph.node.insert(list(model.graph.node).index(flatten) + 1,
                            onnx.helper.make_node("Reshape", ["gap_1/flat", "gap_1/one_row"], ["gap_1"]))
    # the runtime comparison on one image cannot see it ...
    rel, *_, n, _ = onnx_verify.compare_runtime(model, net, w, "nchw", None, reference="numpy")
    assert n == 1 and rel <= onnx_verify.RTOL
    # ... shape inference does: the right model passes, this one is refused
    assert onnx_verify.check_structure(em.model, net, em.layer_tensors, "nchw", None)[0] > 50
    with pytest.raises(onnx_verify.VerifyError, match=r"gives 1x\S+ for 'gap_1'.*says batchx256"):
        onnx_verify.check_structure(model, net, em.layer_tensors, "nchw", None)
