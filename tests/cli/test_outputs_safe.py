"""Issue 12, items 1-4 and 20: an output never destroys a file, planted code never runs, nothing
is left behind. Each test runs the exact case of the issue."""
import os
import pickle
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from incdsl.cli.main import main
from incdsl.errors import UsageError
from incdsl.io import atomic_path, check_output, clean_stale

from nets import PLAIN32

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def g(plain32_spec, monkeypatch):
    """nets.PLAIN32 as g.inc in the current directory."""
    monkeypatch.chdir(plain32_spec.parent)
    return plain32_spec


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    env.update(extra)
    return env


def _incdsl(*args, cwd, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "incdsl", *args], cwd=cwd, env=env or _env(),
                          capture_output=True, text=True, **kw)


# --- item 1: -o onto the input ---------------------------------------------------------------

@pytest.mark.parametrize("to", ["dot", "svg", "png", "onnx"])
def test_output_onto_the_spec_is_refused(g, to, capsys):
    extra = ["--no-verify"] if to == "onnx" else []
    assert main(["compile", "g.inc", "--to", to, "-o", "g.inc", *extra]) == 2
    err = capsys.readouterr().err
    assert "cannot write g.inc: it is an input of this command" in err
    assert g.read_text() == PLAIN32 and sorted(p.name for p in g.parent.iterdir()) == ["g.inc"]


def test_output_onto_an_imported_file_is_refused(g, capsys):
    (g.parent / "lib").mkdir()
    (g.parent / "lib" / "blocks.inc").write_text("module b() { relu }\n")
    g.write_text('use "lib/blocks.inc"\n' + PLAIN32.replace("gap", "b() -> gap"))
    before = (g.parent / "lib" / "blocks.inc").read_text()
    assert main(["compile", "g.inc", "--to", "dot", "-o", "lib/blocks.inc"]) == 2
    assert "lib/blocks.inc: it is an input of this command" in capsys.readouterr().err
    assert (g.parent / "lib" / "blocks.inc").read_text() == before


@pytest.mark.parametrize("how", ["dotdot", "symlinked_dir", "hard_link", "absolute"])
def test_the_input_is_recognized_through_paths_and_links(g, how, capsys):
    d = g.parent
    if how == "dotdot":
        (d / "sub").mkdir()
        target = "sub/../g.inc"
    elif how == "symlinked_dir":
        (d / "alias").symlink_to(d)
        target = "alias/g.inc"
    elif how == "hard_link":
        os.link(g, d / "same.dot")
        target = "same.dot"
    else:
        target = str(g)
    assert main(["compile", "g.inc", "--to", "dot", "-o", target]) == 2
    assert "it is an input of this command" in capsys.readouterr().err
    assert g.read_text() == PLAIN32


def test_weights_file_is_an_input_too(g, capsys):
    (g.parent / "w.keras").write_bytes(b"PK-not-really")
    assert main(["compile", "g.inc", "--to", "onnx", "--weights", "w.keras", "-o", "w.keras"]) == 2
    assert "w.keras: it is an input" in capsys.readouterr().err
    assert (g.parent / "w.keras").read_bytes() == b"PK-not-really"


# --- item 2: -o onto something that is not a regular file --------------------------------------

@pytest.mark.parametrize("kind", ["device", "fifo", "symlink", "read_only"])
def test_non_regular_or_read_only_targets_are_refused(g, kind, capsys):
    out = g.parent / "out.dot"
    if kind == "device":  # a copy of /dev/null, as the issue made it
        if os.geteuid() != 0:
            pytest.fail("mknod of a device node needs root; run this test as root")
        os.mknod(out, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "fifo":
        os.mkfifo(out)
    elif kind == "symlink":
        (g.parent / "real.dot").write_text("keep")
        out.symlink_to("real.dot")
    else:
        out.write_text("keep")
        out.chmod(0o444)
    before = os.lstat(out)
    assert main(["compile", "g.inc", "--to", "dot", "-o", "out.dot"]) == 2
    assert "cannot write out.dot" in capsys.readouterr().err
    after = os.lstat(out)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    if kind in ("symlink", "read_only"):
        assert out.read_text() == "keep"


def test_dev_null_is_refused_and_dash_still_means_stdout(g, capsys):
    with pytest.raises(UsageError, match="device node"):
        check_output("/dev/null")  # only the check: never try a real write onto the system's /dev/null
    assert main(["compile", "g.inc", "--to", "dot", "-o", "/dev/null"]) == 2
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    capsys.readouterr()
    assert main(["compile", "g.inc", "--to", "dot", "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith('digraph "g"')


def test_trailing_slash_is_refused(g, capsys):  # item 20
    assert main(["compile", "g.inc", "--to", "keras", "-o", "adir.keras/"]) == 2
    assert "ends in '/'" in capsys.readouterr().err
    assert not (g.parent / "adir.keras").exists()


# --- item 3: planted code in the parser's cache never runs ----------------------------------------

class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_planted_in_tmpdir_never_runs(tmp_path, g):
    shared = tmp_path / "shared_tmp"
    shared.mkdir()
    marker = tmp_path / "PWNED"
    # the exact old name: made by Lark's cache=True with the options incdsl passed before the fix
    import tempfile

    from lark import Lark

    import incdsl.frontend.parse as P
    from incdsl.frontend.grammar import LineJoiner
    from incdsl.source import Source
    old = tempfile.tempdir
    tempfile.tempdir = str(shared)
    try:
        Lark.open("grammar.lark", rel_to=P.__file__, parser="lalr", lexer="basic", postlex=LineJoiner(),
                  transformer=P._ToAst(Source("<test>")), keep_all_tokens=True, maybe_placeholders=True,
                  cache=True)
    finally:
        tempfile.tempdir = old
    planted = list(shared.glob(".lark_cache_*.tmp"))
    assert len(planted) == 1  # the real name Lark used
    header = planted[0].read_bytes().split(b"\n", 1)[0]
    planted[0].write_bytes(header + b"\n" + pickle.dumps(_Planted(marker)))
    home = tmp_path / "home"
    home.mkdir()
    env = _env(TMPDIR=str(shared), HOME=str(home), XDG_CACHE_HOME="")
    r = _incdsl("check", "g.inc", cwd=g.parent, env=env)
    assert r.returncode == 0, r.stderr
    assert not marker.exists(), "the planted pickle ran"
    # and the tables went to the private cache instead: a 0700 folder owned by this user, JSON inside
    cache = home / ".cache" / "incdsl"
    st = os.lstat(cache)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].read_bytes().startswith(b"{")


def test_a_shared_or_foreign_cache_folder_is_not_used(tmp_path, g, monkeypatch):
    from incdsl.frontend.grammar_cache import cache_dir
    cache = tmp_path / "xdg" / "incdsl"
    cache.mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache.chmod(0o700)
    assert cache_dir() == cache
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    cache.rmdir()
    cache.symlink_to(tmp_path / "elsewhere")  # a link, even to a private folder: not ours to trust
    assert cache_dir() is None
    cache.unlink()
    cache.mkdir()
    cache.chmod(0o777)  # others could write here: never read it
    assert cache_dir() is None
    r = _incdsl("check", "g.inc", cwd=g.parent, env=_env(XDG_CACHE_HOME=str(tmp_path / "xdg")))
    assert r.returncode == 0 and list(cache.iterdir()) == []  # built in memory, nothing stored there


def test_a_damaged_cache_file_is_rebuilt_not_fatal(tmp_path, g):
    xdg = tmp_path / "xdg"
    env = _env(XDG_CACHE_HOME=str(xdg))
    assert _incdsl("check", "g.inc", cwd=g.parent, env=env).returncode == 0
    (f,) = (xdg / "incdsl").iterdir()
    f.write_text('{"data": {"parser": 1}, "memo": {}}')
    r = _incdsl("check", "g.inc", cwd=g.parent, env=env)
    assert r.returncode == 0 and "ok: network g" in r.stdout


# --- item 4: nothing left behind ------------------------------------------------------------------

def test_failed_compile_creates_no_folders(g, capsys, monkeypatch):
    import incdsl.backends.onnx.direct as od

    def broken(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(od, "emit", broken)
    assert main(["compile", "g.inc", "--to", "onnx", "--no-verify", "-o", "nd/a/b/x.onnx"]) == 2
    assert "No space left" in capsys.readouterr().err
    assert sorted(p.name for p in g.parent.iterdir()) == ["g.inc"]


def test_a_successful_compile_creates_its_folders(g):
    assert main(["compile", "g.inc", "--to", "dot", "-o", "nd/a/b/x.dot"]) == 0
    assert (g.parent / "nd/a/b/x.dot").read_text().startswith("digraph")
    assert [p.name for p in (g.parent / "nd/a/b").iterdir()] == ["x.dot"]


def _wait_for_temp(folder: Path, proc, timeout=120) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = [p for p in folder.iterdir() if p.name.startswith(".incdsl-")]
        if found and found[0].stat().st_size > 1_000_000:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no temp file appeared")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_onnx_compile_leaves_nothing(tmp_path, sig):
    """The issue's case: SIGTERM or SIGKILL during `compile --to onnx` (here while the written
    temp file is being verified) left a hidden 27 MB temp file beside the target."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "incdsl", "compile", str(ROOT / "specs/googlenet.inc"),
                             "--to", "onnx", "-o", str(out / "g.onnx")], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    temp = _wait_for_temp(out, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM and "terminated (SIGTERM)" in err
        assert list(out.iterdir()) == []
    else:  # nothing can clean up after SIGKILL: the next write to the same place does
        assert proc.returncode == -signal.SIGKILL and temp.exists()
        r = _incdsl("compile", str(ROOT / "specs/googlenet.inc"), "--to", "onnx", "--no-verify",
                    "-o", str(out / "g.onnx"), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert [p.name for p in out.iterdir()] == ["g.onnx"]


def test_stale_temp_of_a_live_process_is_kept(tmp_path):
    # a live process of the test's own (not its parent: a mutant of clean_stale that signals the
    # process it probes would stop the test runner, tools/mutation.sh's mutmut among them)
    child = subprocess.Popen(["sleep", "60"])
    try:
        live = tmp_path / f".incdsl-{child.pid}-abcd1234.x.dot"
        dead = tmp_path / ".incdsl-4194000-abcd1234.x.dot"  # above any pid Linux hands out by default
        other = tmp_path / ".incdsl-4194000-abcd1234.y.dot"
        for p in (live, dead, other):
            p.write_text("")
        assert clean_stale(tmp_path, "x.dot") == [dead]
        assert live.exists() and other.exists() and child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_atomic_path_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    out = tmp_path / "x.txt"
    out.write_text("old")
    out.chmod(0o640)
    with atomic_path(out) as tmp:
        tmp.write_text("new")
    assert out.read_text() == "new" and stat.S_IMODE(out.stat().st_mode) == 0o640


# --- item 22: .keras output is byte-identical ------------------------------------------------------

@pytest.mark.slow
def test_two_keras_compiles_are_byte_identical(g, capsys):
    """Two compiles of the same spec, seconds apart (zip times), each with its own objects
    (shared_object_id came from id()), give the same bytes; the file still loads into Keras."""
    import json
    import zipfile
    assert main(["compile", "g.inc", "--to", "keras", "-o", "a.keras"]) == 0
    time.sleep(2.1)  # zip times have a 2 s resolution
    assert main(["compile", "g.inc", "--to", "keras", "-o", "b.keras"]) == 0
    a, b = (g.parent / "a.keras").read_bytes(), (g.parent / "b.keras").read_bytes()
    assert a == b
    with zipfile.ZipFile(g.parent / "a.keras") as z:
        assert json.loads(z.read("metadata.json"))["date_saved"] == "1980-01-01@00:00:00"
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
    import keras
    import numpy as np

    import incdsl
    from incdsl.backends.keras import layers as keras_layers  # noqa: F401  (registers incdsl's layers)
    loaded = keras.models.load_model(g.parent / "a.keras", compile=False)
    built = incdsl.load(g).to_keras(seed=0)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), built.predict(x, verbose=0), rtol=1e-6)


# --- the other writers: train -o, compare --plot ----------------------------------------------------

@pytest.mark.parametrize("target, says", [("g.inc", "it is an input of this command"),
                                          ("x.keras/", "ends in '/'"), ("/dev/null", "device node")])
def test_train_output_is_checked_before_training(g, capsys, target, says):
    assert main(["train", "g.inc", "--data", "synthetic", "-o", target]) == 2
    assert says in capsys.readouterr().err
    assert g.read_text() == PLAIN32


def test_compare_plot_onto_a_symlink_is_refused(g, capsys):
    (g.parent / "real.png").write_bytes(b"keep")
    (g.parent / "p.png").symlink_to("real.png")
    assert main(["compare", "g.inc", "--plot", "p.png"]) == 2
    assert "it is a symbolic link" in capsys.readouterr().err
    assert (g.parent / "real.png").read_bytes() == b"keep" and (g.parent / "p.png").is_symlink()


def test_fmt_rewrites_its_input_through_a_link_and_keeps_the_link(tmp_path, capsys):
    """`incdsl fmt` is the one command whose output is its input: allowed, and a symlinked spec
    is rewritten where it lives (the link stays a link)."""
    real = tmp_path / "real.inc"
    real.write_text("network n() {\n      input 8x8x3\n  relu\n}\n")
    (tmp_path / "link.inc").symlink_to("real.inc")
    assert main(["fmt", str(tmp_path / "link.inc")]) == 0
    assert (
        tmp_path / "link.inc").is_symlink(
            ) and real.read_text() == "network n() {\n  input 8x8x3\n  relu\n}\n"


def test_the_library_refuses_a_networks_own_files_and_remembers_nothing(g):
    """The Python API: a network's outputs refuse its spec and what the spec `use`s (through a
    hard link too), while reading a file leaves no process-wide mark (issue 19: a long-running
    process, such as the language server, must stay free to write a file it once read)."""
    import incdsl
    (g.parent / "lib.inc").write_text("module m() { conv(4, 1) }\n")
    g.write_text('use "lib.inc"\n' + PLAIN32.replace("conv(8, 3)", "m()"))
    net = incdsl.load(g)
    assert [p.name for p in net.input_files] == ["g.inc", "lib.inc"]
    os.link(g.parent / "lib.inc", g.parent / "lib.onnx")
    from incdsl.backends import dot, html
    from incdsl.backends.onnx import convert as onnx
    for target in (g, g.parent / "lib.onnx"):
        with pytest.raises(UsageError, match="an input of this command"):
            net.to_onnx(target, verify=False)
        for export in (onnx.export, dot.export, html.export):  # the backends' own entry points too
            with pytest.raises(UsageError, match="an input of this command"):
                export(net, target, **({"verify": False} if export is onnx.export else {"fmt": "dot"}
                                       if export is dot.export else {}))
    assert "lib.inc" in g.read_text() and "conv(4, 1)" in (g.parent / "lib.inc").read_text()
    (g.parent / "w.keras").write_bytes(b"weights")  # the weights file is an input too
    with pytest.raises(UsageError, match="an input of this command"):
        net.to_onnx(g.parent / "w.keras", g.parent / "w.keras", verify=False)
    assert (g.parent / "w.keras").read_bytes() == b"weights"
    # a file read once (here: a failed load) can be written later by anything else
    (g.parent / "r.dot").write_text("not a spec")
    with pytest.raises(incdsl.SpecError):
        incdsl.load(g.parent / "r.dot")
    assert incdsl.loads(PLAIN32).draw(g.parent / "r.dot").read_text().startswith("digraph")
