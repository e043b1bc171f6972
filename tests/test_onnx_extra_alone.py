"""Issue 13, item 6: `pip install incdsl[onnx]` alone (no Keras, no TensorFlow, no torch) exports and
verifies Inception v3, and googlenet_tv with PyTorch weights from a .safetensors file (item 3's
"without torch installed"), in a real fresh virtual environment (pip's wheel cache keeps it quick)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SPECS


@pytest.mark.slow
def test_compile_to_onnx_with_the_onnx_extra_alone(tmp_path):
    src = tmp_path / "src"  # a copy: building a wheel in the checkout would leave build/ behind
    shutil.copytree(ROOT / "incdsl", src / "incdsl", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{src}[onnx]"],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    missing = subprocess.run([str(py), "-c", "import importlib.util as u; "
                              "print([m for m in ('keras', 'tensorflow', 'torch') if u.find_spec(m)])"],
                             capture_output=True, text=True)
    assert missing.stdout.strip() == "[]", missing.stdout  # really the onnx extra alone
    out = tmp_path / "inception_v3.onnx"
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([str(venv / "bin" / "incdsl"), "compile", str(SPECS / "inception_v3.inc"), "--to", "onnx",
                           "-o", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.stat().st_size > 90e6
    assert "onnx checker (full)" in proc.stdout and "125 of 125 layer tensors" in proc.stdout
    assert "onnxruntime vs incdsl's numpy reference" in proc.stdout
    assert "not checked: onnxruntime vs Keras (needs incdsl[keras]" in proc.stdout
    # PyTorch weights in safetensors, read where torch is not installed either
    import torch
    import torchvision
    from safetensors.torch import save_file
    torch.manual_seed(0)
    st = tmp_path / "googlenet.safetensors"
    save_file(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).state_dict(), str(st))
    g = subprocess.run([str(venv / "bin" / "incdsl"), "compile", str(SPECS / "googlenet_tv.inc"), "--to", "onnx",
                        "--set", "aux=false", "--weights", str(st), "-o", str(tmp_path / "g.onnx")],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert g.returncode == 0 and "onnxruntime vs incdsl's numpy reference" in g.stdout, g.stdout + g.stderr
    tf = subprocess.run([str(venv / "bin" / "incdsl"), "compile", str(SPECS / "inception_v3.inc"), "--to", "onnx",
                         "--via", "tf2onnx", "-o", str(tmp_path / "t.onnx")], capture_output=True, text=True, env=env)
    assert tf.returncode == 2 and "incdsl[keras]" in tf.stderr and "Traceback" not in tf.stderr, tf.stderr
