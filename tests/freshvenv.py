"""Fresh virtual environments holding incdsl with one set of extras, as a user gets them from
`pip install incdsl[EXTRA]`: the tests that must run where TensorFlow (or Keras, or torch) is absent
run in one of these, for real (no `sys.modules` tricks).

A venv's dependencies are installed once per (extras, pins, pyproject.toml's dependency tables)
and kept under `.test-venvs/` in the checkout (gitignored; `INCDSL_TEST_VENVS` moves it).
tools/venv_installer.py installs with uv when it is there (the dev extra has it): uv unpacks each
wheel once into its cache and hardlinks it into every venv, so a venv whose wheels were seen
before costs seconds; else with pip. incdsl itself is reinstalled from a copy of the source tree
(non-editable, `--no-deps`) whenever that tree changed, so the venv always runs the code under test. A file
lock makes parallel pytest-xdist workers share one venv.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # venv_installer: shared with tools/_setup.sh
import venv_installer  # noqa: E402

VENVS = Path(os.environ.get("INCDSL_TEST_VENVS", ROOT / ".test-venvs"))

# torch's CPU build, as this machine family keeps it on disk (a plain `torch` would take the CUDA
# build, several GB): the [torch] venv gets it pinned, which a user's own pip would choose for them.
TORCH_CPU = "torch==2.13.0"


def _tree_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()
                                                     and "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _deps_key() -> str:
    """What decides a venv's dependencies: pyproject.toml's dependency tables, not its other
    settings (a new pytest marker or a comment rebuilds no venv)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = json.dumps([project.get("dependencies"), project.get("optional-dependencies")], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _source_copy(dest: Path) -> Path:
    """incdsl's sources without build litter (building a wheel in the checkout leaves build/)."""
    shutil.copytree(ROOT / "incdsl", dest / "incdsl", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, dest / f)
    return dest


def fresh_venv(extras: str = "", *pins: str) -> Path:
    """A venv with `incdsl[extras]` (e.g. "jax", "onnx", "" for the bare package) and the given pip
    requirement pins (e.g. TORCH_CPU, "pytest"), installed from this checkout; returns the venv's
    folder (its programs are in bin/). Raises RuntimeError with pip's output when an install fails:
    a test that needs the venv then fails loudly, never skips."""
    key = _deps_key() + "-" + hashlib.sha256(" ".join(pins).encode()).hexdigest()[:6]
    venv = VENVS / f"{extras.replace(',', '+') or 'base'}-{key}"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deps_done = venv / ".deps-installed"
        if not deps_done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            venv_installer.create(venv)
            with tempfile.TemporaryDirectory() as tmp:
                src = _source_copy(Path(tmp))
                venv_installer.install(venv, f"{src}[{extras}]" if extras else str(src), *pins)
            deps_done.touch()
        code = venv / f".incdsl-{_tree_hash(ROOT / 'incdsl')}"
        if not code.exists():
            with tempfile.TemporaryDirectory() as tmp:
                venv_installer.install(venv, str(_source_copy(Path(tmp))), again=True)
            for old in venv.glob(".incdsl-*"):
                old.unlink()
            code.touch()
    return venv


def venv_env(venv: Path, home: Path, **extra: str) -> dict[str, str]:
    """An environment as a user's shell would give the venv's programs: its bin/ first on PATH, a
    HOME of the test's own (no ~/.keras/keras.json of the developer's), none of the caller's
    PYTHONPATH, KERAS_BACKEND or TF_ variables unless passed in `extra`."""
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    # JAX_*: the suite's persistent compilation cache (tests/conftest.py), a cache and nothing a user sets
    for k in ("PIP_CACHE_DIR", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TMPDIR", "JAX_COMPILATION_CACHE_DIR",
              "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(extra)
    return env


def has_module(venv: Path, name: str) -> bool:
    """Whether `import name` would find a module in the venv (found, not imported)."""
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is None)",
        ],
        capture_output=True,
    )
    return done.returncode == 0
