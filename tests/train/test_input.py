"""The input path of `incdsl train` (issue 11): uint8 batches, the Pillow folder reader that runs on
JAX and PyTorch, the tf.data reader on TensorFlow, both following one FolderPlan, data parallelism
on JAX (keras.distribution.DataParallel), and tools/bench_train.py's ceiling and reader modes.

The JAX and PyTorch runs are subprocesses (one each: a Keras backend is chosen once per process);
the rest runs in this process on TensorFlow.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from incdsl.cli.main import main
from incdsl.train import TrainConfig, scan_image_folder
from incdsl.train.images import plan_folder, read_image

from nets import TINY_BN, TINY_INCEPTION
from test_train import colour_folder

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path) -> Path:
    """18 PNGs of 24-48 px (resized up to the input) and one 70x50 JPEG (resized down)."""
    from PIL import Image
    data = colour_folder(tmp_path / "data", 6, seed=3)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(data / "red" / "x.jpg",
                                                                            quality=90)
    return data


def test_plan_split_order_and_resume_point(folder):
    classes, files = scan_image_folder(folder)
    plan = plan_folder(folder, classes, files, 4, 0.25, seed=7)
    n = len(plan.paths)
    assert classes == ["blue", "green", "red"] and n == 19
    # Validation: int(n * split) images, disjoint from training, together all of them.
    assert len(plan.val) == int(n * 0.25) and sorted(np.concatenate([plan.train, plan.val])) == list(range(n))
    assert plan.steps == len(plan.train) // 4 == 3
    # Labels are the class folder's index in sorted order.
    assert all(classes[plan.labels[i]] == Path(plan.paths[i]).parent.name for i in range(n))
    # Each epoch: a fresh permutation of full batches, fixed by (seed, epoch) alone.
    e0, e1 = plan.epoch(0), plan.epoch(1)
    assert len(set(e0[0])) == 12 and set(e0[0]) <= set(plan.train) and list(e0[0]) != list(e1[0])
    again = plan_folder(folder, classes, files, 4, 0.25, seed=7)
    assert all((a == b).all() for a, b in zip(again.epoch(1), e1))
    assert list(plan_folder(folder, classes, files, 4, 0.25, seed=8).val) != list(plan.val)
    # Batch k of the stream is batch k % steps of epoch k // steps: where a resumed run starts.
    idx, flips = plan.train_batch(plan.steps * 1 + 2)
    assert (idx == e1[0][8:12]).all() and (flips == e1[1][8:12]).all()
    assert not plan_folder(folder, classes, files, 4, 0.25, seed=7, augment=False).epoch(0)[1].any()


@pytest.mark.slow
def test_pillow_and_tf_data_readers_see_the_same_images(folder):
    # The JAX/PyTorch reader (Pillow in PyDataset threads) against the TensorFlow one (tf.data): same
    # images, labels and flips in the same order for two epochs, and the same validation set; pixels
    # uint8 on both, equal to within the decoders' and resamplers' rounding.
    from incdsl.train.data import folder_data
    classes, files = scan_image_folder(folder)
    plan = plan_folder(folder, classes, files, 4, 0.34, seed=7)  # 6 validation images: batches of 4 and 2
    shape = (32, 32, 3)
    tf_train, tf_val, _ = folder_data(plan, shape, None, 0, 1, 2, "tf.data")
    pil_train, pil_val, _ = folder_data(plan, shape, None, 0, 1, 2, "pillow")
    stream = iter(tf_train)
    diffs = []
    for k in range(2 * plan.steps):
        (xa, ya), (xb, yb) = next(stream), pil_train[k]
        xa = xa.numpy()
        assert xa.dtype == xb.dtype == np.uint8 and xa.shape == xb.shape == (4, *shape)
        assert (ya.numpy() == yb).all() and (yb == plan.labels[plan.train_batch(k)[0]]).all()
        diffs.append(np.abs(xa.astype(int) - xb.astype(int)))
        # Unrelated images differ by far more than rounding: the comparison can fail.
        assert np.abs(xa.astype(int) - np.roll(xb, 1, axis=0).astype(int)).mean() > 20
    assert max(d.max() for d in diffs) <= 6 and np.mean([d.mean() for d in diffs]) < 1.0
    va = [(x.numpy(), y.numpy()) for x, y in tf_val]
    vb = [pil_val[i] for i in range(len(pil_val))]
    assert len(va) == len(vb) == 2 and all((a[1] == b[1]).all() for a, b in zip(va, vb))
    assert all(np.abs(a[0].astype(int) - b[0].astype(int)).max() <= 6 for a, b in zip(va, vb))
    # A flip is the mirror image (the plan's flips, applied by both readers).
    idx, flips = plan.train_batch(0)
    i = int(np.argmax(flips)) if flips.any() else None
    if i is not None:
        assert (pil_train[0][0][i] == read_image(plan.paths[idx[i]], (32, 32), 3)[:, ::-1]).all()


def test_pillow_reader_errors_name_the_file_or_the_vanished_folder(folder, tmp_path):
    from incdsl.errors import DataError
    from incdsl.train.data import FolderBatches
    classes, files = scan_image_folder(folder)
    plan = plan_folder(folder, classes, files, 4, 0.0, seed=0)
    reader = FolderBatches(plan, (32, 32, 3), None)
    broken = Path(plan.paths[plan.train_batch(0)[0][0]])
    broken.write_bytes(broken.read_bytes()[:-200])
    with pytest.raises(DataError, match=f"{broken} is a damaged image"):
        reader[0]
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    with pytest.raises(DataError, match=f"the data folder {folder} vanished during training"):
        reader[1]


@pytest.mark.slow
def test_a_folder_that_vanishes_mid_run_is_a_clean_error(folder, tmp_path, capsys):
    # tf.data path (this process's backend): the folder goes away after the first epoch.
    import keras

    from incdsl import load
    from incdsl.train import train

    class Vanish(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                folder.rename(tmp_path / "gone")

    spec = tmp_path / "tiny.inc"
    spec.write_text(TINY_INCEPTION)
    out = tmp_path / "v.keras"
    from incdsl.errors import DataError
    with pytest.raises(DataError, match=f"the data folder {folder} vanished during training"):
        train(load(spec), TrainConfig(output=out, data=str(folder), epochs=3, batch_size=4, val_split=0.0,
                                      progress="off", tensorboard=False, callbacks=[Vanish()]))
    # The finished epochs are kept (tf.data may have read ahead into the next one): put the folder back
    # and --resume continues from the last of them to the end.
    assert (tmp_path / "v.backup").is_dir() and not out.exists()
    capsys.readouterr()
    (tmp_path / "gone").rename(folder)
    code = main(["train", str(spec), "--data", str(folder), "-o", str(out), "--epochs", "3", "--batch-size",
                 "4",
                 "--val-split", "0", "--progress", "off", "--no-tensorboard", "--resume"])
    text = capsys.readouterr().out
    assert code == 0 and "resuming after epoch" in text and out.exists()
    with open(tmp_path / "v.log.csv") as f:
        assert [line.split(",")[0] for line in f.read().split()[1:]] == ["0", "1", "2"]


def test_bad_workers_and_strategies_are_usage_errors(tmp_path, capsys):
    from incdsl.errors import UsageError
    from incdsl.train.placement import check_strategy
    spec = tmp_path / "tiny.inc"
    spec.write_text(TINY_INCEPTION)
    cores = os.cpu_count()
    code = main(["train", str(spec), "--data", "synthetic", "-o", str(tmp_path / "m.keras"),
                 "--workers", str(cores + 1)])
    err = capsys.readouterr().err
    assert (
        code == 2 and f"--workers {cores + 1} is more than the {cores} core" in err and "Traceback" not in err
    )
    for kind, backend, able in (("multiworker", "torch", "tensorflow or jax"),
                                ("mirrored", "torch", "tensorflow or jax")):
        with pytest.raises(UsageError, match=f"^strategy {kind} is not available on the {backend} backend.*"
                                             f"runs on {able}"):
            check_strategy(kind, backend)
    check_strategy("mirrored", "jax")
    check_strategy("multiworker", "jax")


def test_steps_per_execution_divides_the_epoch():
    from incdsl.train.data import steps_per_execution
    assert steps_per_execution(None, 100, "jax", False) == 5
    assert steps_per_execution(None, 64, "tensorflow", False) == 8
    assert steps_per_execution(4, 6, "jax", False) == 3
    assert steps_per_execution(None, 64, "torch", False) == 1
    assert steps_per_execution(None, 64, "tensorflow", True) == 1


# One JAX process with two CPU devices: the same run on one device and under --strategy mirrored
# (keras.distribution.DataParallel) on the Pillow reader; a run interrupted by Ctrl-C and resumed;
# then the saved model on raw pixels.
JAX_RUN = r"""
import json, sys
from pathlib import Path
import numpy as np
from incdsl import load
from incdsl.cli.main import main
from incdsl.train import TrainConfig, train
spec, data, out = sys.argv[1:4]
net = load(spec)
runs = {}
for strategy in ("default", "mirrored"):
    cfg = TrainConfig(output=Path(out) / f"{strategy}.keras", data=data, epochs=2, batch_size=4,
                      val_split=0.0, strategy=strategy, progress="off", tensorboard=False, seed=3, workers=2)
    r = train(net, cfg)
    runs[strategy] = {"loss": r.history["loss"], "replicas": r.replicas}
import dataclasses
import keras

class CtrlC(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt
cfg = TrainConfig(output=Path(out) / "r.keras", data=data, epochs=2, batch_size=4, val_split=0.0,
                  progress="off", tensorboard=False, seed=3, workers=2, callbacks=[CtrlC()])
try:
    train(net, cfg)
except KeyboardInterrupt:
    runs["interrupted"] = True
runs["resumed"] = train(net, dataclasses.replace(cfg, callbacks=[], resume=True)).history["loss"]
model = keras.saving.load_model(Path(out) / "mirrored.keras")
x = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
runs["raw"] = [np.asarray(model.predict(x, verbose=0)).tolist(),
               np.asarray(model.predict(x.astype("float32"), verbose=0)).tolist(),
               np.asarray(model.predict(x.astype("float32") / 127.5 - 1, verbose=0)).tolist()]
runs["devices"] = len(keras.distribution.list_devices())
runs["bad_strategy"] = main(["train", spec, "--data", "synthetic", "-o", str(Path(out) / "x.keras"),
                             "--strategy", "multiworker"])
print("RESULT " + json.dumps(runs))
"""


def _subprocess(code: str, backend: str, *args, devices: int = 1) -> tuple[dict, str]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), r.stdout + r.stderr


@pytest.mark.slow
def test_jax_data_parallel_matches_one_device(folder, tmp_path):
    spec = tmp_path / "tiny.inc"
    spec.write_text(TINY_INCEPTION.replace("aux=true", "aux=false"))
    runs, text = _subprocess(JAX_RUN, "jax", spec, folder, tmp_path, devices=2)
    assert runs["devices"] == 2 and runs["default"]["replicas"] == 1 and runs["mirrored"]["replicas"] == 2
    assert "DataParallel, 2 replicas" in text and "read by Pillow, 2 threads" in text
    # The same images, weights and mean loss: equal up to float32 summation order.
    one, two = np.array(runs["default"]["loss"]), np.array(runs["mirrored"]["loss"])
    print(f"DataParallel vs one device, losses {one} vs {two}: max relative difference "
          f"{np.max(np.abs(two - one) / np.abs(one)):.2e}")
    assert len(one) == 2 and np.all(np.isfinite(one)) and one[1] != one[0]
    np.testing.assert_allclose(two, one, rtol=1e-4)
    # Ctrl-C after the first epoch, then --resume: the second epoch sees the same images as in the
    # uninterrupted run (the reader's stream starts where that epoch begins), so the same loss.
    assert runs["interrupted"] and len(runs["resumed"]) == 1
    np.testing.assert_allclose(runs["resumed"][0], one[1], rtol=1e-5)
    # The saved model takes raw 0-255 pixels, uint8 or float, and scales them itself.
    raw_u8, raw_f, prescaled = map(np.array, runs["raw"])
    np.testing.assert_allclose(raw_u8, raw_f, atol=1e-6)
    assert np.abs(raw_f - prescaled).max() > 1e-3
    # multiworker on JAX without the job (no flags, no cluster JAX detects): asked for, exit 2
    assert runs["bad_strategy"] == 2 and "--strategy multiworker on JAX needs the job: --coordinator" in text


TORCH_RUN = r"""
import json, sys
from incdsl.cli.main import main
spec, data, out = sys.argv[1:4]
codes = [main(["train", spec, "--data", data, "-o", out, "--epochs", "1", "--batch-size", "4",
               "--val-split", "0.34", "--progress", "off", "--no-tensorboard", "--workers", "2"]),
         main(["train", spec, "--data", data, "-o", out + ".x.keras", "--strategy", "mirrored"])]
print("RESULT " + json.dumps(codes))
"""


@pytest.mark.slow
def test_torch_trains_on_an_image_folder(folder, tmp_path):
    spec = tmp_path / "tiny.inc"
    spec.write_text(TINY_INCEPTION)
    out = tmp_path / "t.keras"
    codes, text = _subprocess(TORCH_RUN, "torch", spec, folder, out)
    assert codes == [0, 2], text[-2000:]
    assert "read by Pillow, 2 threads" in text and "Keras torch" in text and out.exists()
    assert "--strategy mirrored is not available on the torch backend" in text


def _bench():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import bench_train
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return bench_train


def test_bench_reader_mode_runs_tiny(capsys):
    assert _bench().main(["--mode", "reader", "--images", "8", "--jpeg-size", "60x45", "--size", "32",
                          "--batch-size", "4", "--batches", "2", "--workers", "1,2"]) == 0
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines() if ln.strip() and ln.split()[0] in ("1", "2")]
    assert [r[0] for r in rows] == ["1", "2"] and all(float(r[1]) > 0 for r in rows)
    assert float(rows[0][2]) == 1.0


# The same run with one reader thread and with three (os.cpu_count raised so that --workers 3 is
# allowed on any machine): each run's log and every weight of its model.
WORKERS_RUN = r"""
import json, os, sys
from pathlib import Path
import numpy as np
import keras
from incdsl.cli.main import main
spec, data, out = sys.argv[1:4]
os.cpu_count = lambda: 4
runs = {}
for workers in (1, 3):
    model = Path(out) / f"w{workers}" / "m.keras"
    code = main(["train", spec, "--data", data, "-o", str(model), "--batch-size", "8", "--epochs", "2",
                 "--steps-per-epoch", "3", "--val-split", "0.02", "--bn-recalibrate", "2", "--deterministic",
                 "--seed", "5", "--progress", "off", "--no-tensorboard", "--workers", str(workers)])
    rows = (model.parent / "m.log.csv").read_text().splitlines()
    head = rows[0].split(",")
    keep = [i for i, h in enumerate(head) if h != "bn_seconds"]  # a time, not a training number
    runs[workers] = {"code": code, "log": [[r.split(",")[i] for i in keep] for r in rows],
                     "weights": [np.asarray(w).tolist() for w in keras.saving.load_model(model).weights]}
print("RESULT " + json.dumps(runs))
"""


@pytest.mark.slow
def test_reader_threads_do_not_change_the_training(tmp_path):
    # --workers 1 and --workers 3 on JAX, one process, the digits: the same batches in the same steps,
    # so the same log and weights, bit for bit. (Keras' own PyDataset threads took the batch fit
    # reads to build the model out of the stream: with 2+ workers training began one batch later.)
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from digits_folder import write_digits
    finally:
        sys.path.remove(str(ROOT / "tools"))
    train, _ = write_digits(tmp_path / "digits", size=16)
    spec = tmp_path / "tiny.inc"
    spec.write_text(TINY_BN.replace("classes=3", "classes=10"))
    runs, text = _subprocess(WORKERS_RUN, "jax", spec, train, tmp_path)
    one, three = runs["1"], runs["3"]
    assert one["code"] == three["code"] == 0, text[-2000:]
    assert "read by Pillow, 3 threads" in text and "read by Pillow, 1 thread," in text
    assert len(one["log"]) == 3 and one["log"][1] != one["log"][2]  # two epochs, and training moved
    assert three["log"] == one["log"]
    assert len(one["weights"]) == len(three["weights"]) > 4
    for a, b in zip(one["weights"], three["weights"]):
        np.testing.assert_array_equal(np.array(a), np.array(b))
