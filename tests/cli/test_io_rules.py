"""incdsl/io.py's rules pinned one by one, each with the exact message a user reads (README,
"Errors": an output never replaces an input, a non-regular file or a read-only file; a failed
write leaves nothing). Found unpinned by `tools/mutation.sh io` (mutmut): the names that end in a
directory, the input noted by `note_input` and then deleted or hard-linked, `rewrite=True` (fmt),
a file mode without write bits (root ignores permissions: the bits are the rule), a path under a
file, a symlink loop in a parent, a writer that leaves a folder, and which temp files
`clean_stale` removes. Quick; Linux."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from incdsl import io as inc_io
from incdsl.errors import UsageError


@pytest.fixture(autouse=True)
def no_noted_inputs():
    inc_io.forget_inputs()
    yield
    inc_io.forget_inputs()


def refused(target, **kw) -> str:
    """check_output's message for a refused `target`."""
    with pytest.raises(UsageError) as e:
        inc_io.check_output(target, **kw)
    return str(e.value)


def test_empty_and_directory_names_are_refused_with_their_reason(tmp_path):
    assert refused("") == "the output file name is empty"
    for name in ("out/", f"{tmp_path}/sub/.", f"{tmp_path}/sub/..", ".", ".."):
        assert refused(name) == (f"cannot write {name}: the name ends in '/', so it names a directory; "
                                 f"give a file name"), name
    # names that only contain those characters are files
    for name in ("a.b", "..a", "x..", ".hidden"):
        assert inc_io.check_output(tmp_path / name) == tmp_path / name


def test_a_noted_input_is_refused_by_hard_link_and_after_it_was_deleted(tmp_path):
    spec = tmp_path / "net.inc"
    spec.write_text("network n { input 4x4x3 }")
    inc_io.note_input(spec)
    link = tmp_path / "out.onnx"
    os.link(spec, link)
    assert refused(link) == (f"cannot write {link}: it is an input of this command ({spec}); "
                             f"writing it would destroy it")
    assert refused(
        spec) == f"cannot write {spec}: it is an input of this command; writing it would destroy it"
    # fmt rewrites its own input: allowed, through a symlink to the file it names
    assert inc_io.check_output(spec, rewrite=True) == spec
    sym = tmp_path / "sym.inc"
    sym.symlink_to(spec)
    assert inc_io.check_output(sym, rewrite=True) == spec
    # an input removed while the command ran is still not a place for its output
    os.unlink(link)
    spec.unlink()
    assert refused(
        spec) == f"cannot write {spec}: it is an input of this command; writing it would destroy it"
    assert refused(tmp_path / "sub" / ".." / "net.inc") == (
        f"cannot write {tmp_path / 'sub' / '..' / 'net.inc'}: it is an input of this command ({spec}); "
        f"writing it would destroy it")
    assert inc_io.check_output(spec, rewrite=True) == spec


def test_an_input_given_as_inputs_that_does_not_exist_yet_is_refused_by_path(tmp_path):
    (tmp_path / "sub").mkdir()
    target = tmp_path / "sub" / ".." / "w.keras"
    assert refused(target, inputs=[tmp_path / "w.keras"]) == (
        f"cannot write {target}: it is an input of this command ({tmp_path / 'w.keras'}); "
        f"writing it would destroy it")
    assert inc_io.check_output(target, rewrite=True, inputs=[tmp_path / "w.keras"]) == target.resolve()


@pytest.mark.parametrize("mode", [0o444, 0o555, 0o400, 0o100])
def test_a_file_without_write_bits_is_read_only_even_for_root(tmp_path, mode):
    f = tmp_path / "ro.onnx"
    f.write_text("keep")
    os.chmod(f, mode)
    assert refused(f) == f"cannot write {f}: the file is read-only"
    with pytest.raises(UsageError):
        inc_io.write_atomic(f, "new")
    assert f.read_text() == "keep"
    for writable in (0o200, 0o020, 0o002):
        os.chmod(f, writable | 0o444)
        assert inc_io.check_output(f) == f


def test_a_path_under_a_file_names_the_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert refused(f / "out.onnx") == f"cannot write {f / 'out.onnx'}: {f} is a file, not a directory"
    assert refused(f / "deeper" / "out.onnx") == (f"cannot write {f / 'deeper' / 'out.onnx'}: {f} is a file, "
                                                  f"not a directory")


def test_a_symlink_loop_in_a_parent_is_named(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    target = tmp_path / "a" / "out.onnx"
    assert refused(target) == f"cannot write {target}: Too many levels of symbolic links"


def test_a_parent_that_becomes_a_symlink_loop_after_the_check_is_named(tmp_path, monkeypatch):
    """The parents are resolved after the target's own lstat; a loop that appears in between (another
    process renames links) is said as Python reports it (RuntimeError before 3.13, OSError after)."""
    target = tmp_path / "a" / "out.onnx"
    looped = f"Symlink loop from '{tmp_path / 'a'}'"

    def loop(self, strict=False):
        raise RuntimeError(looped)

    monkeypatch.setattr(Path, "resolve", loop)
    assert refused(target) == f"cannot write {target}: {looped}"

    def eloop(self, strict=False):
        raise OSError(40, "Too many levels of symbolic links", str(self))

    monkeypatch.setattr(Path, "resolve", eloop)
    assert refused(target) == f"cannot write {target}: Too many levels of symbolic links"


def test_the_temp_file_of_process_1_is_kept(tmp_path):
    """pid 1 (init, or a container's first process) always runs: its temp file is not stale."""
    temp = tmp_path / ".incdsl-1-00000000.m.onnx"
    temp.write_text("partial")
    assert inc_io.clean_stale(tmp_path, "m.onnx") == [] and temp.exists()


def test_a_folder_that_cannot_be_removed_does_not_hide_the_writers_error():
    """The temp folder a failed writer left is removed as far as it can be; what cannot be (a user's
    read-only sub-folder) must not replace the writer's own error with a PermissionError. As the
    user nobody (root may remove anything), in a forked child; once here first, so that tools that
    trace which test reaches which function (mutmut) see this one reach the removal."""
    if os.getuid() != 0:
        pytest.fail("this test drops to the user nobody: run it as root (the CI container is)")

    def fails_in_a_locked_folder(folder: Path) -> bool:
        try:
            with inc_io.atomic_path(folder / "model.keras") as tmp:
                tmp.mkdir()
                (tmp / "locked").mkdir()
                (tmp / "locked" / "part.bin").write_bytes(b"x")
                os.chmod(tmp / "locked", 0o500)
                raise ValueError("writer failed")
        except ValueError as e:
            return str(e) == "writer failed" and not (folder / "model.keras").exists()
        return False

    with tempfile.TemporaryDirectory(dir="/tmp") as here, tempfile.TemporaryDirectory(dir="/tmp") as folder:
        assert fails_in_a_locked_folder(Path(here))
        assert list(Path(here).iterdir()) == []  # as root the whole folder goes
        os.chmod(folder, 0o777)
        assert _as_nobody(lambda: fails_in_a_locked_folder(Path(folder)))
        for d, _, _ in os.walk(folder):  # let TemporaryDirectory remove what nobody could not
            os.chmod(d, 0o700)


def test_a_writer_that_fails_after_making_a_folder_leaves_nothing(tmp_path):
    target = tmp_path / "new" / "model.keras"
    seen = []
    with pytest.raises(ValueError, match="writer failed"):
        with inc_io.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "part.bin").write_bytes(b"x")
            seen.append(tmp)
            raise ValueError("writer failed")
    assert not seen[0].exists() and list(tmp_path.iterdir()) == []


def test_clean_stale_removes_every_dead_temp_and_nothing_else(tmp_path):
    """Many other entries around the stale temp files: a scan that stopped at the first entry it
    skips would leave some behind. A symlink named like a temp file is never followed or removed."""
    name = "m.onnx"
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid of ours that no longer runs
    stale = [tmp_path / f".incdsl-{gone.pid}-{i:08x}.{name}" for i in range(6)]
    for p in stale:
        p.write_text("partial")
    keep = [tmp_path / f"file{i}.txt" for i in range(40)]
    for p in keep:
        p.write_text("keep")
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    links = [tmp_path / f".incdsl-{gone.pid}-ffff000{i}.{name}" for i in range(6)]
    for link in links:
        link.symlink_to(target)
    folder = tmp_path / f".incdsl-{gone.pid}-eeee0000.{name}"
    folder.mkdir()
    assert sorted(inc_io.clean_stale(tmp_path, name)) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep) and all(link.is_symlink() for link in links) and folder.is_dir()
    assert target.read_text() == "precious"


def _default_signals() -> None:
    # a child of a shell started under nohup (a long mutation run) would ignore SIGHUP: any signal
    # the liveness check sent must end it
    for s in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(s, signal.SIG_DFL)


def test_checking_a_live_process_sends_it_no_signal(tmp_path):
    child = subprocess.Popen(["sleep", "60"], preexec_fn=_default_signals)
    try:
        temp = tmp_path / f".incdsl-{child.pid}-00000000.m.onnx"
        temp.write_text("partial")
        assert inc_io.clean_stale(tmp_path, "m.onnx") == []
        # a signal is delivered a moment later: give it the time to end the process
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)
        assert temp.exists()
    finally:
        child.kill()
        child.wait()


def test_another_users_live_process_keeps_its_temp_file():
    """As a user who may not signal the process (os.kill raises PermissionError), the process is
    taken as alive: run in a forked child that drops to the user `nobody`, on a temp file of its
    own named after a process of root's (this one)."""
    if os.getuid() != 0:
        pytest.fail("this test drops to the user nobody: run it as root (the CI container is)")
    nobody = 65534
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:  # pytest's tmp_path is root's alone (0700)
        os.chmod(folder, 0o777)
        temp = Path(folder) / f".incdsl-{os.getpid()}-00000000.m.onnx"
        temp.write_text("partial")
        os.chown(temp, nobody, nobody)
        # here first (a file of this process, named after it: alive), so that tools that trace
        # which test reaches which function (mutmut) see this one reach the liveness check
        assert inc_io.clean_stale(Path(folder), "m.onnx") == []
        assert _as_nobody(lambda: inc_io.clean_stale(Path(folder), "m.onnx") == [] and temp.exists())
        assert temp.exists()


def test_an_entry_that_vanishes_during_the_scan_is_skipped(tmp_path, monkeypatch):
    """Another process may remove a temp file between the listing and its stat: that entry is
    skipped and the scan goes on to the next ones."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f".incdsl-{gone.pid}-00000001.m.onnx"
    stale.write_text("partial")

    class Vanished:
        name, path = f".incdsl-{gone.pid}-00000000.m.onnx", str(tmp_path / "vanished")

        def stat(self, follow_symlinks=True):
            raise FileNotFoundError(2, "No such file or directory", self.path)

    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda folder: [Vanished(), *real(folder)])
    assert inc_io.clean_stale(tmp_path, "m.onnx") == [stale] and not stale.exists()


def _as_nobody(check) -> bool:
    """Run `check()` in a forked child as the user nobody; whether it returned True."""
    nobody = 65534
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.setgid(nobody)
            os.setuid(nobody)
            code = 0 if check() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def test_a_new_file_gets_exactly_rw_under_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        new = tmp_path / "new.txt"
        inc_io.write_atomic(new, "text")
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o664
    finally:
        os.umask(old)
