"""Issue 28 item 1: every command in README.md's and specs/README.md's command blocks runs as
written, so the docs cannot drift. Each runs with bash in a copy of the checkout's specs/, docs/
and tools/ (the files it writes go there), `incdsl` and `python3` on PATH running this checkout.

- quick: the front-end commands, each must exit 0 (or the exit code its block shows);
- slow: the ones that build Keras models or export ONNX, `incdsl --version` (it imports every
  installed Keras backend), the training walk-through (digits folder,
  train, predict on an image the first command wrote), and tools/demo;
- the "Start from pretrained weights" commands name files the reader brings (keras.applications'
  and torchvision's downloads, a folder of flowers): they run too, and the only error allowed is
  that such a file is missing (so a renamed flag or a spec change still fails here, quickly);
  tests/cli/test_readme_pretrained.py (slow) makes those files and runs the commands for real;
- tools/test runs the whole suite, which cannot run inside itself: it runs with --collect-only.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from doc_commands import doc_commands

COMMANDS = doc_commands(ROOT / "README.md", "README.md") + doc_commands(ROOT / "specs" / "README.md",
                                                                        "specs/README.md")
BY_TEXT = {c.text: c for c in COMMANDS}

# files the "Start from pretrained weights" commands need from the reader
USER_FILES = ("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "iv3.weights.h5", "irv2.h5",
              "googlenet.pth", "inception_v4.safetensors", "flowers/", "iv3.keras")
WALK_THROUGH = ("tools/digits_folder.py digits --size 32",
                "incdsl train docs/examples/small_bn.inc --data digits/train --epochs 4 --lr 0.05 "
                "--no-augment -o digits.keras",
                "incdsl predict digits.keras digits/test/3/0045.png")
EXPLORE = ("incdsl explore docs/examples/small_bn.inc --data digits/train --sweep width=0.125,0.25 --sweep "
           "size=16,32 --epochs 2 --batch-size 64 --lr 0.05 --no-augment -o explore-digits",
           "incdsl explore --show explore-digits")
SLOW = {*EXPLORE, "tools/demo", "incdsl compile specs/inception_v3.inc --to onnx", "incdsl --version",
        "incdsl compile specs/googlenet.inc --to keras -o googlenet.keras", *WALK_THROUGH}
SUITE = "tools/test"
EXIT = {"incdsl check specs/inception_v3.inc --set size=64": 1}  # the README's example of an error


def _needs_user_file(c) -> bool:
    return any(f in c.text.split() or f.rstrip("/") in c.text.split() for f in USER_FILES)


QUICK = [c for c in COMMANDS if c.text not in SLOW and c.text != SUITE and not _needs_user_file(c)]
USER = [c for c in COMMANDS if _needs_user_file(c)]


def test_every_command_is_in_one_group():
    """A new documented command lands in a group of this file, or this test says so."""
    assert len(COMMANDS) >= 30
    groups = {
        c.id for c in QUICK} | {
            c.id for c in USER} | {c.id for c in COMMANDS if c.text in SLOW or c.text == SUITE}
    assert groups == {c.id for c in COMMANDS}
    assert set(SLOW) <= set(BY_TEXT) and SUITE in BY_TEXT  # each named command is still documented
    assert len(USER) == 7


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A copy of the checkout's specs/, docs/ and tools/ with bin/incdsl and bin/python3 running
    this checkout, and a .venv that tools/_setup.sh takes as set up (so tools/demo runs here)."""
    root = tmp_path_factory.mktemp("docs")
    for d in ("specs", "docs", "tools", "incdsl"):  # incdsl: what tools/test's lint step reads
        shutil.copytree(ROOT / d, root / d, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, root / f)
    shutil.copytree(ROOT / "tests", root / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", ".test-venvs"))
    bin_ = root / ".venv" / "bin"
    bin_.mkdir(parents=True)
    for name, line in (("incdsl", f'exec "{sys.executable}" -m incdsl "$@"'),
                       ("python3", f'exec "{sys.executable}" "$@"'),
                       ("python", f'exec "{sys.executable}" "$@"'),
                       ("ruff", f'exec "{Path(sys.executable).parent / "ruff"}" "$@"')):
        (bin_ / name).write_text(f"#!/bin/sh\n{line}\n")
        (bin_ / name).chmod(0o755)
    (root / ".venv" / ".incdsl-installed").touch()  # newer than pyproject.toml and tools/_setup.sh
    return root


def _run(work: Path, text: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{work / '.venv' / 'bin'}:{os.environ['PATH']}")
    return subprocess.run(text, shell=True, executable="/bin/bash", cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _check(c, done):
    want = EXIT.get(c.text, 0)
    assert done.returncode == want, (
        f"{c.id}: `{c.text}` exited {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, (
        f"{c.id}: {done.stderr[-3000:]}"
    )


@pytest.mark.parametrize("c", QUICK, ids=[c.id for c in QUICK])
def test_documented_command_runs(c, work):
    done = _run(work, c.text)
    _check(c, done)
    if c.text in EXIT:  # the error the README shows is the one it gives, line for line
        assert done.stderr.splitlines() == [line for line in c.shown if line.strip()]


@pytest.mark.parametrize("c", USER, ids=[c.id for c in USER])
def test_pretrained_weights_command_stops_only_at_the_readers_file(c, work):
    done = _run(work, c.text)
    assert done.returncode == 1, f"{c.id}: {done.stdout}{done.stderr}"
    first = done.stderr.strip().splitlines()[0]
    assert ("no such" in first or "not found" in first) and any(f.rstrip("/") in first for f in USER_FILES), \
        f"{c.id}: {done.stderr}"


@pytest.mark.slow
def test_training_walk_through_end_to_end(work):
    """tools/digits_folder.py, then train, then predict on a test image the first command wrote."""
    outs = []
    for text in WALK_THROUGH:
        c = BY_TEXT[text]
        done = _run(work, c.text, timeout=900)
        _check(c, done)
        outs.append(done.stdout)
    print("".join(outs))  # the walk-through's own output, for the run's notes
    assert (work / "digits" / "test" / "3" / "0045.png").is_file() and (work / "digits.keras").is_file()
    assert "digits/test/3/0045.png" in outs[2]
    top = outs[2].split("digits/test/3/0045.png", 1)[1].split()
    # the model names the digit (or at least ranks it near the top)
    assert top[0] == "3" or "3" in top[:4], outs[2]


@pytest.mark.slow
def test_exploring_variants_walk_through(work):
    """Issue 25: the README's `incdsl explore` run on the digits (four variants on a local Ray), then
    --show."""
    if not (work / "digits" / "train").is_dir():
        _check(BY_TEXT[WALK_THROUGH[0]], _run(work, WALK_THROUGH[0], timeout=300))
    outs = []
    for text in EXPLORE:
        done = _run(work, text, timeout=1200)
        _check(BY_TEXT[text], done)
        outs.append(done.stdout)
    print(outs[0])
    assert outs[1].count(" done ") == 4 and (work / "explore-digits" / "results.png").is_file(), outs


@pytest.mark.slow
@pytest.mark.parametrize("text", ["incdsl compile specs/inception_v3.inc --to onnx",
                                  "incdsl compile specs/googlenet.inc --to keras -o googlenet.keras",
                                  "tools/demo",
                                  "incdsl --version"])  # imports every Keras backend: ~6 s of CPU
def test_heavy_documented_command_runs(text, work):
    c = BY_TEXT[text]
    _check(c, _run(work, c.text, timeout=900))


@pytest.mark.slow
def test_tools_test_starts_the_suite(work):
    """tools/test as written runs the whole suite (this one among it): here it only collects."""
    done = _run(work, SUITE + " --collect-only -q -p no:cacheprovider tests/cli/test_readme_commands.py",
                timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # pytest-xdist's collect-only summary
    counted = re.search(r"test_readme_commands\.py: (\d+)", done.stdout)
    assert counted and int(counted.group(1)) > len(QUICK) + len(USER), done.stdout


def test_a_failing_command_fails_the_test(work):
    """The runner is no rubber stamp: a documented command that fails (here a spec renamed away, as
    drift would do) fails `_check`, and so does one that ends in a traceback."""
    from doc_commands import DocCommand
    gone = DocCommand("README.md", 1, "incdsl check specs/renamed_away.inc", ())
    with pytest.raises(AssertionError, match="exited 1"):
        _check(gone, _run(work, gone.text))
    crash = DocCommand("README.md", 1,
                       "python3 -c 'raise SystemExit(0)' && python3 -c 'import nonexistent_mod'", ())
    with pytest.raises(AssertionError):
        _check(crash, _run(work, crash.text))
