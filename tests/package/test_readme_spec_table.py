"""The README's table of reference specs (params, MACs) is the one tools/spec_table.py computes
today."""
import subprocess
import sys

from conftest import ROOT


def test_readme_spec_table_is_current():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "spec_table.py"), "--check",
                           str(ROOT / "README.md")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
