"""The `--resume` backup's writer (incdsl/train/backup_write.py, issue 31 item 4): the file Keras'
save_weights writes, without its walk of the model at each epoch, and a kill at any moment leaves
a whole backup (the old one or the new one), which `settle` puts in place. Quick."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import incdsl
from incdsl.train import backup_write
from incdsl.train.backup_write import METADATA, STAGED, STAGED_METADATA, STAGED_WEIGHTS, WEIGHTS, settle
from incdsl.train.rng_state import GROUP

from nets import TINY_INCEPTION

ROOT = Path(__file__).resolve().parent.parent.parent


def _compiled(model=None):
    """Tiny inception (two outputs: an auxiliary head) compiled as incdsl trains it (`model`, when
    given, compiled again: a new optimizer), its optimizer built and its state set to values of
    its own (as after training: iterations, momentum), without the cost of a train step."""
    from incdsl.backends.keras.build import build_model
    from incdsl.train import TrainConfig, head_losses
    from incdsl.train.model import compile_for_training, with_preprocessing
    net = incdsl.loads(TINY_INCEPTION)
    heads = head_losses(net, None)
    if model is None:
        model = with_preprocessing(build_model(net, inference=False), net.input_shape, "inception",
                                   [h.name for h in heads])
    compile_for_training(model, heads, TrainConfig("unused.keras"), steps_per_epoch=1)
    model.optimizer.build(model.trainable_variables)
    _change(model)
    return model


def _change(model, seed=0):
    """Give every variable of the model and its optimizer new values (as an epoch of training does)."""
    rng = np.random.default_rng(seed)
    for v in [*model.variables, *model.optimizer.variables]:
        if "int" in str(v.dtype):
            v.assign(np.full(v.shape, rng.integers(1, 100), str(v.dtype)))
        else:
            v.assign(rng.normal(size=v.shape).astype(str(v.dtype)))


def _h5_contents(path) -> dict:
    """Every group and dataset of an HDF5 file: kind, attributes with their HDF5 types, dtype,
    shape and bytes."""
    import h5py
    out = {}

    def visit(name, obj):
        attrs = {k: (obj.attrs[k], obj.attrs.get_id(k).dtype) for k in obj.attrs}
        if isinstance(obj, h5py.Dataset):
            out[name] = ("dataset", attrs, obj.dtype, obj.shape, obj[()].tobytes())
        else:
            out[name] = ("group", attrs)
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def test_the_plan_writes_what_keras_save_weights_writes_and_walks_once(tmp_path, monkeypatch):
    from incdsl.train.resume import CheckedBackup
    model = _compiled()
    backup = CheckedBackup(str(tmp_path / "b"))
    backup.set_model(model)
    walks = []
    record = backup_write._record
    monkeypatch.setattr(backup_write, "_record", lambda m: walks.append(1) or record(m))
    backup._current_epoch = 1
    backup._save_model()
    model.save_weights(tmp_path / "keras.weights.h5")
    ours, keras_own = _h5_contents(tmp_path / "b" / WEIGHTS), _h5_contents(tmp_path / "keras.weights.h5")
    assert sum(v[0] == "dataset" for v in keras_own.values()) > 50  # model and optimizer variables
    # Keras' file, and the layers' random states beside it (rng_state.py; none in this network)
    assert ours.pop(GROUP) == ("group", {}) and not [k for k in ours if k.startswith(GROUP + "/")]
    assert ours == keras_own
    assert json.loads((tmp_path / "b" / METADATA).read_text()) == {"epoch": 1, "batch": 0}

    _change(model, seed=1)
    backup._current_epoch = 2
    backup._save_model()
    model.save_weights(tmp_path / "keras.weights.h5", overwrite=True)
    assert _without_random_state(tmp_path / "b" / WEIGHTS) == _h5_contents(tmp_path / "keras.weights.h5")
    assert walks == [1]  # the second save reused the plan
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        [WEIGHTS, METADATA, WEIGHTS + ".bkp", METADATA + ".bkp"])
    assert json.loads((tmp_path / "b" / (METADATA + ".bkp")).read_text())["epoch"] == 1

    # a new optimizer (new variables): the plan is made again, and the file is still Keras' own
    _compiled(model)
    backup._current_epoch = 3
    backup._save_model()
    model.save_weights(tmp_path / "keras.weights.h5", overwrite=True)
    assert walks == [1, 1]
    assert _without_random_state(tmp_path / "b" / WEIGHTS) == _h5_contents(tmp_path / "keras.weights.h5")


def _without_random_state(path) -> dict:
    """_h5_contents of a backup's weights file without its random-state group (rng_state.py)."""
    return {k: v for k, v in _h5_contents(path).items() if k != GROUP and not k.startswith(GROUP + "/")}


class Killed(BaseException):
    """Stands for SIGKILL at one point of save_backup: nothing after it runs."""


def _write(epoch: int):
    def write(path):
        Path(path).write_text(f"weights of epoch {epoch}")
    return write


def _whole(backup: Path, old: int | None = None) -> int:
    """Check that `backup` holds a whole backup after `settle`: the pair of one epoch (`old` or
    old + 1, when given), the .bkp pair of the epoch before it when there is one, nothing staged;
    returns the epoch."""
    settle(backup, quiet=True)
    names = {p.name for p in backup.iterdir()}
    assert not names & set(STAGED), names
    epoch = json.loads((backup / METADATA).read_text())["epoch"]
    assert old is None or epoch in (old, old + 1)
    assert (backup / WEIGHTS).read_text() == f"weights of epoch {epoch}"
    if (backup / (METADATA + ".bkp")).exists() or (backup / (WEIGHTS + ".bkp")).exists():
        before = json.loads((backup / (METADATA + ".bkp")).read_text())["epoch"]
        assert before == epoch - 1 and (
            backup / (WEIGHTS + ".bkp")).read_text() == f"weights of epoch {before}"
    return epoch


@pytest.mark.parametrize("kill_at", range(7))
def test_a_kill_at_each_step_of_a_save_leaves_the_old_or_the_new_backup(tmp_path, monkeypatch, kill_at):
    """The steps: the staged weights (killed half-written), the staged metadata (killed
    half-written), then four renames; kill_at 6 is after the last."""
    backup = tmp_path / "b"
    for epoch in (1, 2):
        backup_write.save_backup(backup, _write(epoch), {"epoch": epoch, "batch": 0})
    steps = []
    real_replace, real_write_text = os.replace, Path.write_text

    def step():
        steps.append(1)
        if len(steps) > kill_at:
            raise Killed

    def replace(src, dst):
        step()
        real_replace(src, dst)

    def write_weights(path):
        Path(path).write_text("weights of ep")  # a file cut short
        step()
        Path(path).write_text("weights of epoch 3")

    def write_text(self, text, *a, **k):
        if self.name == STAGED_METADATA:
            real_write_text(self, text[:len(text) // 2])
            step()
        return real_write_text(self, text, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "write_text", write_text)
    try:
        backup_write.save_backup(backup, write_weights, {"epoch": 3, "batch": 0})
    except Killed:
        pass
    monkeypatch.undo()
    assert len(steps) == min(kill_at + 1, 6)  # the kill came at the step meant
    assert _whole(backup, 2) == (2 if kill_at < 2 else 3)  # complete once the staged metadata is


def test_sigkill_at_random_moments_always_leaves_a_whole_backup(tmp_path):
    """A process saving backups over and over (weights of 2 MB) is killed with SIGKILL at random
    moments, 25 times; after each kill the folder settles to the last or the next backup. Each
    saving process is forked by one server that imported incdsl once (25 interpreters took 4 s of
    CPU starting); it says `ready` once it settled the folder and is saving, `dead` once reaped."""
    backup = tmp_path / "b"
    server = (
        "import os, sys, json\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from incdsl.train.backup_write import save_backup, settle, METADATA\n"
        "b = Path(sys.argv[1])\n"
        "for _ in sys.stdin:\n"
        "    pid = os.fork()\n"
        "    if pid:\n"
        "        os.waitpid(pid, 0)\n"
        "        print('dead', flush=True)\n"
        "        continue\n"
        "    settle(b, quiet=True)\n"
        "    e = json.loads((b / METADATA).read_text())['epoch'] if (b / METADATA).exists() else 0\n"
        "    print('ready', os.getpid(), flush=True)\n"
        "    while True:\n"
        "        e += 1\n"
        "        def write(p, e=e):\n"
        "            with open(p, 'w') as f:\n"
        "                f.write('x' * 2_000_000)\n"
        "                f.seek(0)\n"
        "                f.write(f'weights of epoch {e}')\n"
        "                f.truncate(len(f'weights of epoch {e}'))\n"
        "        save_backup(b, write, {'epoch': e, 'batch': 0})\n")
    rng = np.random.default_rng(0)
    epoch, staged = 0, 0
    proc = subprocess.Popen([sys.executable, "-c", server, str(backup)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(25):
            proc.stdin.write("fork\n")
            proc.stdin.flush()
            word, pid = proc.stdout.readline().split()
            assert word == "ready"
            time.sleep(float(rng.uniform(0.005, 0.05)))
            os.kill(int(pid), signal.SIGKILL)
            assert proc.stdout.readline().strip() == "dead"
            names = {p.name for p in backup.iterdir()} if backup.exists() else set()
            staged += bool(names & set(STAGED))  # killed while a save was under way
            settle(backup, quiet=True)
            if not (backup / METADATA).exists():
                assert epoch == 0  # killed before its first save was complete: nothing to resume yet
                continue
            new = _whole(backup)
            assert new >= epoch  # (the process saves many times before its kill)
            epoch = new
    finally:
        proc.kill()
        proc.communicate()
    assert epoch > 1 and staged >= 5, (epoch, staged)


def test_an_incomplete_staged_backup_is_deleted_and_a_complete_one_finished(tmp_path, capsys):
    backup = tmp_path / "b"
    backup_write.save_backup(backup, _write(1), {"epoch": 1, "batch": 0})
    (backup / STAGED_WEIGHTS).write_text("weights of epoch 2")
    (backup / STAGED_METADATA).write_text('{"epoch": 2, "ba')  # cut short by the kill
    assert settle(backup) is None and _whole(backup, 1) == 1
    (backup / STAGED_WEIGHTS).write_text("weights of epoch 2")
    (backup / STAGED_METADATA).write_text('{"epoch": 2, "batch": 0}')
    os.replace(backup / WEIGHTS, backup / (WEIGHTS + ".bkp"))  # killed after the first rename
    assert settle(backup) == 2 and _whole(backup, 1) == 2
    assert "completed the backup after epoch 2 that the interrupted run was writing" in capsys.readouterr(
        ).err
