"""The training-step memory estimate against a measurement on a second backend (issue 18, item 3):
Keras on JAX, CPU, XLA's own account of the compiled training step (tools/measure_jax_memory.py:
`jax.jit(step).lower(...).compile().memory_analysis()`), GoogLeNet without aux heads at 96x96,
batch 8, float32, SGD with momentum. The README states the error; this test holds it there."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import incdsl
from incdsl.passes.memory import training_step

from conftest import ROOT, SPECS

TOLERANCE = (-0.45, 0.0)  # README: the estimate is 38.5% under XLA's figure (XLA keeps more on the CPU)


@pytest.mark.slow
def test_training_step_memory_against_xla_on_jax():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "measure_jax_memory.py"),
                          str(SPECS / "googlenet.inc"),
                          "--set", "size=96", "--set", "aux=false", "--batch", "8"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    xla = data["xla"]
    assert "jax" in data["backend"] and "cpu" in data["backend"]
    # XLA's arguments hold the variables, the momentum slots and the batch: what incdsl counts for them
    net = incdsl.load(SPECS / "googlenet.inc", size=96, aux=False)
    est = training_step(net, 8, "float32", "momentum")
    assert data["estimate"]["total"] == est.total
    x_bytes = 8 * 96 * 96 * 3 * 4 + 8 * 4  # images and int32 labels
    assert abs(xla["arguments"] - (est.params + est.optimizer + x_bytes)) <= 0.01 * xla["arguments"]
    error = est.total / xla["peak"] - 1
    assert TOLERANCE[0] <= error <= TOLERANCE[1], error
