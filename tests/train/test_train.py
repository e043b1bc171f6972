"""`incdsl train`, `incdsl predict` and tools/bench_train.py.

The training tests use a tiny network built from GoogLeNet's own inception module (two modules at
32x32, an auxiliary head on the first), on a generated folder of mostly-red, mostly-green and
mostly-blue images: it must classify freshly generated images, resume after an interruption with
its optimizer state, and run under tf.distribute's MirroredStrategy on two logical CPUs and
MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1 (checked against one process).
The bad-input tests need no Keras: the data is checked before it loads.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from incdsl import load
from incdsl.train import TrainConfig, head_losses

# Keras' own saving code trips a NumPy 2 deprecation inside TensorFlow: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
CLASSES = ["blue", "green", "red"]

def colour_folder(root: Path, per_class: int, seed: int, classes=CLASSES) -> Path:
    """PNG images of varying size, each mostly one colour (its class) under noise."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for name in classes:
        channel = {"red": 0, "green": 1, "blue": 2}[name]
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = rng.integers(24, 48, size=2)
            img = rng.integers(0, 90, size=(h, w, 3))
            img[..., channel] += rng.integers(100, 166)
            Image.fromarray(img.clip(0, 255).astype("uint8")).save(root / name / f"{i}.png")
    return root


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --- what the losses read from the IR (front end only) ----------------------------------------

def test_losses_follow_the_heads():
    # The paper's GoogLeNet: every head ends in softmax (probabilities), aux heads weighted 0.3.
    paper = head_losses(load(SPECS / "googlenet.inc", width=0.25, classes=3))
    assert [(h.name, h.from_logits, h.weight, h.train_only) for h in paper] == [
        ("predictions", False, 1.0, False), ("aux1", False, 0.3, True), ("aux2", False, 0.3, True)]
    # torchvision's: logits everywhere; --aux-weight overrides the training-only heads only.
    tv = head_losses(load(SPECS / "googlenet_tv.inc", width=0.25, classes=3), aux_weight=0.5)
    assert [(h.name, h.from_logits, h.weight) for h in tv] == [("fc", True, 1.0), ("aux1", True, 0.5),
                                                                ("aux2", True, 0.5)]
    assert {h.units for h in tv} == {3}


def test_a_head_ending_in_sigmoid_is_refused(spec_file, cli, tmp_path):
    p = spec_file("network n(classes=3) {\n  input 16x16x3\n  conv(8, 3) -> gap\n"
                  "  output out = dense(classes, act=sigmoid)\n}\n")
    code, _, err = cli("train", p, "--data", "synthetic", "-o", tmp_path / "m.keras")
    assert code == 1 and "ends in sigmoid" in err and ":4:" in err and "Traceback" not in err


# --- bad input: clean errors, exit 1, nothing written (no Keras needed) -------------------------

def _bad_data(tmp_path: Path, case: str) -> tuple[Path | str, str]:
    data = tmp_path / "data"
    if case == "missing folder":
        return tmp_path / "nowhere", "no such data folder"
    colour_folder(data, 2, 0)
    if case == "empty class folder":
        (data / "yellow").mkdir()
        return data, "has no images"
    if case == "not an image":
        (data / "red" / "broken.jpg").write_bytes(b"this is not a JPEG\n" * 10)
        return data, "broken.jpg is not a readable image"
    if case == "one class":
        for name in ("green", "blue"):
            for f in (data / name).iterdir():
                f.unlink()
            (data / name).rmdir()
        return data, "at least two"
    if case == "a file":
        return data / "red" / "0.png", "is a file"
    raise AssertionError(case)


@pytest.mark.parametrize("case",
                         ["missing folder", "empty class folder", "not an image", "one class", "a file"])
def test_bad_data_is_a_clean_error(tiny_inception_spec, tmp_path, cli, case):
    data, message = _bad_data(tmp_path, case)
    out = tmp_path / "m.keras"
    code, _, err = cli("train", tiny_inception_spec, "--data", data, "-o", out)
    assert code == 1, err
    assert message in err and err.startswith("error:") and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "m.log.csv").exists()


def test_classes_must_match_the_spec(tiny_inception_spec, tmp_path, cli):
    data = colour_folder(tmp_path / "data", 2, 0)
    code, _, err = cli("train", tiny_inception_spec, "--set", "classes=5", "--data", data, "-o",
                       tmp_path / "m.keras")
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith(
        f"{tiny_inception_spec}:") and "scores 5 classes" in first and "has 3 (blue, green, red)" in first
    assert "^" in err and "hint: --set classes=3" in err
    assert not (tmp_path / "m.keras").exists()


def test_bad_options_are_usage_errors(tiny_inception_spec, tmp_path, cli):
    code, _, err = cli("train", tiny_inception_spec, "--data", "synthetic", "-o", tmp_path / "m.h5")
    assert code == 2 and "must end in .keras" in err
    code, _, err = cli("train", tiny_inception_spec, "--data", "synthetic", "-o", tmp_path / "m.keras",
                       "--epochs", "0")
    assert code == 2 and "--epochs" in err


def test_predict_missing_files_are_clean_errors(tmp_path, cli):
    img = colour_folder(tmp_path / "d", 1, 0) / "red" / "0.png"
    code, _, err = cli("predict", tmp_path / "none.keras", img)
    assert code == 1 and "no such model file" in err
    not_a_model = tmp_path / "fake.keras"
    not_a_model.write_text("hello")
    code, _, err = cli("predict", not_a_model, img)
    assert code == 1 and "is not a Keras model" in err
    import zipfile
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as z:
        z.writestr("config.json", "{}")
    code, _, err = cli("predict", tmp_path / "empty.keras", tmp_path / "none.png")
    assert code == 1 and "no such image" in err and "Traceback" not in err


# --- training -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_learns_colours_and_predicts_fresh_images(tiny_inception_spec, tmp_path, capsys, cli):
    data = colour_folder(tmp_path / "data", 30, seed=0)
    out = tmp_path / "run" / "colours.keras"
    t0 = time.perf_counter()
    code, stdout, err = cli("train", tiny_inception_spec, "--data", data, "-o", out, "--epochs", 3,
                            "--batch-size", 16,
                                "--optimizer", "adam", "--lr", "0.01", "--progress", "off")
    seconds = time.perf_counter() - t0
    assert code == 0, err
    assert "training tiny" in stdout and f"wrote {out}" in stdout

    fresh = colour_folder(tmp_path / "fresh", 10, seed=12345)
    images = sorted(fresh.rglob("*.png"))
    code, stdout, err = cli("predict", out, *images, "--top", 3, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    right = sum(result[str(p)][0]["class"] == p.parent.name for p in images)
    accuracy = right / len(images)
    with capsys.disabled():
        print(f"\ntiny colour net: {accuracy:.1%} on {len(images)} fresh images after {seconds:.1f}s of "
              "training")
    assert accuracy >= 0.9
    top = result[str(images[0])]
    assert sorted(t["class"] for t in top) == CLASSES
    assert abs(sum(t["probability"] for t in top) - 1) < 1e-4  # the logits head went through softmax

    # The text form: one block per image, the most likely class first.
    code, stdout, _ = cli("predict", out, images[0], images[-1], "--top", 1)
    blocks = stdout.strip().split("\n\n")
    assert code == 0 and len(blocks) == 2 and blocks[0].splitlines()[0] == str(images[0])

    # The saved model: inference only, raw pixels in, class names inside; best epoch and logs beside it.
    import keras

    from incdsl.train.saving import read_meta
    model = keras.saving.load_model(out, compile=False)
    assert model.output_names == ["fc"] and tuple(model.input_shape) == (None, 32, 32, 3)
    meta = read_meta(out)
    assert meta["classes"] == CLASSES and meta["logits"] is True and meta["epoch"] == 3
    # the spec's text is recorded, so `predict` above ran without Keras (train/predict_light.py)
    from incdsl.analysis.rebuild import KEY, rebuild
    from incdsl.train.predict_light import scores
    assert rebuild(meta[KEY]) is not None and scores(out, images=[str(images[0])]) is not None
    assert read_meta(tmp_path / "run" / "colours.best.keras")["classes"] == CLASSES
    rows = read_csv(tmp_path / "run" / "colours.log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1,
                                               2] and "val_fc_accuracy" in rows[0] and "aux_loss" in rows[0]
    assert list((tmp_path / "run" / "colours.tb").rglob("events.out.tfevents.*"))
    assert not (tmp_path / "run" / "colours.backup").exists()

    # The trained model is a weights file for `compile`: the network sits inside the wrapper that
    # adds the preprocessing, and its weights come out unchanged.
    from incdsl.backends.keras.weights import from_keras
    compiled = tmp_path / "again.keras"
    code, _, err = cli("compile", tiny_inception_spec, "--to", "keras", "--inference", "--weights", out, "-o",
                       compiled)
    assert code == 0, err
    net = load(tiny_inception_spec)
    want, got = from_keras(model, net), from_keras(keras.saving.load_model(compiled, compile=False), net)
    assert want and set(want) == set(got)
    assert all(np.array_equal(want[n][k], got[n][k]) for n in want for k in want[n])

    # A corrupt image or model file is a clean error too.
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    code, _, err = cli("predict", out, bad)
    assert code == 1 and "not a readable image" in err and "Traceback" not in err
    broken = tmp_path / "broken.keras"
    broken.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    code, _, err = cli("predict", broken, images[0])
    assert code == 1 and "broken.keras" in err and "Traceback" not in err
    import zipfile
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as z:
        z.writestr("config.json", "{}")
    code, _, err = cli("predict", tmp_path / "empty.keras", images[0])  # a zip, but not a model
    assert code == 1 and "cannot load the model" in err and "Traceback" not in err


class _Interrupt:
    """A Keras callback that fails as epoch `epoch` begins, as a crash or preemption would."""

    def __new__(cls, epoch: int):
        import keras

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_begin(self, e, logs=None):
                if e == epoch:
                    raise RuntimeError("interrupted for the test")
        return Interrupt()


@pytest.mark.slow
def test_resume_continues_after_an_interruption(tiny_inception_spec, tmp_path, capsys, cli):
    # Inception v3's recipe (RMSProp, its learning-rate decay, label smoothing) in bfloat16, with the
    # auxiliary head's weight overridden: the other training paths, exercised on the way.
    from incdsl.train import train
    out = tmp_path / "r.keras"
    net = load(tiny_inception_spec)
    recipe = dict(optimizer="rmsprop", label_smoothing=0.1, aux_weight=0.5, precision="mixed_bfloat16")
    common = ["--data", "synthetic", "-o", out, "--epochs", 3, "--steps-per-epoch", 3, "--batch-size", 4,
              "--progress", "off",
              "--no-tensorboard"] + [f"--{k.replace('_', '-')}={v}" for k, v in recipe.items()]
    config = TrainConfig(output=out, epochs=3, steps_per_epoch=3, batch_size=4, progress="off",
                         tensorboard=False,
                         callbacks=[_Interrupt(1)], **recipe)
    with pytest.raises(RuntimeError, match="interrupted for the test"):
        train(net, config)
    capsys.readouterr()
    assert not out.exists() and (tmp_path / "r.backup").is_dir()
    assert [r["epoch"] for r in read_csv(tmp_path / "r.log.csv")] == ["0"]

    # Without --resume the unfinished run is not silently thrown away.
    code, _, err = cli("train", tiny_inception_spec, *common)
    assert code == 2 and "--resume" in err

    code, stdout, err = cli("train", tiny_inception_spec, *common, "--resume")
    assert code == 0, err
    assert "resuming after epoch 1 of 3" in stdout and "rmsprop lr 0.045, mixed_bfloat16" in stdout
    rows = read_csv(tmp_path / "r.log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    # The optimizer's step count carried on (its state came back with the weights), and with it the
    # paper's schedule: x0.94 every two epochs (here 6 steps).
    assert [int(r["step"]) for r in rows] == [3, 6, 9]
    assert [round(float(r["lr"]), 5) for r in rows] == [0.045, round(0.045 * 0.94, 5), round(0.045 * 0.94, 5)]
    assert out.exists() and not (tmp_path / "r.backup").exists()

    # Resuming a finished run does nothing.
    code, stdout, _ = cli("train", tiny_inception_spec, *common, "--resume")
    assert code == 0 and "nothing to resume" in stdout


@pytest.mark.slow
def test_an_image_that_does_not_decode_is_named(tiny_inception_spec, tmp_path, cli):
    data = colour_folder(tmp_path / "data", 4, seed=2)
    png = data / "green" / "1.png"
    png.write_bytes(png.read_bytes()[:-200])  # the header still reads; the pixels do not
    out = tmp_path / "m.keras"
    code, _, err = cli("train", tiny_inception_spec, "--data", data, "-o", out, "--epochs", 1, "--progress",
                       "off",
                           "--batch-size", 4)
    assert code == 1 and f"{png} is a damaged image" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "m.log.csv").exists()


MIRRORED = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from incdsl.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tiny_inception_spec, tmp_path):
    data = colour_folder(tmp_path / "data", 6, seed=1)
    out = tmp_path / "m.keras"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-c", MIRRORED, "train", str(tiny_inception_spec), "--data",
                        str(data), "-o", str(out),
                        "--strategy", "mirrored", "--epochs", "2", "--batch-size", "4", "--val-split", "0.34",
                        "--progress", "off", "--no-tensorboard"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "MirroredStrategy, 2 replicas" in r.stdout
    rows = read_csv(tmp_path / "m.log.csv")
    assert len(rows) == 2 and all(np.isfinite(float(row["loss"])) for row in rows)
    assert out.exists() and (tmp_path / "m.best.keras").exists()


def free_ports(n: int) -> list[int]:
    """Ports free on the loopback interface now (all bound at once, so they differ)."""
    import socket
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_multiworker_strategy_from_tf_config(tiny_inception_spec, tmp_path):
    port, = free_ports(1)
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(tf_config)}
    out = tmp_path / "w.keras"
    r = subprocess.run([sys.executable, "-m", "incdsl", "train", str(tiny_inception_spec), "--data",
                        "synthetic", "-o", str(out),
                        "--strategy", "multiworker", "--epochs", "1", "--steps-per-epoch", "2",
                        "--batch-size", "4",
                        "--progress", "off", "--no-tensorboard"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "CollectiveAllReduceStrategy, 1 replica" in r.stdout and out.exists()


# One worker of a cluster (or, with strategy "default", one process on its own): trains the spec on
# synthetic data through the Python API, and saves the weights it ends with for the test to compare.
WORKER = """
import json, sys
from pathlib import Path
import numpy as np
import keras
from incdsl import load
from incdsl.train import TrainConfig, train

spec, out, weights, strategy = sys.argv[1:5]

class SaveWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        np.savez(weights.replace(".npz", ".initial.npz"), *self.model.get_weights())

    def on_train_end(self, logs=None):
        np.savez(weights, *self.model.get_weights())

# bn_recalibrate off: per-epoch precise BN runs on one device only; compare like with like
config = TrainConfig(output=Path(out), strategy=strategy, epochs=2, steps_per_epoch=3, batch_size=4,
                     val_split=0.5, progress="off", tensorboard=False, callbacks=[SaveWeights()],
                     bn_recalibrate="off")
result = train(load(spec), config)
print("history:", json.dumps(result.history))
"""


def _history(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("history:")).split(":",
                                                                                                      1)[1])


@pytest.mark.slow
def test_two_workers_train_in_lockstep(tiny_inception_spec, tmp_path):
    # Two worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy, and for reference one
    # process training alone on the same synthetic batches (global batch 4: 2 images per worker).
    # Averaging the gradients over the workers is the same computation, so all three must end with
    # the same weights, and the logged metrics must be the means over both workers' images.
    ports = free_ports(2)
    run = tmp_path / "run"
    out, weights = run / "m.keras", tmp_path / "weights"
    weights.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                     "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tiny_inception_spec), str(out),
             str(weights / f"worker{i}.npz"), "multiworker"],
            env={**env, "TF_CONFIG": json.dumps(tf_config)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    procs.append(subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tiny_inception_spec), str(tmp_path / "alone" / "m.keras"),
         str(weights / "alone.npz"),
         "default"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for p in procs:  # a worker whose peer died waits for it: the timeout ends that
            results.append(p.communicate(timeout=120))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-3000:]
    (chief, _), (other, _), (alone, _) = results
    assert "CollectiveAllReduceStrategy, 2 replicas on 2 workers (this one worker 0)" in chief
    assert "(this one worker 1)" in other and "worker 1 done: the chief writes the outputs" in other

    # Lockstep: the same steps, and the same logs, reduced over both workers.
    h0, h1, ref = _history(chief), _history(other), _history(alone)
    assert h0 == h1
    assert h0["step"] == [3, 6] and set(h0) == set(ref) and "val_fc_accuracy" in h0
    for key in ref:
        np.testing.assert_allclose(h0[key], ref[key], rtol=1e-5, err_msg=key)

    w0, w1, w = (np.load(weights / f"{n}.npz") for n in ("worker0", "worker1", "alone"))
    assert len(w0.files) == len(w.files) > 20
    for k in w0.files:
        assert np.array_equal(w0[k], w1[k]), k
        np.testing.assert_allclose(w0[k], w[k], atol=1e-5, err_msg=k)
    # Both workers started from the same weights, and training moved them: the check above is not vacuous.
    i0, i1 = np.load(weights / "worker0.initial.npz"), np.load(weights / "worker1.initial.npz")
    assert all(np.array_equal(i0[k], i1[k]) for k in i0.files)
    assert max(np.abs(w0[k] - i0[k]).max() for k in w0.files) > 1e-3

    # Only the chief wrote (the other worker writes nothing).
    assert sorted(p.name for p in run.iterdir()) == ["m.best.keras", "m.keras", "m.log.csv"]
    rows = read_csv(run / "m.log.csv")
    assert [int(r["step"]) for r in rows] == [3, 6]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], ref["loss"], rtol=1e-5)
    from incdsl.train.saving import read_meta
    assert read_meta(out)["epoch"] == 2


@pytest.mark.parametrize("tf_config, message", [
    ("{not json", "TF_CONFIG (the cluster for --strategy multiworker) is not JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "has no 'cluster' object"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "has no 'task' object"),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 2}}',
     "task index 2 is out of range: cluster 'worker' has 2 addresses (index 0 to 1)"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}}',
     "task type 'chief' has no entry in 'cluster'"),
    ('{"cluster": {"worker": "127.0.0.1:1"}, "task": {"type": "worker", "index": 0}}',
     'must be a list of "host:port" addresses'),
])
def test_a_bad_tf_config_is_a_usage_error(tiny_inception_spec, tmp_path, cli, monkeypatch, tf_config,
                                          message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    out = tmp_path / "m.keras"
    code, _, err = cli("train", tiny_inception_spec, "--data", "synthetic", "-o", out, "--strategy",
                       "multiworker")
    assert code == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [tiny_inception_spec]


@pytest.mark.slow
def test_bench_train_runs_tiny(capsys):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import bench_train
    finally:
        sys.path.remove(str(ROOT / "tools"))
    assert bench_train.main(["--size", "75", "--classes", "4", "--batch-size", "2", "--steps", "1",
                             "--warmup", "1", "--eager"]) == 0
    out = capsys.readouterr().out
    assert "keras.applications.InceptionV3" in out
    ours = next(line for line in out.splitlines() if line.startswith("incdsl inception_v3"))
    theirs = next(line for line in out.splitlines() if line.startswith("keras InceptionV3"))
    # Same architecture, so the same parameter count; both trained on both paths (positive speeds:
    # ceiling, path, path / ceiling), and the ratio lines are there.
    assert ours.split()[2] == theirs.split()[2]
    for line in (ours, theirs):
        ceiling, path, share = map(float, line.split()[-3:])
        # the rates are printed to 0.1, the share to 0.001
        assert ceiling > 0 and path > 0 and abs(share * ceiling - path) <= 0.05 * (1 + share) + 1e-9
    assert "ratio (incdsl / keras), ceiling" in out and float(out.splitlines()[-1].split()[-1]) > 0
