import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def spec_file(tmp_path):
    """Write a spec into a temp dir and return its path: spec_file(text, name='t.inc')."""
    def make(text: str, name: str = "t.inc") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p
    return make
