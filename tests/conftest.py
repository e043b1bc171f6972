import importlib.util
import os
from pathlib import Path

import pytest

# torchvision must be imported before TensorFlow: the other way round, TF 2.21 and torchvision 0.29
# crash the process (segmentation fault in `import torchvision`). The reference tests compare
# against both; the front-end tests need neither, so a checkout without the `refs` extra still
# runs them (and a reference test fails loudly on its own import).
if importlib.util.find_spec("torchvision") is not None:
    import torchvision  # noqa: F401,E402

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


def pytest_sessionfinish(session, exitstatus):
    """Drop the garbage-collector callbacks libraries install (Hypothesis' timing, JAX's
    `_xla_gc_callback`) when the session ends: pytest-xdist (execnet) stops a worker with a
    KeyboardInterrupt delivered to its main thread, and when that lands inside such a callback
    Python reports it as an unraisable exception after the summary line."""
    import gc
    gc.callbacks.clear()
