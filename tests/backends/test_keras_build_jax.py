"""build_model on JAX builds in a StatelessScope when the weights are set at once (a seed, a weights
dict) or by the caller (`placeholder`): the model must hold exactly those weights, the variables it
does not set (a dropout's seed state) their own initial values, and the file `compile --to keras`
writes must be the one the eager build wrote (backends/keras/build.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SPEC = """network small(classes=10) {
  defaults conv(bias=false, bn=true, act=relu)
  input(32, 32, 3)
  stem = conv(16, 3, stride=2)
  block = concat {
    conv(8, 1)
    maxpool(3, stride=1, pad=1)
  }
  output fc = gap -> dropout(0.5) -> dense(classes)
}
"""

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    import incdsl
    from incdsl.backends.keras.build import build_model
    from incdsl.weights.arrays import init_weights
    from incdsl.backends.keras.weights import from_keras

    assert keras.backend.backend() == "jax", keras.backend.backend()
    net = incdsl.load(sys.argv[1])
    model = build_model(net, seed=3)
    want, got = init_weights(net, 3), from_keras(model, net)
    assert sorted(want) == sorted(got), (sorted(want), sorted(got))
    for name in want:
        for key in want[name]:
            np.testing.assert_array_equal(np.asarray(got[name][key]), np.asarray(want[name][key]),
                                          err_msg=name)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    before = np.asarray(model(x))  # training calls below move the batch norms' moving statistics
    # the dropout's seed state was initialized by its own initializer: two training calls differ
    a, b = (np.asarray(model(x, training=True)) for _ in range(2))
    assert not np.allclose(a, b), "dropout drew the same mask twice"
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))
    placeholder = build_model(net, inference=True, placeholder=True)
    assert all(not np.asarray(w).any() for w in placeholder.weights)
    placeholder.set_weights(build_model(net, inference=True, seed=3).get_weights())
    np.testing.assert_allclose(np.asarray(placeholder(x)), before, rtol=1e-6)
    print("ok")
""")


def _jax(*argv, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)


@pytest.mark.slow
def test_a_seeded_build_on_jax_holds_the_seeded_weights_and_its_own_seed_state(tmp_path):
    (tmp_path / "small.inc").write_text(SPEC)
    done = _jax("-c", SCRIPT, "small.inc", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr[-3000:]


@pytest.mark.slow
def test_compile_to_keras_on_jax_writes_the_same_bytes_as_on_tensorflow(tmp_path):
    """The same spec and seed give the same file on every backend (keras_file's byte reproducibility),
    so the JAX build's weights are exactly the seeded ones."""
    (tmp_path / "small.inc").write_text(SPEC)
    jax = _jax("-m", "incdsl", "compile", "small.inc", "--to", "keras", "-o", "jax.keras", cwd=tmp_path)
    assert jax.returncode == 0, jax.stderr[-3000:]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    tf = subprocess.run([sys.executable, "-m", "incdsl", "compile", "small.inc", "--to", "keras", "-o",
                         "tf.keras"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert tf.returncode == 0, tf.stderr[-3000:]
    assert (tmp_path / "jax.keras").read_bytes() == (tmp_path / "tf.keras").read_bytes()
