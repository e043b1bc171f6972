"""Outputs are written atomically, and paths that cannot be written or read are clean errors."""
import pytest

from incdsl.cli.main import main
from incdsl.errors import UsageError
from incdsl.io import atomic_path, write_atomic

from conftest import SPECS


def test_a_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "x.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []
    write_atomic(out, "whole")
    assert out.read_text() == "whole" and list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize("where", ["dir", "under_file"])
def test_unwritable_output_paths_are_usage_errors(tmp_path, where, capsys):
    (tmp_path / "f").write_text("")
    target = tmp_path if where == "dir" else tmp_path / "f" / "x.dot"
    with pytest.raises(UsageError, match="cannot write"):
        with atomic_path(target):
            pass
    code = main(["compile", str(SPECS / "googlenet.inc"), "--to", "dot", "-o", str(target)])
    assert code == 2 and "cannot write" in capsys.readouterr().err


def test_a_device_file_is_refused_not_read(capsys):
    assert main(["check", "/dev/zero"]) == 1  # reading it would never end
    assert "not a regular file" in capsys.readouterr().err
