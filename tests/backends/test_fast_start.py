"""Issue 23, item 5 (fast start): what makes `compile --to onnx` and `predict` start fast keeps
their results. The figures themselves come from tools/bench_startup.py, never from a timed test.

- the ONNX file is written from the weight arrays (onnx_direct.Emitted.serialized), not through
  protobuf: the model it holds is the one onnx's own numpy_helper encodes;
- `predict` loads a .keras with HostZeros instead of Keras' initializers, reads the archive's
  weights once, and on JAX runs one compiled forward pass: the probabilities are those of
  keras.saving.load_model on the same file, on TensorFlow and on JAX;
- on JAX, the compiled forward pass is cached only in this user's private cache folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import incdsl
from incdsl.backends.onnx.direct import LARGE, emit
from incdsl.weights.arrays import init_weights

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


def test_serialized_model_is_the_one_numpy_helper_encodes():
    """Every large initializer in the written bytes equals numpy_helper.from_array of the array the
    emitter kept (dims, type, little-endian values); the rest equals the head protobuf wrote."""
    net = incdsl.load(SPECS / "inception_v3.inc", width=0.25, size=75, classes=10, aux=False)
    em = emit(net, init_weights(net, seed=0))
    got = onnx.load_from_string(em.serialized())
    want = onnx.ModelProto()
    want.CopyFrom(em.head)
    want.graph.initializer.extend(numpy_helper.from_array(a, name) for name, a in em.large)
    assert len(em.large) > 80 and all(a.size > LARGE for _, a in em.large)
    assert len(em.head.graph.initializer) > 80  # biases and small kernels: protobuf writes them
    assert {t.name: t for t in got.graph.initializer} == {t.name: t for t in want.graph.initializer}
    got.graph.ClearField("initializer")
    want.graph.ClearField("initializer")
    assert got == want
    onnx.checker.check_model(em.serialized(), full_check=True)
    assert em.model.graph.initializer[-1].name == em.large[-1][0]


_PREDICT = """
import json, sys
import keras, numpy as np
from incdsl.train.predict import load_images, predict
want_model = keras.saving.load_model(sys.argv[1], compile=False)  # Keras' own loader: the reference
x = load_images(sys.argv[2:], want_model.input_shape[1:])
want = np.asarray(keras.ops.convert_to_numpy(want_model(x, training=False)), np.float64)
got = predict(sys.argv[1], sys.argv[2:], top=3)
print(json.dumps({"backend": keras.backend.backend(), "want": want.tolist(), "got": got}))
"""


def _images(tmp_path: Path) -> list[str]:
    from PIL import Image
    out = []
    for i in range(2):
        p = tmp_path / f"img{i}.jpg"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (90, 80, 3), np.uint8)).save(p)
        out.append(str(p))
    return out


@pytest.mark.slow  # Keras loads the model twice on two backends
def test_predict_gives_keras_own_probabilities_on_tensorflow_and_jax(tmp_path):
    net = incdsl.load(SPECS / "inception_v3.inc", width=0.25, size=75, classes=10, aux=False)
    model = tmp_path / "m.keras"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "XDG_CACHE_HOME": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-m", "incdsl", "compile", str(SPECS / "inception_v3.inc"),
                           "--set",
                           "width=0.25", "--set", "size=75", "--set", "classes=10", "--set", "aux=false",
                           "--to", "keras", "--inference", "-o", str(model)],
                          env={**env, "KERAS_BACKEND": "tensorflow"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert net.heads[0].shape == (10,)
    images = _images(tmp_path)
    for backend in ("tensorflow", "jax"):
        p = subprocess.run([sys.executable, "-c", _PREDICT, str(model), *images],
                           env={**env, "KERAS_BACKEND": backend},
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-3000:]
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out["backend"] == backend
        want = np.asarray(out["want"])
        for row, top in zip(want, out["got"]):  # each class shown with Keras' probability, the top 3 of them
            np.testing.assert_allclose([p for _, p in top], [row[int(c)] for c, _ in top], rtol=1e-4,
                                       atol=1e-6)
            np.testing.assert_allclose([p for _, p in top], np.sort(row)[::-1][:3], rtol=1e-4, atol=1e-6)


def test_jax_cache_only_in_a_private_folder(tmp_path, monkeypatch):
    """On JAX the CLI points JAX's persistent compilation cache at the private incdsl cache folder
    (mode 0700, the user's own); a folder others can write gets no cache (a planted compiled
    program would run); a JAX_COMPILATION_CACHE_DIR already set is kept; other backends get none."""
    from incdsl.cli.commands.predict import use_jax_cache

    monkeypatch.delitem(sys.modules, "jax", raising=False)  # as before Keras imports it
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    use_jax_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "home" / "incdsl" / "jax")
    assert (tmp_path / "home" / "incdsl").stat().st_mode & 0o077 == 0

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    shared = tmp_path / "shared"
    (shared / "incdsl").mkdir(parents=True)
    (shared / "incdsl").chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    use_jax_cache()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ

    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/somewhere/else")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    use_jax_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/somewhere/else"

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    use_jax_cache()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
