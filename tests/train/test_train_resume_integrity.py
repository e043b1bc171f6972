"""Issue 24 item 3: `--resume` restores exactly what the interrupted run saved, or refuses naming
the damaged file (it used to print "resuming after epoch 3 of 8" and train from fresh weights when
the weights were gone, and end in internal errors for truncated weights or bad metadata).

One run of a tiny network is interrupted after two epochs (so Keras' `.bkp` copies exist too);
each test resumes a copy of its backup folder."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from incdsl import load

from conftest import Cli
from nets import PLAIN_LOGITS

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]

SPEC = PLAIN_LOGITS
ARGS = ["--data", "synthetic", "--epochs", "3", "--steps-per-epoch", "2", "--batch-size", "4", "--progress",
        "off",
        "--bn-recalibrate", "off", "--no-tensorboard", "--resume"]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A folder with s.inc, the log m.log.csv and m.backup/ of a run stopped before its third epoch."""
    import keras

    from incdsl.train import TrainConfig, train

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted for the test")

    root = tmp_path_factory.mktemp("interrupted")
    (root / "s.inc").write_text(SPEC)
    config = TrainConfig(output=root / "m.keras", epochs=3, steps_per_epoch=2, batch_size=4, verbose=0,
                         tensorboard=False, bn_recalibrate="off", callbacks=[Interrupt()])
    with pytest.raises(RuntimeError, match="interrupted for the test"):
        train(load(root / "s.inc"), config)
    assert sorted(p.name for p in (root / "m.backup").iterdir()) == [
        "latest.weights.h5", "latest.weights.h5.bkp", "training_metadata.json", "training_metadata.json.bkp"]
    return root


@pytest.fixture
def run(interrupted, tmp_path, monkeypatch):
    """A fresh copy of the interrupted run, the working directory."""
    for name in ("s.inc", "m.log.csv"):
        shutil.copy(interrupted / name, tmp_path / name)
    shutil.copytree(interrupted / "m.backup", tmp_path / "m.backup")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _resume(capsys, spec="s.inc"):
    return Cli(capsys)("train", spec, *ARGS, "-o", "m.keras").code_output


def _refused(run, code, text, damaged, before_keras=True):
    assert code == 1, text
    assert f"cannot resume: m.backup/{damaged}" in text
    assert "Traceback" not in text and "bug" not in text
    assert ("resuming after epoch" not in text) == before_keras  # the files are checked before Keras loads
    assert "delete m.backup to start afresh (without --resume)" in text
    assert not (run / "m.keras").exists() and (run / "m.backup").is_dir()


def test_missing_weights_are_refused(run, capsys):
    """The issue's case: the weights in m.backup/ went missing."""
    (run / "m.backup" / "latest.weights.h5").unlink()
    code, text = _resume(capsys)
    _refused(run, code, text, "latest.weights.h5 is missing (the metadata says 2 epochs had finished)")


def test_truncated_weights_are_refused_not_replaced_by_the_older_copy(run, capsys):
    """Keras alone would fall back to latest.weights.h5.bkp (the epoch before) and carry on."""
    weights = run / "m.backup" / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, text = _resume(capsys)
    _refused(run, code, text, "latest.weights.h5 is damaged")
    assert "continue from the epoch before: Keras kept it as the two .bkp files there" in text
    for name in ("latest.weights.h5", "training_metadata.json"):  # the hint's way out works
        (run / "m.backup" / f"{name}.bkp").replace(run / "m.backup" / name)
    code, text = _resume(capsys)
    assert code == 0 and "resuming after epoch 1 of 3" in text and (run / "m.keras").is_file()


@pytest.mark.parametrize("meta, says", [
    (None, "training_metadata.json is missing"),
    ('{"epoch": 2', "training_metadata.json is damaged"),
    ('{"epoch": "2", "batch": 0}', "training_metadata.json is damaged: it must say how many epochs finished"),
    ('[2]', "training_metadata.json is damaged: it must say how many epochs finished")])
def test_bad_metadata_is_refused(run, capsys, meta, says):
    path = run / "m.backup" / "training_metadata.json"
    if meta is None:
        path.unlink()
    else:
        path.write_text(meta)
    code, text = _resume(capsys)
    _refused(run, code, text, says)


@pytest.mark.parametrize("older", ["training_metadata.json", "latest.weights.h5"])
def test_weights_and_metadata_of_different_epochs_are_refused(run, capsys, older):
    """A run killed between Keras' two writes (weights, then metadata) leaves them an epoch apart:
    here one of the two is the previous epoch's copy (.bkp)."""
    (run / "m.backup" / f"{older}.bkp").replace(run / "m.backup" / older)
    code, text = _resume(capsys)
    epochs, steps = (1, 4) if older == "training_metadata.json" else (2, 2)
    _refused(run, code, text,
             f"training_metadata.json says {epochs} epochs had finished, but latest.weights.h5 "
             f"holds the state after {steps} training steps (2 per epoch)", before_keras=False)


def test_a_damaged_log_is_refused(run, capsys):
    (run / "m.log.csv").write_text("epoch,loss\nzero,0.5\n")
    code, text = _resume(capsys)
    assert code == 1 and "cannot resume: m.log.csv is damaged" in text and not (run / "m.keras").exists()


def test_weights_of_another_network_are_refused(run, capsys):
    """A backup that loads only in part (the spec changed since) is not resumed from."""
    (run / "s.inc").write_text(SPEC.replace("conv(4, 3)", "conv(6, 3)"))
    code, text = _resume(capsys)
    _refused(run, code, text, "latest.weights.h5 does not restore the network being trained",
             before_keras=False)
    assert len((run / "m.log.csv").read_text().splitlines()) == 3  # header + the two finished epochs


def test_an_intact_backup_restores_exactly_what_was_saved(run, capsys):
    """The weights and optimizer state the model starts the third epoch with are the saved ones."""
    import h5py
    import keras

    from incdsl.train import TrainConfig, train

    saved = []
    with h5py.File(run / "m.backup" / "latest.weights.h5") as f:
        f.visititems(lambda _, obj: saved.append(np.asarray(obj)) if isinstance(obj, h5py.Dataset) else None)
    seen = {}

    class Look(keras.callbacks.Callback):  # runs after the restore (the backup callback comes first)
        def on_train_begin(self, logs=None):
            seen["weights"] = [np.asarray(w) for w in self.model.get_weights()]
            seen["step"] = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    config = TrainConfig(output=run / "m.keras", epochs=3, steps_per_epoch=2, batch_size=4, verbose=0,
                         tensorboard=False, bn_recalibrate="off", resume=True, callbacks=[Look()])
    result = train(load(run / "s.inc"), config)
    assert result.initial_epoch == 2 and result.epochs_run == 1
    assert seen["step"] == 4  # two epochs of two steps: the optimizer's state came back
    for w in seen["weights"]:
        assert any(s.shape == w.shape and np.array_equal(s, w) for s in saved)


def test_a_refused_resume_keeps_the_whole_log(run, capsys):
    """Review of issue 24: metadata one epoch behind its weights is refused when Keras restores the
    backup, and that refusal used to come after the log had been cut back to the metadata's epochs
    (rows 0, 1 -> row 0). The log is cut only once the backup has restored."""
    (run / "m.backup" / "training_metadata.json.bkp").replace(run / "m.backup" / "training_metadata.json")
    before = (run / "m.log.csv").read_text()
    assert [r.split(",")[0] for r in before.split()[1:]] == ["0", "1"]
    code, text = _resume(capsys)
    assert code == 1 and "cannot resume" in text
    assert (run / "m.log.csv").read_text() == before


@pytest.mark.parametrize("log", ["missing", "short"])
def test_a_missing_or_short_log_is_refused(run, capsys, log):
    """A resumed run's log must hold a row for each finished epoch (else it reports epochs 0, 3, 4)."""
    if log == "missing":
        (run / "m.log.csv").unlink()
    else:
        lines = (run / "m.log.csv").read_text().splitlines(keepends=True)
        (run / "m.log.csv").write_text("".join(lines[:2]))  # the header and epoch 0's row
    code, text = _resume(capsys)
    assert code == 1 and not (run / "m.keras").exists(), text
    assert (
        "m.log.csv is missing" if log == "missing" else "m.log.csv holds epochs 0, but the backup") in text


def test_a_resumed_run_logs_each_epoch_once(run, capsys):
    code, text = _resume(capsys)
    assert code == 0, text
    assert [r.split(",")[0] for r in (run / "m.log.csv").read_text().split()[1:]] == ["0", "1", "2"]


def test_a_save_killed_after_its_new_backup_was_complete_is_finished_and_resumed(run, capsys):
    """Issue 31 item 4: the backup is written under staged names and renamed into place
    (incdsl/train/backup_write.py). Here the run was killed while saving epoch 2, after the new
    weights and metadata were complete and the previous pair had become the .bkp pair, before the
    renames into place: --resume finishes them and continues after epoch 2."""
    from incdsl.train.backup_write import STAGED_METADATA, STAGED_WEIGHTS
    backup = run / "m.backup"
    (backup / "latest.weights.h5").replace(backup / STAGED_WEIGHTS)
    (backup / "training_metadata.json").replace(backup / STAGED_METADATA)
    code, text = _resume(capsys)
    assert code == 0, text
    assert "completed the backup after epoch 2 that the interrupted run was writing" in text
    assert "resuming after epoch 2 of 3" in text and (run / "m.keras").is_file()


def test_a_save_killed_before_its_new_backup_was_complete_resumes_from_the_old_one(run, capsys):
    """Killed while writing the metadata of epoch 3: the staged files are deleted, the backup of
    epoch 2 (untouched) is resumed from."""
    from incdsl.train.backup_write import STAGED_METADATA, STAGED_WEIGHTS
    backup = run / "m.backup"
    (backup / STAGED_WEIGHTS).write_bytes((backup / "latest.weights.h5").read_bytes())
    (backup / STAGED_METADATA).write_text('{"epoch": 3, "bat')
    code, text = _resume(capsys)
    assert code == 0, text
    assert "completed the backup" not in text and "resuming after epoch 2 of 3" in text
