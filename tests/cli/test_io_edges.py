"""incdsl/io.py's refusals and writes at the edges that `tools/mutation.sh io` found unpinned: an
output that is a hard link to an input passed as `inputs` (the same file under another name,
named in the message), what `inputs_of` keeps, the kind of a non-regular file in the message,
which temp files of other processes `clean_stale` keeps, the mode of a new file under the umask,
and bytes written as they are. Quick; Linux (FIFOs, Unix sockets, /dev/null)."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
from types import SimpleNamespace

import pytest

from incdsl import io as inc_io
from incdsl.errors import UsageError


@pytest.fixture(autouse=True)
def no_noted_inputs():
    inc_io.forget_inputs()
    yield
    inc_io.forget_inputs()


def test_inputs_of_keeps_the_spec_files_and_the_paths():
    net = SimpleNamespace(input_files=("a.inc", "lib.inc"))
    assert inc_io.inputs_of(net, "w.keras", None, {"conv": {}}, b"raw") == ("a.inc", "lib.inc", "w.keras")
    assert inc_io.inputs_of(object(), "w.h5") == ("w.h5",)  # no input_files: a weights dict's owner


def test_a_hard_link_to_an_input_is_refused_and_named(tmp_path):
    spec = tmp_path / "net.inc"
    spec.write_text("network n { input 4x4x3 }")
    link = tmp_path / "out.onnx"
    os.link(spec, link)
    with pytest.raises(UsageError, match=rf"cannot write {link}: it is an input of this command \({spec}\); "
                                         r"writing it would destroy it"):
        inc_io.check_output(link, inputs=[spec])
    # the same path as given: no second name in parentheses
    with pytest.raises(UsageError, match=rf"cannot write {spec}: it is an input of this command; writing"):
        inc_io.check_output(spec, inputs=[spec])
    # a missing input, and an existing file that is another one, are not the output
    other = tmp_path / "other.onnx"
    other.write_text("x")
    assert inc_io.check_output(other, inputs=[tmp_path / "gone.inc", spec]) == other
    assert inc_io.check_output(tmp_path / "new.onnx", inputs=[spec]) == tmp_path / "new.onnx"
    with pytest.raises(UsageError, match="writing it would destroy it"):
        inc_io.write_atomic(link, "replaced", inputs=[spec])
    assert spec.read_text() == "network n { input 4x4x3 }"


def test_a_noted_input_under_another_name_is_named(tmp_path):
    spec = tmp_path / "net.inc"
    spec.write_text("x")
    inc_io.note_input(spec)
    other_name = tmp_path / "sub" / ".." / "net.inc"
    (tmp_path / "sub").mkdir()
    with pytest.raises(UsageError, match=rf"it is an input of this command \({spec}\)"):
        inc_io.check_output(other_name)


def test_non_regular_files_are_named_by_kind(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match=r"it is a FIFO \(named pipe\), not a regular file"):
        inc_io.check_output(fifo)
    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        with pytest.raises(UsageError, match="it is a socket, not a regular file"):
            inc_io.check_output(sock_path)
    finally:
        s.close()
    with pytest.raises(UsageError, match="it is a device node, not a regular file"):
        inc_io.check_output("/dev/null")


def test_clean_stale_keeps_live_processes_files(tmp_path):
    name = "m.onnx"
    child = subprocess.Popen(["sleep", "60"])  # a live process of ours (never signal a stranger's)
    try:
        mine = tmp_path / f".incdsl-{os.getpid()}-00000000.{name}"   # this process: alive
        live = tmp_path / f".incdsl-{child.pid}-00000000.{name}"
        # above pid_max's default: no such process
        dead = tmp_path / f".incdsl-{2**22 - 1}-00000000.{name}"
        absurd = tmp_path / f".incdsl-{2**32}-00000000.{name}"       # not even a pid_t: never a process
        zero = tmp_path / f".incdsl-0-00000000.{name}"                # kill(0, 0) is our process group
        other = tmp_path / f".incdsl-{2**22 - 1}-00000000.x.onnx"    # another output's temp file
        for p in (mine, live, dead, absurd, zero, other):
            p.write_text("partial")
        removed = inc_io.clean_stale(tmp_path, name)
        assert sorted(removed) == sorted([dead, absurd, zero])
        assert mine.exists() and live.exists() and other.exists()
        assert not dead.exists() and not absurd.exists() and not zero.exists()
    finally:
        child.kill()
        child.wait()


def test_a_new_file_gets_the_umask_mode_and_an_old_one_keeps_its_own(tmp_path):
    old = os.umask(0o027)
    try:
        new = tmp_path / "new.txt"
        inc_io.write_atomic(new, "text")
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o640
        assert os.umask(0o027) == 0o027  # the umask is left as it was
    finally:
        os.umask(old)
    kept = tmp_path / "kept.txt"
    kept.write_text("old")
    os.chmod(kept, 0o604)
    inc_io.write_atomic(kept, b"\x00\xffbytes")
    assert kept.read_bytes() == b"\x00\xffbytes" and stat.S_IMODE(os.stat(kept).st_mode) == 0o604
