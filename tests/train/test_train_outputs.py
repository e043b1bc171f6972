"""Issue 24 items 1 and 2: `incdsl train` never replaces or deletes an input, nor a side-output
folder it did not make. The refusals come before Keras loads (quick); the runs that must leave a
folder alone train for one step (slow)."""
from __future__ import annotations

import json
import os

import pytest

from incdsl.train.outputs import MARK

from nets import PLAIN_LOGITS

SPEC = PLAIN_LOGITS
TRAIN = ["--data", "synthetic", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "--progress",
         "off",
         "--bn-recalibrate", "off"]


@pytest.fixture
def w(tmp_path, monkeypatch):
    """A folder W/ beside the spec s.inc, the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.inc").write_text(SPEC)
    (tmp_path / "W").mkdir()
    return tmp_path / "W"


# --- item 1: every input of the run is refused as any of its outputs ---------------------------

@pytest.mark.parametrize("weights", ["W/m.best.keras", "W/m.keras"])
def test_weights_are_never_an_output(w, cli, weights):
    """The issue's exact cases: `--weights W/m.best.keras -o W/m.keras` and `--weights W/m.keras
    -o W/m.keras` exited 0 and replaced the weights."""
    for name in ("m.keras", "m.best.keras"):
        (w / name).write_bytes(b"trained weights " + name.encode())
    code, text = cli("train", "s.inc", "--data", "synthetic", "--epochs", "1", "--weights", weights, "-o",
                     "W/m.keras").code_output
    assert code == 2
    assert f"cannot write {weights}: it is an input of this command" in text
    assert "training" not in text
    for name in ("m.keras", "m.best.keras"):
        assert (w / name).read_bytes() == b"trained weights " + name.encode()


@pytest.mark.parametrize("side", ["m.best.keras", "m.log.csv"])
def test_the_spec_and_its_use_d_file_are_never_a_side_output(w, cli, side):
    (w.parent / "lib.inc").write_text("module m() { conv(4, 1) }\n")
    (w.parent / "s.inc").write_text('use "lib.inc"\n' + SPEC.replace("conv(4, 3)", "m()"))
    for given in ("s.inc", "lib.inc"):
        (w / side).unlink(missing_ok=True)
        os.link(w.parent / given, w / side)  # the side output is the input under another name
        code, text = cli("train", "s.inc", *TRAIN, "-o", "W/m.keras").code_output
        assert code == 2 and f"cannot write W/{side}: it is an input of this command ({given})" in text
    assert "m()" in (w.parent / "s.inc").read_text() and "conv(4, 1)" in (w.parent / "lib.inc").read_text()
    assert not (w / "m.keras").exists()


@pytest.mark.parametrize("folder", ["m.tb", "m.backup"])
def test_the_data_folder_is_never_a_side_output_folder(w, cli, folder):
    """`--data W/m.tb -o W/m.keras` would have the run delete its own images."""
    for name in ("a", "b"):
        (w / folder / name).mkdir(parents=True)
        (w / folder / name / "x.png").write_bytes(b"image")
    code, text = cli("train", "s.inc", "--data", f"W/{folder}", "-o", "W/m.keras").code_output
    assert code == 2 and f"W/{folder}" in text and "input" in text
    assert (w / folder / "a" / "x.png").read_bytes() == b"image"


def test_no_output_goes_into_the_data_folder(w, cli):
    """A model.tb/ or model.backup/ in the data folder would be a class of the next run."""
    for name in ("a", "b"):
        (w / name).mkdir()
    code, text = cli("train", "s.inc", "--data", "W", "-o", "W/m.keras").code_output
    assert code == 2 and "cannot write W/m.keras: it is inside the data folder" in text
    assert sorted(p.name for p in w.iterdir()) == ["a", "b"]


def test_a_side_output_folder_holding_an_input_is_refused(w, cli):
    (w / "m.tb").mkdir()
    os.link(w.parent / "s.inc", w / "m.tb" / "events.out.tfevents.1")  # a hard link into the folder
    code, text = cli("train", "s.inc", "--data", "synthetic", "-o", "W/m.keras").code_output
    assert (
        code == 2
        and "cannot write W/m.tb: W/m.tb/events.out.tfevents.1 in it is an input of this run" in text
    )
    assert (w.parent / "s.inc").read_text() == SPEC


# --- item 2: a side-output folder is replaced only when a run of incdsl train made it ----------

def test_a_backup_folder_that_is_a_link_or_holds_other_files_is_refused(w, cli):
    (w / "elsewhere").mkdir()
    (w / "m.backup").symlink_to("elsewhere")
    code, text = cli("train", "s.inc", "--data", "synthetic", "--resume", "-o", "W/m.keras").code_output
    assert code == 2 and "cannot write W/m.backup: it is a symbolic link" in text
    (w / "n.backup").mkdir()
    (w / "n.backup" / "notes.txt").write_text("mine")
    code, text = cli("train", "s.inc", "--data", "synthetic", "--resume", "-o", "W/n.keras").code_output
    assert code == 2 and "W/n.backup holds notes.txt" in text
    assert (w / "n.backup" / "notes.txt").read_text() == "mine" and (w / "m.backup").is_symlink()


def test_a_tensorboard_folder_not_made_by_a_run_is_refused(w, cli):
    """Event files alone do not make it ours: without the mark of a run writing this model, the
    folder is refused, named."""
    (w / "m.tb" / "train").mkdir(parents=True)
    (w / "m.tb" / "train" / "events.out.tfevents.1").write_bytes(b"someone's logs")
    (w / "o.tb").mkdir()
    (w / "o.tb" / MARK).write_text(json.dumps({"model": "other.keras"}))
    for model in ("m", "o"):
        code, text = cli("train", "s.inc", "--data", "synthetic", "-o", f"W/{model}.keras").code_output
        assert (
            code == 2 and f"W/{model}.tb was not made by a run of incdsl train writing {model}.keras" in text
        )
    assert (w / "m.tb" / "train" / "events.out.tfevents.1").read_bytes() == b"someone's logs"


@pytest.mark.slow
def test_no_tensorboard_never_touches_the_tensorboard_folder(w, cli):
    """The issue's case: `--no-tensorboard -o W/m.keras` deleted an existing W/m.tb/; a W/m.tb that
    is a symlink ended in an internal error."""
    (w / "m.tb" / "mine").mkdir(parents=True)
    (w / "m.tb" / "mine" / "notes.txt").write_text("precious")
    (w / "elsewhere").mkdir()
    (w / "l.tb").symlink_to("elsewhere")
    for model in ("m", "l"):
        code, text = cli("train", "s.inc", *TRAIN, "--no-tensorboard", "-o", f"W/{model}.keras").code_output
        assert code == 0, text
        assert (w / f"{model}.keras").is_file()
    assert (w / "m.tb" / "mine" / "notes.txt").read_text() == "precious"
    assert (w / "l.tb").is_symlink() and os.readlink(w / "l.tb") == "elsewhere"


@pytest.mark.slow
def test_the_next_run_of_a_model_replaces_the_logs_its_run_made(w, cli):
    """With logs on (TensorBoard needs TensorFlow), the folder a run made is replaced by the next
    run of the same model."""
    # logs on: the run makes and marks t.tb
    code, text = cli("train", "s.inc", *TRAIN, "-o", "W/t.keras").code_output
    assert code == 0, text
    first = sorted(p.name for p in (w / "t.tb").rglob("events.out.tfevents.*"))
    assert first and json.loads((w / "t.tb" / MARK).read_text()) == {"model": "t.keras"}
    # the next run of t.keras replaces them
    code, text = cli("train", "s.inc", *TRAIN, "-o", "W/t.keras").code_output
    assert code == 0, text
    second = sorted(p.name for p in (w / "t.tb").rglob("events.out.tfevents.*"))
    assert len(second) == len(first) and not set(first) & set(second)


def test_the_library_refuses_the_same_before_keras_loads(w):
    """`incdsl.train.train` checks what the command checks, in the library's words (parameters,
    not flags): the weights as the model, a use'd file inside MODEL.backup/."""
    import incdsl
    from incdsl.errors import UsageError
    from incdsl.train import TrainConfig, train
    (w / "m.keras").write_bytes(b"weights")
    net = incdsl.load(w.parent / "s.inc")
    with pytest.raises(UsageError, match="cannot write .*m.keras: it is an input of this command"):
        train(net, TrainConfig(output=w / "m.keras", weights=str(w / "m.keras")))
    (w / "n.backup").mkdir()
    (w / "n.backup" / "lib.inc").write_text("module m() { conv(4, 1) }\n")
    (w.parent / "u.inc").write_text(f'use "{w / "n.backup" / "lib.inc"}"\n' + SPEC.replace("conv(4, 3)",
                                                                                           "m()"))
    with pytest.raises(UsageError,
                       match=r"n\.backup: it holds .*lib\.inc, an input of this run, which the run "
                                         r"could delete; pick another output"):
        train(incdsl.load(w.parent / "u.inc"), TrainConfig(output=w / "n.keras", resume=True))
    assert (w / "m.keras").read_bytes() == b"weights" and (w / "n.backup" / "lib.inc").exists()
