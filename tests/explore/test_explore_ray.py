"""Issue 25, on Ray (slow: each test starts Ray and trains): a trial equals a sequential `incdsl
train` of its variant with the same seed, and a trial that fails (a diverged run) is reported with
its error while the others go on; a cluster of two Ray nodes on this machine
(ray.cluster_utils.Cluster, 127.0.0.1) loses one node mid-run and the experiment still completes
(Tune retries the lost trial from its checkpoint); an experiment interrupted with Ctrl-C resumes
with `--resume` without rerunning its finished trials. Tiny variants on scikit-learn's digits."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_explore import TINY

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    sys.path.insert(0, str(ROOT / "tools"))
    from digits_folder import write_digits
    # a fifth of the digits for training (359 images): enough to learn something, quick on a CPU
    train, _ = write_digits(tmp_path_factory.mktemp("digits"), size=16, test=0.8)
    return train


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.inc"
    p.write_text(TINY.replace("classes=3", "classes=10"))
    return p


def env(**extra) -> dict:
    return {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def incdsl(*argv) -> list[str]:
    return [sys.executable, "-m", "incdsl", *map(str, argv)]


def log_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


TRAIN = ("--epochs", 2, "--batch-size", 32, "--lr", 0.05, "--seed", 3, "--bn-recalibrate", "off")


def test_a_trial_equals_a_sequential_train_and_a_failing_trial_does_not_stop_the_others(tiny, digits,
                                                                                        tmp_path):
    before = files_under(tmp_path)
    exp = tmp_path / "exp"
    run = subprocess.run(incdsl("explore", tiny, "--data", digits, "--sweep", "gain=1.0,1e38", *TRAIN, "-o",
                                exp),
                         env=env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    # nothing written outside the experiment folder (Ray's session files go to its temp folder, /tmp/ray)
    assert {p for p in files_under(tmp_path) - before if exp not in p.parents and p != exp} == set()
    results = json.loads((exp / "results.json").read_text())
    rows = {r["label"]: r for r in results["rows"]}
    good, bad = rows["gain=1.0"], rows["gain=1e38"]
    assert good["state"] == "done" and good["epochs"] == 2 and good["error"] is None
    assert bad["state"] == "error" and "training diverged" in bad["error"] and bad["accuracy"] is None
    assert "error: gain=1e38: training diverged" in run.stdout
    for name in ("results.csv", "results.png", "explore.json", "trials/gain=1.0/model.keras",
                 "trials/gain=1.0/model.best.keras"):
        assert (exp / name).is_file(), name
    assert good["model"] == "trials/gain=1.0/model.best.keras"

    # the same variant trained by `incdsl train` in sequence, same seed
    out = tmp_path / "seq" / "model.keras"
    seq = subprocess.run(incdsl("train", tiny, "--data", digits, "--set", "gain=1.0", *TRAIN, "--progress",
                                "off",
                                "--no-tensorboard", "-o", out), env=env(), capture_output=True, text=True,
                         timeout=900)
    assert seq.returncode == 0, seq.stdout + seq.stderr
    trial, alone = log_rows(
        exp / "trials" / "gain=1.0" / "model.log.csv"), log_rows(tmp_path / "seq" / "model.log.csv")
    assert len(trial) == len(alone) == 2
    for a, b in zip(trial, alone):
        assert a["step"] == b["step"]
        for key in ("loss", "val_loss"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5), (key, a, b)
        for key in ("accuracy", "val_accuracy"):
            assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-6), (key, a, b)
    assert good["accuracy"] == pytest.approx(max(float(r["val_accuracy"]) for r in trial))
    print("trial:", [(r["loss"], r["val_accuracy"]) for r in trial], "train:",
          [(r["loss"], r["val_accuracy"]) for r in alone])


def wait_for(check, timeout: float, proc=None, what: str = "", every: float = 1.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.stdout.read()}")
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_two_node_cluster_loses_a_node_and_the_experiment_completes(tiny, digits, tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster
    for k, v in env().items():
        monkeypatch.setenv(k, v)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        exp = tmp_path / "exp"
        proc = subprocess.Popen(incdsl("explore", tiny, "--data", digits, "--sweep", "width=0.125,0.25",
                                       "--sweep", "size=12,16", *TRAIN[2:], "--epochs", 3, "--address",
                                       cluster.address,
                                       "-o", exp), env=env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            # two trials train side by side, one on each node: once both have finished an epoch, kill the
            # second node
            wait_for(
                lambda: sum(len(log_rows(f / "model.log.csv")) >= 1 for f in (exp / "trials").glob("*")) >= 2,
                     600, proc, "two trials finished an epoch")
            cluster.remove_node(worker, allow_graceful=False)
            output, _ = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, output
        rows = json.loads((exp / "results.json").read_text())["rows"]
        assert len(rows) == 4 and {r["state"] for r in rows} == {"done"}, output
        assert all(r["epochs"] == 3 for r in rows)
        assert "retrying" in output  # the trial on the lost node was restarted by Tune from its checkpoint
        print(output[-3000:])
    finally:
        cluster.shutdown()


def test_an_interrupted_experiment_resumes_without_rerunning_finished_trials(tiny, digits, tmp_path):
    exp = tmp_path / "exp"
    argv = incdsl("explore", tiny, "--data", digits, "--sweep", "width=0.125,0.25,0.375", *TRAIN,
                  "--max-concurrent", 1,
                  "-o", exp)
    # a group of its own, signalled as a whole: Ctrl-C on a terminal (Ray's processes block SIGINT)
    proc = subprocess.Popen(argv, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    trials = exp / "trials"
    try:
        # one trial finished, another has a finished epoch (a checkpoint) and is still training
        def mid_run():
            done = [f for f in trials.glob("*") if (f / "model.keras").exists()]
            busy = [f for f in trials.glob("*") if not (f / "model.keras").exists()
                    and len(log_rows(f / "model.log.csv")) == 1]
            return (done, busy) if done and busy else None
        # a tiny trial's second epoch takes under a second on a quiet machine: look often
        done, busy = wait_for(mid_run, 600, proc, "one trial done and another mid-run", every=0.02)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert f"incdsl explore --resume {exp} continues it" in output
    finished = {f: ((f / "model.keras").stat().st_mtime_ns, (f / "model.log.csv").read_text()) for f in done}
    first_epoch = log_rows(busy[0] / "model.log.csv")[0]
    # the interrupted trial keeps its best epoch so far, and the results say where
    assert (busy[0] / "model.best.keras").is_file()
    stopped = {r["label"]: r for r in json.loads((exp / "results.json").read_text())["rows"]}
    assert stopped[busy[0].name]["model"] == f"trials/{busy[0].name}/model.best.keras", stopped
    # (Tune may let its last epoch end while it stops: "done" then, and the resume below reruns nothing)
    assert stopped[busy[0].name]["state"] in ("not finished", "done"), stopped

    resumed = subprocess.run(incdsl("explore", "--resume", exp), env=env(), capture_output=True, text=True,
                             timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # the live table shows the trials finished before the interruption as done, never waiting
    names = [[f.name] for f in done]
    live_part = resumed.stdout.split("best val acc")[0]  # the live tables, before the final one
    live = [ln.rstrip() for ln in live_part.splitlines() if ln.split()[:1] in names]
    assert live and all(ln.endswith("done") for ln in live), resumed.stdout
    rows = json.loads((exp / "results.json").read_text())["rows"]
    assert len(rows) == 3 and {r["state"] for r in rows} == {"done"}, resumed.stdout
    for f, (mtime, log) in finished.items():  # not rerun
        assert (f / "model.keras").stat().st_mtime_ns == mtime and (f / "model.log.csv").read_text() == log
    rows_after = log_rows(busy[0] / "model.log.csv")
    # continued after its first epoch, not restarted
    assert len(rows_after) == 2 and rows_after[0] == first_epoch
    code = subprocess.run(incdsl("explore", "--show", exp), env=env(), capture_output=True, text=True,
                          timeout=120)
    assert code.returncode == 0 and code.stdout.count("  done  ") == 3, code.stdout


def test_a_local_ray_without_gpus_refuses_a_trial_that_asks_for_one(tiny, digits, tmp_path):
    exp = tmp_path / "exp"
    run = subprocess.run(incdsl("explore", tiny, "--data", digits, "--gpus-per-trial", 1, "-o", exp),
                         env=env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    assert (
        "incdsl explore: error: a trial asks for 1 GPU (--gpus-per-trial) and no node of this machine has any"
        in run.stderr
        and "Traceback" not in run.stderr
    )
    assert not exp.exists()


def test_asha_stops_a_weak_variant_and_the_table_says_at_which_epoch(tiny, digits, tmp_path):
    """ASHA (reduction factor 2, grace period 1 epoch, 2 epochs): one trial at a time, the second variant
    (logits scaled by 1e-4: near chance after an epoch) is below the first at epoch 1 and is stopped there."""
    exp = tmp_path / "exp"
    run = subprocess.run(incdsl("explore", tiny, "--data", digits, "--sweep", "gain=1.0,1e-4", *TRAIN,
                                "--max-concurrent", 1, "--scheduler", "asha", "--grace-period", 1, "-o", exp),
                         env=env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {r["label"]: r for r in json.loads((exp / "results.json").read_text())["rows"]}
    assert rows["gain=1.0"]["state"] == "done" and rows["gain=1.0"]["epochs"] == 2
    assert rows["gain=1e-4"]["state"] == "stopped at epoch 1" and rows["gain=1e-4"]["epochs"] == 1, run.stdout
    assert "stopped at epoch 1" in run.stdout
    assert (exp / "trials" / "gain=1e-4" / "model.best.keras").is_file()  # its best epoch is kept
