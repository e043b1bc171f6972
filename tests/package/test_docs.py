"""The API reference builds from the docstrings with no warning, and documents the public API."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_api_reference_builds_without_warnings(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "api_docs.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    page = (tmp_path / "incdsl" / "network.html").read_text()
    for name in ("count_params", "to_onnx", "draw", "report", "arguments"):
        assert name in page
    assert "NHWC" in page  # the docstrings' shapes made it into the reference


def test_op_table_in_specs_readme_is_generated_from_the_op_table():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "op_table.py"), "--check",
                           str(ROOT / "specs" / "README.md")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    from incdsl.ops import OPS
    text = (ROOT / "specs" / "README.md").read_text()
    assert all(f"| `{name}` |" in text for name in OPS)
