"""Cases a hostile review of issue 12 found after it landed: a run's TensorBoard folder, stale temp
cleanup, and a damaged parser cache never cost the user a file or a hang."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from incdsl.cli.main import main
from incdsl.io import clean_stale

from nets import PLAIN_LOGITS


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.inc").write_text(PLAIN_LOGITS)
    return tmp_path


def test_train_never_deletes_a_tensorboard_folder_it_did_not_write(spec, capsys):
    (spec / "z.tb" / "mine").mkdir(parents=True)
    (spec / "z.tb" / "mine" / "notes.txt").write_text("precious")
    (spec / "k.tb").mkdir()
    (spec / "k.tb" / "spec.inc").write_text(PLAIN_LOGITS)  # the spec being trained lives there
    assert main(["train", "s.inc", "--data", "synthetic", "--epochs", "1", "-o", "z.keras"]) == 2
    assert "z.tb holds mine/notes.txt" in capsys.readouterr().err
    assert main(["train", "k.tb/spec.inc", "--data", "synthetic", "--epochs", "1", "-o", "k.keras"]) == 2
    assert (spec / "z.tb" / "mine" / "notes.txt").read_text() == "precious"
    assert (spec / "k.tb" / "spec.inc").read_text() == PLAIN_LOGITS
    assert not (spec / "z.keras").exists() and not (spec / "k.keras").exists()


def test_a_tensorboard_path_that_is_a_file_or_a_link_is_refused_before_training(spec, capsys):
    (spec / "w.tb").write_text("x")
    (spec / "y.tb").symlink_to("elsewhere")
    assert main(["train", "s.inc", "--data", "synthetic", "--epochs", "1", "-o", "w.keras"]) == 2
    assert "w.tb: it is not a folder" in capsys.readouterr().err
    assert main(["train", "s.inc", "--data", "synthetic", "--epochs", "1", "-o", "y.keras"]) == 2
    assert "y.tb: it is a symbolic link" in capsys.readouterr().err
    assert (spec / "w.tb").read_text() == "x" and os.readlink(spec / "y.tb") == "elsewhere"


def test_stale_temp_cleanup_removes_only_our_regular_files(tmp_path):
    dead = 999_999_7  # no such process
    folder = tmp_path / f".incdsl-{dead}-dd.x.dot"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "f").write_text("data")
    link = tmp_path / f".incdsl-{dead}-ee.x.dot"
    link.symlink_to(tmp_path / "target")
    stale = tmp_path / f".incdsl-{dead}-ff.x.dot"
    stale.write_text("left by a killed run")
    removed = clean_stale(tmp_path, "x.dot")
    assert removed == [stale] and not stale.exists()
    assert (folder / "sub" / "f").read_text() == "data" and link.is_symlink()


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_damaged_parser_cache_entry_neither_crashes_nor_hangs(tmp_path, kind):
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    (tmp_path / "g.inc").write_text(PLAIN_LOGITS)
    # build the cache once, then replace the tables file with a folder or a FIFO
    first = subprocess.run([sys.executable, "-m", "incdsl", "check", "g.inc"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    (tables,) = list((cache / "incdsl").glob("grammar-*.json"))
    tables.unlink()
    tables.mkdir() if kind == "folder" else os.mkfifo(tables)
    again = subprocess.run([sys.executable, "-m", "incdsl", "check", "g.inc"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "ok: network t" in again.stdout, again.stderr


def test_a_zip_bomb_as_weights_is_refused_from_the_zip_directory(tmp_path, capsys):
    import zipfile
    bomb = tmp_path / "zb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", " " * (100 * 1024 * 1024))  # 100 MiB of spaces, ~100 KB zipped
        z.writestr("model.weights.h5", "x")
    (tmp_path / "g.inc").write_text(PLAIN_LOGITS)
    code = main(["compile", str(tmp_path / "g.inc"), "--to", "onnx", "--no-verify", "--weights", str(bomb),
                 "-o", str(tmp_path / "g.onnx")])
    assert code == 1 and "would inflate to 104,857,600 bytes" in capsys.readouterr().err
    assert not (tmp_path / "g.onnx").exists()
