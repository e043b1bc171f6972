"""`--strategy multiworker` on TensorFlow (MultiWorkerMirroredStrategy), run as the README says: two
worker processes on 127.0.0.1 given TF_CONFIG, the issue-30 case (googlenet_tv at width 0.25 on the
digits) through the command line; tests/train/test_train.py has the synthetic-data lockstep check.

TensorFlow's batch norm under tf.distribute normalizes with each replica's own batch statistics
(Keras' BatchNormalization(synchronized=False), the default): two workers of 8 images each do not
compute what one process of 16 does, so the check against one process here is that both workers
log the same all-reduced values and that training went the same way, not float equality (the JAX
test, tests/train/test_multiworker_jax.py, has that)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from test_multiworker_jax import _finish, _rows  # the job's processes, and the log's rows

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "googlenet_tv.inc"
NET = ["--set", "width=0.25", "--set", "size=32", "--set", "classes=10", "--set", "aux=false"]
RUN = ["--batch-size", "16", "--val-split", "0.0891", "--bn-recalibrate", "2", "--progress", "epoch",
       "--no-tensorboard", "--strategy", "multiworker"]


def free_ports(n: int) -> list[int]:
    import socket
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tools"))
    from digits_folder import write_digits
    return write_digits(tmp_path_factory.mktemp("digits"), size=32)


def _workers(data, out: Path, *extra) -> list[subprocess.Popen]:
    ports = free_ports(2)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONUNBUFFERED": "1"}
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                     "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "incdsl", "train", str(SPEC), *NET, "--data", str(data), "-o", str(out),
             *RUN,
             *map(str, extra)], env={**env, "TF_CONFIG": json.dumps(tf_config)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    return procs


def _epoch_losses(stdout: str) -> list[float]:
    return [float(m) for m in re.findall(r" - loss: ([0-9.]+) ", stdout)]


@pytest.mark.slow
def test_two_tf_workers_train_a_killed_one_ends_the_chief_and_resume_continues(digits, tmp_path):
    # One job pays for both checks (a TF worker's start-up and graph building are most of the cost):
    # worker 1 is killed once the first epoch is done, which must end the chief with a clear error
    # within a bounded time, the finished epoch kept; both started again with --resume finish the
    # job in lockstep, and only the chief writes.
    train, _ = digits
    run = tmp_path / "run"
    extra = ("--epochs", 2, "--steps-per-epoch", 8)
    procs = _workers(train, run / "m.keras", *extra)
    log = run / "m.log.csv"
    deadline = time.monotonic() + 900
    while not (log.exists() and len(_rows(log)) >= 1):
        ended = [p for p in procs if p.poll() is not None]
        assert not ended, "a worker ended before its first epoch:\n" + ended[0].communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first epoch did not finish"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    try:
        out, err = procs[0].communicate(timeout=180)
    finally:
        if procs[0].poll() is None:
            procs[0].kill()
            procs[0].wait()
    procs[1].wait()
    assert time.monotonic() - killed < 180
    assert procs[0].returncode == 1 and "Traceback" not in err, err[-3000:]
    assert "CollectiveAllReduceStrategy, 2 replicas on 2 workers (this one worker 0)" in out
    assert "error: another worker of the job was lost" in err and "--resume" in err, err[-3000:]
    assert not (run / "m.keras").exists() and (run / "m.backup").is_dir()
    # worker 1 wrote nothing: the job's state is the chief's backup alone (CI once killed worker 1
    # after the chief's epoch but before worker 1 had written a backup of its own, and the resumed
    # workers started from different epochs)
    assert {p.name for p in run.iterdir()} <= {"m.backup", "m.best.keras", "m.log.csv"}
    before = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*"))

    # the same commands without --resume: the chief refuses (its backup), and worker 1 with it
    procs = _workers(train, run / "m.keras", *extra)
    results = _finish(procs)
    (_, chief_err), (_, other_err) = results
    assert [p.returncode for p in procs] == [2, 2], chief_err[-2000:] + other_err[-2000:]
    assert "pass --resume to continue it" in chief_err
    assert "the chief of the job refused to start (its error says why); this worker (worker 1)" in other_err
    assert sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) == before

    procs = _workers(train, run / "m.keras", *extra, "--resume")
    results = _finish(procs)
    for p, (_, e) in zip(procs, results):
        assert p.returncode == 0, "\n".join(e[-3000:] for _, e in results)
    (chief, _), (other, _) = results
    assert "resuming after epoch 1 of 2" in chief and "resuming after epoch 1 of 2" in other
    # worker 1 took the chief's state: its epoch and its optimizer's step count (the logged losses
    # are all-reduced, the same on both workers whatever each one's weights are)
    assert "Epoch 2/2" in other and "Epoch 1/2" not in other and "step: 16.0000" in other
    assert "worker 1 done: the chief writes the outputs" in other
    # only the chief wrote
    assert sorted(p.name for p in run.iterdir()) == ["m.best.keras", "m.keras", "m.log.csv"]
    rows = _rows(run / "m.log.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert [r["step"] for r in rows] == ["8", "16"] or [float(r["step"]) for r in rows] == [8.0, 16.0]
    # lockstep: worker 1 printed the chief's all-reduced loss of the resumed epoch
    logged = [float(r["loss"]) for r in rows]
    # the progress line prints 4 decimals (Keras' Progbar: f"{value:.4f}"), the log the float itself
    np.testing.assert_allclose(_epoch_losses(other), logged[1:], rtol=0, atol=5.01e-5)
    assert all(np.isfinite(logged)) and logged[0] != logged[1]
    from incdsl.train.saving import read_meta
    assert read_meta(run / "m.keras")["epoch"] == 2
