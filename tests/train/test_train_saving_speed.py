"""What made incdsl's training epochs slower than plain Keras fit (issue 31 item 4), kept fixed:
- a cache in Keras 3.15's saving code that never hits (get_attr_skipset reads one key, writes
  another), so every save built a bare Layer per layer it saved: incdsl/train/keras_saving_fix.py;
- the best epoch's .keras written at every improvement: now held in memory and written when the
  run stops (incdsl/train/run/export.py), every way it stops;
- Keras' serializer importing TensorFlow on the JAX and PyTorch backends, which nothing else there
  uses (3 s of CPU and 460 MB per small run): incdsl/backends/keras/without_tf.py; and its
  seeding, under --deterministic (train/determinism.py).
The speed itself is measured by tools/bench_train_vs_keras.py, not here. Quick."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import incdsl

from nets import TINY_BN

TINY = TINY_BN


def _layers_built_while(fn) -> int:
    """How many keras.layers.Layer objects are constructed while `fn()` runs."""
    from keras.src.layers.layer import Layer
    built = []
    original = Layer.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    Layer.__init__ = counting
    try:
        fn()
    finally:
        Layer.__init__ = original
    return len(built)


def test_a_save_builds_no_layer_per_layer_saved_and_round_trips(tmp_path):
    import keras

    from incdsl.backends.keras.build import build_model
    from incdsl.train import keras_saving_fix
    net = incdsl.loads(TINY)
    model = build_model(net, inference=True)
    keras_saving_fix.warm()
    # Keras' own skip set, stored under the key its cache reads.
    from keras.src.backend.common import global_state
    from keras.src.saving import saving_lib
    assert global_state.get_global_attribute(
        "saving_attr_skiplist_Layer") == saving_lib.get_attr_skipset("Layer")
    path = tmp_path / "m.keras"
    built = _layers_built_while(lambda: model.save(path))
    assert built == 0, f"model.save built {built} layers: Keras' skip-set cache missed"
    back = keras.models.load_model(path, compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), back.get_weights()))


def test_the_held_best_epoch_is_written_as_it_was_when_held(tmp_path):
    from incdsl.backends.keras.build import build_model
    from incdsl.train import TrainConfig, head_losses
    from incdsl.train.run.export import make_exporter
    from incdsl.train.saving import read_meta
    net = incdsl.loads(TINY)
    core = build_model(net, inference=False)
    exporter = make_exporter(net, TrainConfig(), core, head_losses(net, None), ["a", "b", "c"], chief=True)
    kernel = core.get_layer(core.layers[-1].name)
    held = [w.copy() for w in kernel.get_weights()]
    exporter.hold(1, {"val_accuracy": 0.75}, best=True)
    kernel.set_weights([w + 1.0 for w in held])  # training goes on after the best epoch
    best = tmp_path / "m.best.keras"
    assert not best.exists()  # held, not written: no save at each improvement
    assert exporter.write_held(best) and not exporter.write_held(best)  # written once, then forgotten
    meta = read_meta(best)
    assert (meta["epoch"], meta["metrics"], meta["classes"]) == (2, {"val_accuracy": 0.75}, ["a", "b", "c"])
    import keras
    saved = keras.models.load_model(best, compile=False)
    got = next(layer for layer in _all(saved) if layer.name == kernel.name).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(got, held))


def _all(model):
    import keras
    for layer in model.layers:
        yield from (_all(layer) if isinstance(layer, keras.Model) else [layer])


BENCH_SPEC = """network tiny(classes=3, width=1.0, size=16) {
  defaults conv(bias=false, bn=true, act=relu)
  input(size, size, 3)
  stem = conv(int(8 * width), 3, stride=2)
  output fc = gap -> dense(classes)
}
"""


@pytest.mark.slow
def test_the_speed_bench_prints_both_ratios_and_the_fixed_cost(tmp_path):
    # tools/bench_train_vs_keras.py end to end on a tiny spec and folder: every side runs, and the
    # summary gives the per-epoch ratio (wall and CPU) with precise BN on and off, and the fixed cost.
    import re
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image
    root = Path(__file__).resolve().parents[2]
    spec = tmp_path / "tiny.inc"
    spec.write_text(BENCH_SPEC)
    rng = np.random.default_rng(0)
    for c in "abc":
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3),
                                         dtype=np.uint8)).save(tmp_path / "data" / c / f"{i}.png")
    done = subprocess.run([sys.executable, str(root / "tools" / "bench_train_vs_keras.py"), "--spec",
                           str(spec),
                           "--set", "size=16", "--data", str(tmp_path / "data"), "--epochs", "2", "--rounds",
                           "1",
                           "--batch-size", "4", "--val-split", "0.25"], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for side in ("incdsl", "incdsl-bn-off", "plain"):
        assert re.search(rf"^round 1 {side}: epoch [\d.]+ s, fixed -?[\d.]+ s, epoch_cpu", out, re.M), out
    ratio = r"per epoch ratio [\d.]+ wall \([\d.]+ s\), [\d.]+ CPU \([\d.]+ s\)"
    assert re.search(rf"^incdsl: {ratio}; precise BN [\d.]+ s of each epoch \(by design\); fixed per run",
                     out, re.M), out
    assert re.search(
        rf"^incdsl-bn-off: {ratio}; fixed per run [-+][\d.]+ s wall, [-+][\d.]+ s CPU beyond plain fit",
                     out, re.M), out


# A model saved through incdsl on JAX (and `incdsl compile --to keras` there): which heavy modules
# the process imported, and the saved weights read back.
SAVE_ON_JAX = r"""
import json, sys
import numpy as np
import incdsl, keras
from incdsl.backends.keras.build import build_model
from incdsl.backends.keras.export import export
from incdsl.train.saving import save_model
net = incdsl.loads(sys.argv[3])
model = build_model(net, inference=True, seed=0)
save_model(model, sys.argv[1], {"classes": ["a", "b", "c"]})
export(net, sys.argv[2], inference=True)
back = keras.saving.load_model(sys.argv[1], compile=False)
same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), back.get_weights()))
print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "backend": keras.backend.backend(),
                  "same": same, "weights": len(back.get_weights())}))
"""


def test_saving_on_jax_imports_no_tensorflow(tmp_path):
    # TensorFlow is installed in the suite's venv: Keras' serializer imported it on every save
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    a, b = tmp_path / "a.keras", tmp_path / "b.keras"
    p = subprocess.run([sys.executable, "-c", SAVE_ON_JAX, a, b, TINY], capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got == {"tensorflow": False, "backend": "jax", "same": True, "weights": got["weights"]}
    assert got["weights"] >= 8 and a.stat().st_size > 0 and b.stat().st_size > 0


def test_the_serializer_sees_tensorflow_once_it_is_imported():
    # on the TensorFlow backend (this process) the view answers as Keras' own lazy module does
    import tensorflow as tf
    from keras.src.saving import serialization_lib

    from incdsl.backends.keras import without_tf
    without_tf.install()
    assert serialization_lib.tf.available
    assert serialization_lib.serialize_keras_object(tf.TensorShape([2, 3])) == [2, 3]
    assert serialization_lib.serialize_keras_object(tf.float16) == "float16"


# --deterministic's seeding on JAX: no TensorFlow imported, and every generator seeded all the same
# (two seedings give the same draws from Python, NumPy and Keras' own generator).
SEED_ON_JAX = r"""
import json, random, sys
import numpy as np
import keras
from incdsl.train.determinism import make_deterministic
draws = []
for _ in range(2):
    done = make_deterministic(7, "jax")
    draws.append([random.random(), float(np.random.rand()),
                  float(keras.ops.convert_to_numpy(keras.random.uniform((1,)))[0])])
print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "same": draws[0] == draws[1], "done": done}))
"""


def test_seeding_on_jax_imports_no_tensorflow_and_seeds_every_generator():
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.run([sys.executable, "-c", SEED_ON_JAX], capture_output=True, text=True, timeout=300,
                       env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["tensorflow"] is False and got["same"] is True
    assert "keras.utils.set_random_seed(7)" in got["done"]
