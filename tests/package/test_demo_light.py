"""Issue 23, item 4: tools/demo on a fresh checkout installs only what the main job needs
(incdsl[onnx]: no Keras, TensorFlow, torch or JAX, no Debian package), does the job (every spec
checked, a summary, Inception v3 to ONNX verified) and leaves a .venv under 1.5 GB. Its time is
measured, not tested (README, "Install")."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT

MAX_VENV_BYTES = 1.5e9


def _size(path) -> int:
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


@pytest.mark.slow
def test_demo_installs_only_the_onnx_extra_and_does_the_main_job(tmp_path):
    clone = tmp_path / "incdsl"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # the working tree under test, not only what is committed
    for d in ("incdsl", "tools", "specs"):
        shutil.rmtree(clone / d)
        shutil.copytree(ROOT / d, clone / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", clone / "pyproject.toml")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    p = subprocess.run(["bash", "tools/demo"], cwd=clone, env=env, capture_output=True, text=True,
                       timeout=1800)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "apt-get" not in p.stderr and "Debian" not in p.stderr  # no system package, not even tried
    # what it installs and why, said once
    assert p.stderr.count(
        "setting up .venv: incdsl[onnx] (the front end, and onnx with onnxruntime") == 1
    assert p.stdout.count(": ok: network") == len(list((ROOT / "specs").glob("*.inc")))
    assert "onnxruntime vs incdsl's numpy reference" in p.stdout
    assert (clone / "out" / "inception_v3.onnx").stat().st_size > 90e6
    py = clone / ".venv" / "bin" / "python"
    found = subprocess.run([str(py), "-c",
                            "import importlib.util as u; print([m for m in ('keras', 'tensorflow', "
                            "'torch', 'jax', 'tf2onnx') if u.find_spec(m)])"], capture_output=True, text=True)
    assert found.stdout.strip() == "[]", found.stdout + found.stderr
    assert _size(clone / ".venv") < MAX_VENV_BYTES
