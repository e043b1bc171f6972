"""`--strategy multiworker` on JAX (issue 30): jax.distributed + keras.distribution.DataParallel,
tested as a cluster on one machine (processes on 127.0.0.1, each with CPU devices of its own), and
the job's bad input (train/jax_link.py, train/jax_meet.py, train/multiworker_jax.py, train/shard.py)."""
from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from incdsl.cli.commands.flags import FLAGS
from incdsl.cli.main import main
from incdsl.errors import OptionError
from incdsl.train.jax_link import Job
from incdsl.train.jax_meet import meet

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "googlenet_tv.inc"
NET = ["--set", "width=0.25", "--set", "size=32", "--set", "classes=10", "--set", "aux=false"]
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- the meeting before jax.distributed (no JAX: threads stand for processes) -------------------

def _meet_all(fingerprints: list[dict], ids: list[int], processes: int, timeout: float = 20.0):
    """meet() for each (fingerprint, id) in a thread of its own; returns each one's Link or error."""
    port = free_port()
    results: dict[int, object] = {}

    def one(n, fp, pid):
        try:
            results[n] = meet(Job(f"127.0.0.1:{port}", processes, pid), fp, timeout)
        except OptionError as e:
            results[n] = e

    threads = [threading.Thread(target=one, args=(n, fp, pid)) for n, (fp,
                                                                       pid) in enumerate(zip(fingerprints,
                                                                                             ids))]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    return [results[n] for n in range(len(threads))]


FP = {"spec": "sha256 1", "arguments": "{}", "epochs": "2", "batch_size": "16"}


def test_processes_that_agree_meet():
    links = _meet_all([FP, FP, FP], [0, 1, 2], 3)
    assert [sorted(link.peers) for link in links] == [[1, 2], [0], [0]]
    for link in links:
        for s in link.peers.values():
            s.close()


def test_a_flag_that_differs_is_refused_on_every_process_naming_it():
    other = {**FP, "epochs": "3"}
    errors = _meet_all([FP, other], [0, 1], 2)
    for e in errors:
        assert isinstance(e, OptionError)
        assert str(
            e).startswith("epochs differs: process 1 has 3, process 0 has 2; every process of the job must")
        assert e.worded(FLAGS).startswith("--epochs differs: process 1 has 3, process 0 has 2")
    spec = _meet_all([FP, {**FP, "spec": "sha256 2"}], [0, 1], 2)
    assert all(
        "the spec's text (with the files it uses) differs: process 1 has sha256 2, process 0 has sha256 1"
               in str(e) for e in spec)


def test_a_repeated_process_id_is_refused():
    errors = _meet_all([FP, FP, FP], [0, 1, 1], 3)
    assert all(isinstance(e, OptionError) for e in errors)
    assert any("process_id 1 was given to two processes" in str(e) for e in errors)
    assert "--process-id 1 was given to two processes" in errors[0].worded(FLAGS)


def test_a_process_that_comes_after_the_job_met_is_told_its_id_is_taken_at_once():
    # Process 0 keeps the coordinator's port while the job runs (JAX's service is elsewhere) and
    # answers a late process at once, rather than leaving it to wait out its timeout.
    port = free_port()
    results = {}

    def one(pid):
        results[pid] = meet(Job(f"127.0.0.1:{port}", 2, pid), FP, 20)

    threads = [threading.Thread(target=one, args=(pid,)) for pid in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    chief = results[0]
    assert chief.jax_address.startswith("127.0.0.1:") and chief.jax_address != f"127.0.0.1:{port}"
    assert results[1].jax_address == chief.jax_address
    door = threading.Thread(target=chief._answer_late, daemon=True)
    door.start()
    try:
        for pid, processes, message in (
                (1, 2, r"^process_id 1 is taken \(the job already has it: processes 0 to 1 met at "
                       r"coordinator 127\.0\.0\.1:\d+ and are training\)"),
                (5, 2, r"^process_id 5 is out of range"),
                (1, 3, r"^num_processes differs: process 1 was given 3, process 0 2")):
            start = time.monotonic()
            with pytest.raises(OptionError, match=message):
                meet(Job(f"127.0.0.1:{port}", processes, pid), FP, 30)
            assert time.monotonic() - start < 5
    finally:
        chief.finished.set()
        chief._close_listener()
        door.join(5)
        for link in results.values():
            for s in link.peers.values():
                s.close()
    assert not door.is_alive()


def test_a_different_process_count_is_refused():
    port = free_port()
    results = {}

    def one(n, job):
        try:
            results[n] = meet(job, FP, 20)
        except OptionError as e:
            results[n] = e

    a = threading.Thread(target=one, args=(0, Job(f"127.0.0.1:{port}", 2, 0)))
    b = threading.Thread(target=one, args=(1, Job(f"127.0.0.1:{port}", 3, 1)))
    a.start(), time.sleep(0.05), b.start(), a.join(60), b.join(60)
    assert all("num_processes differs: process 1 was given 3, process 0 2" in str(results[n]) for n in (0, 1))


def test_a_missing_process_is_named_after_the_wait():
    start = time.monotonic()
    with pytest.raises(OptionError, match=r"^multi-worker training: processes 1, 2 did not join within 1 s "
                                          r"\(worker_timeout\)"):
        meet(Job(f"127.0.0.1:{free_port()}", 3, 0), FP, 1.0)
    assert time.monotonic() - start < 10


def test_an_unreachable_coordinator_is_named_after_the_wait():
    with pytest.raises(OptionError,
                       match=r"^multi-worker training: process 1 could not reach process 0 at coordinator "
                                          r"127\.0\.0\.1:\d+ within 1 s"):
        meet(Job(f"127.0.0.1:{free_port()}", 2, 1), FP, 1.0)


@pytest.mark.parametrize("flags, message", [
    (["--num-processes", "2", "--process-id", "2"],
     "--process-id 2 is out of range: --num-processes 2 numbers the processes 0 to 1"),
    (["--num-processes", "0"], "--num-processes must be at least 1, got 0"),
    (["--process-id", "-1"], "--process-id must be 0 or more, got -1"),
    (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"],
     "--coordinator must be HOST:PORT (process 0's address and a free port), got nohost"),
])
def test_job_settings_out_of_range_are_usage_errors(tmp_path, capsys, flags, message):
    out = tmp_path / "out" / "m.keras"
    code, _, err = run_cli(capsys, "train", SPEC, *NET, "--data", "synthetic", "-o", out, "--strategy",
                           "multiworker",
                           *flags)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags", [
    ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "1"],
    ["--num-processes", "2"],
])
def test_job_settings_without_the_multiworker_strategy_are_usage_errors(tmp_path, capsys, flags):
    # without --strategy multiworker, every process of the intended job would train alone and write
    out = tmp_path / "out" / "m.keras"
    code, _, err = run_cli(capsys, "train", SPEC, *NET, "--data", "synthetic", "-o", out, *flags)
    assert code == 2 and "Traceback" not in err
    assert f"{flags[0]} is a setting of a job of several processes: it needs --strategy multiworker" in err
    assert not (tmp_path / "out").exists()


# --- validation under several replicas: every image once (shard.ShardValBatches) ----------------

def test_validation_batches_under_replicas_count_every_image_once(tmp_path):
    # 13 validation images, batches of 4, two processes: the last batch is one image filled up with
    # repeats of it, weighted 0; Keras' evaluate on the global batches (the processes' parts side by
    # side) gives the loss and accuracy of one device on the 13 images, its last batch partial.
    import keras

    from incdsl.train import TrainConfig, scan_image_folder
    from incdsl.train.config import HeadLoss
    from incdsl.train.data import FolderValBatches
    from incdsl.train.images import plan_folder
    from incdsl.train.model import compile_for_training
    from incdsl.train.shard import Shard, ShardValBatches

    from test_train import colour_folder

    folder = colour_folder(tmp_path / "data", 10, seed=1)
    plan = plan_folder(folder, *scan_image_folder(folder), 4, 0.45, seed=0)
    assert len(plan.val) == 13
    whole = FolderValBatches(plan, (8, 8, 3), None, 4, False)
    parts = [ShardValBatches(whole, Shard(i, 2)) for i in (0, 1)]
    assert len(whole) == len(parts[0]) == 4 and len(whole[3][0]) == 1
    batches = [[np.concatenate(a) for a in zip(*(p[b] for p in parts))] for b in range(4)]
    assert all(len(x) == len(y) == len(w) == 4 for x, y, w in batches)
    real = np.concatenate([idx[w > 0] for idx, w in zip(parts[0].batches, parts[0].weights)])
    assert list(real) == list(plan.val)
    np.testing.assert_array_equal(batches[3][2], np.float32([16 / 13, 0, 0, 0]))
    assert (batches[3][0] == batches[3][0][0]).all()  # the repeats are the batch's own image

    class Global(keras.utils.PyDataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, i):
            return tuple(batches[i])

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    compile_for_training(model, [HeadLoss("fc", 3, True, 1.0, False)], TrainConfig(), 4)
    one = model.evaluate(whole, verbose=0, return_dict=True)
    job = model.evaluate(Global(), verbose=0, return_dict=True)
    assert 0 < one["accuracy"] < 1
    np.testing.assert_allclose(job["loss"], one["loss"], rtol=1e-6)
    np.testing.assert_allclose(job["accuracy"], one["accuracy"], rtol=1e-6)
    # the weights matter: without them the repeats count, and the loss is that of 16 images
    assert sorted(job) == ["accuracy", "loss"]
    plain = model.evaluate(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]),
                           batch_size=4, verbose=0, return_dict=True)
    assert abs(plain["loss"] - one["loss"]) > 1e-4


# --- real processes -----------------------------------------------------------------------------

# JAX's persistent compilation cache, one folder for every process this module starts: XLA's compile
# of googlenet_tv's train, test and predict steps is most of a short run's CPU time, and the processes
# of a job compile the same programs, so a later job (the kill and --resume test) reuses what an
# earlier one compiled. The cache holds compiled executables, keyed by the program and the compile
# options: a hit runs the very code a miss would compile, so the numbers compared are unchanged.
CACHE: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def jax_cache(tmp_path_factory):
    CACHE.update({"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache")),
                  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                  "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
    yield
    CACHE.clear()


def _env(devices: int = 2, backend: str = "jax") -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "PYTHONUNBUFFERED": "1", **CACHE}
    env.pop("TF_CONFIG", None)
    return env


# `incdsl train` itself (the command line, in-process), with one callback added: when training ends it
# saves this process's copy of every weight of the training model (argv[1], .npz), so that what
# process 1 holds at the end, which it writes nowhere, can be compared with process 0's.
DUMP = r"""
import dataclasses, sys
import numpy as np
import keras
from incdsl.train import loop

dump, argv = sys.argv[1], sys.argv[2:]
made = loop.make_callbacks

class Dump(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        np.savez(dump, **{w.path.replace("/", "|"): np.asarray(w.value.addressable_data(0))
                          for w in self.model.weights})

def with_dump(*args, **kwargs):
    run = made(*args, **kwargs)
    return dataclasses.replace(run, callbacks=[*run.callbacks, Dump()])

loop.make_callbacks = with_dump
from incdsl.cli.main import main
code = main(argv)
print(f"tensorflow imported: {'tensorflow' in sys.modules}")  # a JAX run needs none (issue 20)
sys.exit(code)
"""


def _train(spec, data, out, *extra, env, dump=None) -> subprocess.Popen:
    """`incdsl train spec --data data -o out extra...` in a process of its own (saving its weights at
    the end to `dump` when given: DUMP)."""
    head = [sys.executable, "-c", DUMP, str(dump)] if dump else [sys.executable, "-m", "incdsl"]
    argv = [*head, "train", str(spec), "--data", str(data), "-o", str(out), *map(str, extra)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _job(spec, data, outs, *extra, devices=1, dumps=None):
    """Process i of a job of len(outs) processes (`devices` CPU devices each), output outs[i]."""
    port = free_port()
    return [_train(spec, data, out, *extra, "--strategy", "multiworker", "--coordinator", f"127.0.0.1:{port}",
                   "--num-processes", len(outs), "--process-id", i, env=_env(devices),
                   dump=dumps[i] if dumps else None)
            for i, out in enumerate(outs)]


def _finish(procs, timeout=900):
    results = []
    try:
        for p in procs:
            results.append(p.communicate(timeout=timeout))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def _ok(procs, results):
    failed = [f"process {i} (exit {p.returncode}):\n{err[-3000:]}" for i, (p, (_, err)) in
              enumerate(zip(procs, results)) if p.returncode != 0]
    assert not failed, "\n".join(failed)


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _predictions(model_path: Path, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(the saved model's outputs, the labels) for the first 200 images of the image folder `folder`."""
    import keras
    from PIL import Image

    import incdsl.backends.keras.layers  # noqa: F401  (registers the spec's layers for loading)
    model = keras.saving.load_model(model_path, compile=False)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = sorted(folder.rglob("*.png"))[:200]
    size = model.input_shape[1:3][::-1]
    x = np.stack([np.asarray(Image.open(f).convert("RGB").resize(size, Image.BILINEAR), dtype="float32")
                  for f in files])
    return np.asarray(model.predict(x, batch_size=50, verbose=0)), np.array([classes.index(f.parent.name)
                                                                              for f in files])


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tools"))
    from digits_folder import write_digits
    return write_digits(tmp_path_factory.mktemp("digits"), size=32)


# A small BN Inception (two layers of batch norm before one Inception module): it compiles in a
# fraction of googlenet_tv's time.
SMALL_BN = f"""
use "{ROOT / 'specs' / 'googlenet.inc'}"

network small_bn(classes=10, width=0.25, size=16) {{
  defaults conv(bias=false, bn=true, act=relu)
  input(size, size, 3)
  conv1 = conv(16, 3, stride=2)
  a = inception(64, 96, 128, 16, 32, 32, width)
  output fc = gap -> dropout(0.2) -> dense(classes)
}}
"""


# 1437 training images: --val-split 0.0905 holds out 130, eight batches of 16 and a last one of 2,
# which a job of two replicas fills up (shard.ShardValBatches): every image must count once.
VAL = 130
TRAINED = ["--batch-size", 16, "--val-split", "0.0905", "--bn-recalibrate", 2, "--steps-per-execution", 1,
           "--deterministic", "--progress", "epoch", "--no-tensorboard", "--optimizer", "adam",
           "--lr", "0.01", "--epochs", 2, "--steps-per-epoch", 15, "--freeze", "conv1",
           "--unfreeze-after", 1, "--unfreeze-lr", "0.01"]


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """A small BN Inception trained on the digits once for the module: by a job of two processes of
    one CPU device each (process 1 given an output folder of its own, which it must leave unmade),
    and by one process on two CPU devices (--strategy mirrored), the reference.

    Why the reference has two devices: it then computes the very program the job does, the
    global batch split in two and the halves' sums added (the gradients, the batch-norm batch
    statistics), and a sum of two is the same in either order, so the job must match it to float
    rounding after any number of steps. One device sums the 16 images in another order, which
    googlenet_tv at 32x32 (1x1 maps in its last modules, batch norm over 16 values per channel)
    amplifies about a hundredfold per step (measured: 6e-7, 4e-5, 3e-3 relative over three steps);
    tests/train/test_input.py matches the mirrored run with one device. Why not googlenet_tv here:
    30 steps with two phases and precise BN cost it over 15 minutes of a loaded 2-core machine
    (the compiles); it trains as a job in the kill and --resume test. The run: 15 steps with conv1
    frozen, then 15 with everything trainable (--freeze, --unfreeze-after), precise BN before each
    validation, enough to move off chance."""
    train, _ = digits
    root = tmp_path_factory.mktemp("trained")
    job, elsewhere, alone = root / "job", root / "elsewhere", root / "alone"
    spec = root / "small_bn.inc"
    spec.write_text(SMALL_BN)
    procs = _job(spec, train, [job / "m.keras", elsewhere / "m.keras"], *TRAINED,
                 dumps=[root / "p0.npz", root / "p1.npz"])
    procs.append(_train(spec, train, alone / "m.keras", *TRAINED, "--strategy", "mirrored", env=_env(2),
                        dump=root / "alone.npz"))
    results = _finish(procs)
    return root, procs, results


@pytest.mark.slow
def test_two_jax_processes_train_as_one(trained):
    # The same losses, accuracies and validation as one process over the same global batches, in
    # both phases of --freeze/--unfreeze-after; process 0 writes, process 1 writes nothing.
    root, procs, results = trained
    _ok(procs, results)
    (chief, _), (other, _), (single, _) = results
    assert "DataParallel, 2 replicas on 2 processes (this one process 0)" in chief
    assert "DataParallel, 2 replicas, Keras jax" in single
    assert "(this one process 1)" in other and "wrote" not in other
    # no process of the job, nor the single one, imported TensorFlow (Keras' own set_random_seed does)
    assert [[ln for ln in out.splitlines() if ln.startswith("tensorflow imported:")]
            for out in (chief, other, single)] == [["tensorflow imported: False"]] * 3
    frozen = [line for line in chief.splitlines() if "frozen" in line]
    assert frozen and frozen == [line for line in single.splitlines() if "frozen" in line]
    assert not (root / "elsewhere").exists()
    assert sorted(p.name for p in (root / "job").iterdir()) == ["m.best.keras", "m.keras", "m.log.csv"]

    got, ref = _rows(root / "job" / "m.log.csv"), _rows(root / "alone" / "m.log.csv")
    assert [r["step"] for r in got] == [r["step"] for r in ref] == ["15", "30"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose([float(r[key]) for r in got], [float(r[key]) for r in ref], rtol=1e-6,
                                   err_msg=key)
    # every validation image counted once: an accuracy of k/130 (not k/128: the last batch of 2 left out)
    for r in got:
        k = float(r["val_accuracy"]) * VAL
        assert abs(k - round(k)) < 1e-3, r["val_accuracy"]
    loss = [float(r["loss"]) for r in got]
    assert loss[1] < loss[0]  # training moved: the agreement above is not that of two untouched models
    from incdsl.train.saving import read_meta
    meta = read_meta(root / "job" / "m.keras")
    assert meta["epoch"] == 2 and meta["bn_recalibrated"]["before_each_validation"]


@pytest.mark.slow
def test_the_model_process_0_wrote_predicts_as_the_single_process_one(trained, digits):
    # The same outputs on held-out digits, to float32 rounding, from a model trained off chance.
    root, procs, results = trained
    _ok(procs, results)
    _, test = digits
    a, labels = _predictions(root / "job" / "m.keras", test)
    b, _ = _predictions(root / "alone" / "m.keras", test)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert (a.argmax(-1) == labels).mean() >= 0.3  # 10 classes: chance is 0.1


@pytest.mark.slow
def test_batch_norm_statistics_are_the_same_on_every_process(trained):
    # What each process holds when training ends (DUMP): process 1's every weight, batch norm's
    # moving statistics included, is process 0's, bit for bit, and the model process 0 wrote holds them.
    import keras

    import incdsl.backends.keras.layers  # noqa: F401  (registers the spec's layers for loading)
    root, procs, results = trained
    _ok(procs, results)
    p0, p1, alone = (dict(np.load(root / f"{n}.npz")) for n in ("p0", "p1", "alone"))
    moving = [k for k in p0 if k.endswith(("moving_mean", "moving_variance"))]
    assert len(moving) >= 14 and sorted(p0) == sorted(p1)
    for k in p0:
        np.testing.assert_array_equal(p1[k], p0[k], err_msg=k)
        np.testing.assert_allclose(p0[k], alone[k], rtol=1e-5, atol=1e-6, err_msg=k)
    model = keras.saving.load_model(root / "job" / "m.keras", compile=False)
    written = {w.path.replace("/", "|"): np.asarray(w) for w in model.weights}
    shared = [k for k in moving if k in written]
    assert len(shared) == len(moving)
    for k in shared:
        np.testing.assert_array_equal(written[k], p0[k], err_msg=k)


@pytest.mark.slow
def test_googlenet_tv_at_width_0_25_trains_as_a_job_killed_and_resumed_as_in_one_process(digits, tmp_path):
    # The issue's own case, in one job (each googlenet_tv process spends most of its CPU compiling, so
    # one job pays for every check): specs/googlenet_tv.inc at width 0.25 on the digits, a job of two
    # processes of one CPU device each against one process on two devices (the same program: see
    # `trained`), over the same global batches, precise BN before each validation. Process 1 is
    # killed once the first epoch is done: process 0 must end with a clear error within a bounded
    # time (it would otherwise wait in the next collective), keeping the finished epoch; both started
    # again with --resume finish the job.
    # Then the job's log, the epoch before the kill and the resumed one, equals the single process's
    # uninterrupted run, and process 0's model gives its outputs (what a resume must restore for
    # that: tests/train/test_resume_exact.py). The long run, --freeze and the BN statistics across
    # processes are the small network's (`trained`).
    train, test = digits
    job, alone = tmp_path / "job", tmp_path / "alone"
    run = (*NET, "--batch-size", 16, "--val-split", "0.0905", "--bn-recalibrate", 2,
           "--steps-per-execution", 1, "--deterministic", "--progress", "epoch", "--no-tensorboard",
           "--epochs", 2, "--steps-per-epoch", 8)
    outs = [job / "m.keras", tmp_path / "p1" / "m.keras"]
    reference = _train(SPEC, train, alone / "m.keras", *run, "--strategy", "mirrored", env=_env(2))
    try:
        procs = _job(SPEC, train, outs, *run)
        log = job / "m.log.csv"
        deadline = time.monotonic() + 900
        while not (log.exists() and len(_rows(log)) >= 1):
            assert time.monotonic(
                ) < deadline and all(p.poll() is None for p in procs), "the first epoch did not finish"
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        out, err = procs[0].communicate(timeout=120)
        took = time.monotonic() - killed
        procs[1].wait()
        assert procs[0].returncode == 1, err[-3000:]
        assert took < 60
        assert "DataParallel, 2 replicas on 2 processes (this one process 0)" in out
        assert (
            "process 1 ended before the job finished" in err and "--resume" in err and "Traceback" not in err
        )
        assert not (job / "m.keras").exists() and (job / "m.backup").is_dir()

        procs = _job(SPEC, train, outs, *run, "--resume")
        results = _finish([*procs, reference])
    finally:
        if reference.poll() is None:  # a check above failed: the reference is not waited for
            reference.kill()
            reference.wait()
    _ok([*procs, reference], results)
    assert "resuming after epoch 1 of 2" in results[0][0]
    assert (job / "m.keras").exists() and not (job / "m.backup").exists() and not (tmp_path / "p1").exists()
    got, ref = _rows(log), _rows(alone / "m.log.csv")
    assert [(r["epoch"], r["step"]) for r in got] == [(r["epoch"], r["step"]) for r in ref] == [("0", "8"),
                                                                                              ("1", "16")]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose([float(r[key]) for r in got], [float(r[key]) for r in ref], rtol=1e-6,
                                   err_msg=key)
    for r in got:
        k = float(r["val_accuracy"]) * VAL
        assert abs(k - round(k)) < 1e-3, r["val_accuracy"]  # every one of the 130 images counted once
    a, _ = _predictions(job / "m.keras", test)
    b, _ = _predictions(alone / "m.keras", test)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_two_processes_of_two_devices_each_diverge_as_one_process(digits, tmp_path):
    # Each process splits its part of the batch over two CPU devices of its own (4 replicas in all),
    # a small BN Inception (it compiles quickly). At a learning rate of 1e30 the first step is
    # finite and the same as one process's (to 1e-5), and the second is not: every process stops
    # with one process's message and exit status, the first epoch kept, no model written.
    # Both processes are given the same -o, as the same command on every machine would.
    train, _ = digits
    spec = tmp_path / "small_bn.inc"
    spec.write_text(SMALL_BN)
    flags = ["--batch-size", 16, "--val-split", 0, "--bn-recalibrate", "off", "--optimizer", "adam",
             "--lr", "1e30", "--epochs", 3, "--steps-per-epoch", 1, "--progress", "epoch",
             "--no-tensorboard", "--deterministic"]  # --deterministic: one process's dropout seeded too
    out = tmp_path / "job" / "m.keras"
    procs = _job(spec, train, [out, out], *flags, devices=2)
    procs.append(_train(spec, train, tmp_path / "one" / "m.keras", *flags, env=_env(1)))
    results = _finish(procs)
    errors = [err for _, err in results]
    assert [p.returncode for p in procs] == [1, 1, 1], "\n".join(e[-2000:] for e in errors)
    assert "DataParallel, 4 replicas on 2 processes (this one process 0)" in results[0][0]
    said = [e[e.find("error: "):] for e in errors]  # the error and its hint, after any progress lines
    assert said[2].startswith("error: training diverged: the loss is nan at step 2 (epoch 2, batch 1)")
    assert said[0] == said[1] == said[2].replace(str(tmp_path / "one"), str(tmp_path / "job"))
    assert "Traceback" not in "".join(errors)
    assert not out.exists() and (tmp_path / "job" / "m.backup").is_dir()
    got, ref = _rows(tmp_path / "job" / "m.log.csv"), _rows(tmp_path / "one" / "m.log.csv")
    assert len(got) == len(ref) == 1
    np.testing.assert_allclose(float(got[0]["loss"]), float(ref[0]["loss"]), rtol=1e-5)


@pytest.mark.slow
def test_different_flags_on_two_processes_are_refused_before_jax_starts(digits, tmp_path):
    train, _ = digits
    port = free_port()
    procs = [_train(SPEC, train, tmp_path / "a" / "m.keras", *NET, "--strategy", "multiworker",
                    "--coordinator", f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", i,
                    "--epochs", 1 + i, env=_env(1))
             for i in (0, 1)]
    results = _finish(procs, timeout=300)
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 2, err[-3000:]
        assert "--epochs differs: process 1 has 2, process 0 has 1" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_an_unreachable_coordinator_is_a_usage_error_after_a_bounded_wait(tmp_path):
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "incdsl", "train", str(SPEC), *NET, "--data", "synthetic",
                        "-o", str(tmp_path / "o" / "m.keras"), "--strategy", "multiworker", "--coordinator",
                        f"127.0.0.1:{free_port()}", "--num-processes", "2", "--process-id", "1",
                        "--worker-timeout", "3"], env=_env(1), capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "could not reach process 0 at --coordinator 127.0.0.1:" in p.stderr
    assert "within 3 s" in p.stderr and "Traceback" not in p.stderr and "Check failure" not in p.stderr
    assert not (tmp_path / "o").exists()
    assert time.monotonic() - start < 120


@pytest.mark.slow
def test_multiworker_on_torch_is_a_usage_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "incdsl", "train", str(SPEC), *NET, "--data", "synthetic",
                        "-o", str(tmp_path / "o" / "m.keras"), "--strategy", "multiworker"],
                       env=_env(1, backend="torch"), capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]
    assert (
        "--strategy multiworker is not available on the torch backend" in p.stderr
        and "Traceback" not in p.stderr
    )
    assert not (tmp_path / "o").exists()


def test_the_job_comes_from_jax_cluster_detection_or_is_asked_for(monkeypatch):
    from incdsl.train import TrainConfig
    from incdsl.train.multiworker_jax import resolve_job
    for var in list(os.environ):
        if var.startswith(("SLURM_", "OMPI_", "JAX_", "TPU_", "CLOUD_TPU", "MEGASCALE", "PMI_")):
            monkeypatch.delenv(var)
    with pytest.raises(OptionError) as e:
        resolve_job(TrainConfig(strategy="multiworker"))
    assert e.value.worded(FLAGS).startswith("--strategy multiworker on JAX needs the job: --coordinator, "
                                            "--num-processes, --process-id (or a cluster JAX detects")
    # SLURM, as JAX's own detection reads it: task 1 of 4, the first node of the step is the coordinator
    for k, v in {"SLURM_JOB_ID": "4097", "SLURM_STEP_NODELIST": "node[003-006]", "SLURM_NTASKS": "4",
                 "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}.items():
        monkeypatch.setenv(k, v)
    job, local = resolve_job(TrainConfig(strategy="multiworker"))
    assert (job.coordinator, job.processes, job.process_id, local) == ("node003:61441", 4, 1, [0])
    # flags win over what the cluster says
    job, _ = resolve_job(TrainConfig(strategy="multiworker", process_id=2))
    assert job.process_id == 2


@pytest.mark.slow
def test_one_process_failing_alone_ends_the_job_at_once_and_a_late_one_is_refused(digits, tmp_path):
    # Process 1 reads its own copy of the folder (decoded every epoch: --image-cache 0), removed once
    # the first epoch is done: process 1 fails alone (a DataError on its reader), and must end the job
    # at once, each process with exit 1: process 1 with its error, process 0 naming process 1 and
    # that error, neither waiting in JAX's shutdown barrier or a collective, no stack dump.
    import shutil
    train, _ = digits
    mine = tmp_path / "p1data"
    shutil.copytree(train, mine)
    spec = tmp_path / "small_bn.inc"
    spec.write_text(SMALL_BN)
    flags = ["--batch-size", 16, "--val-split", 0, "--bn-recalibrate", "off", "--epochs", 200,
             "--steps-per-epoch", 8, "--progress", "epoch", "--no-tensorboard", "--image-cache", 0,
             "--workers", 1]
    port = free_port()
    outs = [tmp_path / "job" / "m.keras", tmp_path / "p1" / "m.keras"]
    procs = [_train(spec, data, out, *flags, "--strategy", "multiworker", "--coordinator",
                    f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", i, env=_env(1))
             for i, (data, out) in enumerate(zip((train, mine), outs))]
    log = outs[0].parent / "m.log.csv"
    try:
        deadline = time.monotonic() + 900
        while not (log.exists() and len(_rows(log)) >= 1):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
                "the first epoch did not finish"
            time.sleep(0.05)
        # while it trains, a process given a taken id is told so at once (process 0 still answers
        # on the coordinator's port), exit 2, nothing written
        late_start = time.monotonic()
        late = _train(spec, train, tmp_path / "late" / "m.keras", *flags, "--strategy", "multiworker",
                      "--coordinator", f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", 1,
                      env=_env(1))
        _, late_err = late.communicate(timeout=240)
        late_took = time.monotonic() - late_start
        assert all(p.poll() is None for p in procs), "the job ended when the late process came"
        shutil.rmtree(mine)
        removed = time.monotonic()
        results = [p.communicate(timeout=120) for p in procs]
        took = time.monotonic() - removed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    (_, err0), (_, err1) = results
    assert late.returncode == 2, late_err[-2000:]
    assert "error: --process-id 1 is taken (the job already has it: processes 0 to 1 met at --coordinator " \
           "127.0.0.1:" in late_err and "Traceback" not in late_err
    assert late_took < 120 and not (tmp_path / "late").exists()  # not the 300 s of --worker-timeout
    assert [p.returncode for p in procs] == [1, 1], err0[-2000:] + err1[-2000:]
    assert took < 60
    assert "vanished during training" in err1 and "ended before the job finished" not in err1
    said = err0[err0.find("error: "):]
    assert said.startswith("error: multi-worker training: process 1 ended before the job finished "
                           "(it failed: "), err0[-2000:]
    assert "vanished during training" in said and "--resume" in said and "(it failed: error:" not in said
    for err in (err0, err1):
        assert "Traceback" not in err and "Check failure" not in err and "stack trace" not in err.lower()
    assert (tmp_path / "job" / "m.backup").is_dir() and not (tmp_path / "p1").exists()
