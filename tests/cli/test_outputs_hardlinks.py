"""Issue 29 item 1 (fourth bullet): an output path that is a hard link to an input (the spec, a
`use`d file, `--weights`, the model being imported) is refused by every command that writes, as
the same path is: compared by (st_dev, st_ino), not by name. Every refusal comes before any work."""
from __future__ import annotations

import os

import pytest

from incdsl.cli.main import main

LIB = "module m() { conv(4, 1) }\n"
SPEC = 'use "lib.inc"\nnetwork t() {\n  input 8x8x3\n  m() -> gap -> dense(2)\n}\n'
WEIGHTS = b"PK\x03\x04 pretrained weights"


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib.inc").write_text(LIB)
    (tmp_path / "s.inc").write_text(SPEC)
    (tmp_path / "w.keras").write_bytes(WEIGHTS)
    (tmp_path / "m.onnx").write_bytes(b"an onnx model")
    return tmp_path


def _unchanged(root):
    assert (root / "lib.inc").read_text() == LIB and (root / "s.inc").read_text() == SPEC
    assert (root / "w.keras").read_bytes() == WEIGHTS and (root / "m.onnx").read_bytes() == b"an onnx model"


COMMANDS = [  # (command line, the output to hard-link, the inputs it reads)
    (["compile", "s.inc", "--to", "dot", "-o", "out.dot"], "out.dot", ["s.inc", "lib.inc"]),
    (["compile", "s.inc", "--to", "onnx", "--weights", "w.keras", "-o", "out.onnx"], "out.onnx",
     ["s.inc", "lib.inc", "w.keras"]),
    (["train", "s.inc", "--data", "synthetic", "--weights", "w.keras", "-o", "out.keras"], "out.keras",
     ["s.inc", "lib.inc", "w.keras"]),
    (["train", "s.inc", "--data", "synthetic", "--weights", "w.keras", "-o", "o.keras"], "o.best.keras",
     ["s.inc", "lib.inc", "w.keras"]),
    (["import", "m.onnx", "-o", "out.inc"], "out.inc", ["m.onnx"]),
    (["import", "m.onnx", "--weights-out", "out.keras"], "out.keras", ["m.onnx"])]


@pytest.mark.parametrize("command, output, source", [(c, o, s) for c, o, reads in COMMANDS for s in reads])
def test_an_output_hard_linked_to_an_input_is_refused(files, capsys, command, output, source):
    os.link(files / source, files / output)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"cannot write {output}: it is an input of this command ({source})" in err
    _unchanged(files)
    assert os.path.samefile(files / source, files / output)  # still one file: nothing replaced it


def test_fmt_refuses_a_spec_with_another_name(files, capsys):
    """fmt writes its input by design, through a new file renamed onto the name: for a file with
    hard links that would leave the other names with the old text, so it is refused."""
    messy = "network n() {\n      input 8x8x3\n  relu\n}\n"
    (files / "a.inc").write_text(messy)
    os.link(files / "a.inc", files / "b.inc")
    assert main(["fmt", "a.inc"]) == 1
    assert "cannot rewrite a.inc: it has 2 hard links" in capsys.readouterr().err
    assert (files / "a.inc").read_text() == messy and os.path.samefile(files / "a.inc", files / "b.inc")
    (files / "b.inc").unlink()
    assert main(["fmt", "a.inc"]) == 0 and (files / "a.inc").read_text() != messy
