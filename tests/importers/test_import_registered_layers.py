"""A compiled model with incdsl's own layers imports from the command line: incdsl's layers are
registered with Keras by the import hook of `import incdsl` (backends/keras/register.py), which a
mere `importlib.util.find_spec("keras")` (the backend rule's check) must not use up."""
from __future__ import annotations

import subprocess
import sys

import pytest

LRN_NET = """network t(size=16) {
  input(size, size, 3)
  conv(4, 1) -> lrn(5)
  output fc = gap -> dense(3)
}
"""

PROBE = """
import importlib.util, sys
import incdsl
from incdsl.backends.keras.import_hook import ImportHook
importlib.util.find_spec("keras"); importlib.util.find_spec("tensorflow")
hooks = sorted(f.name for f in sys.meta_path if isinstance(f, ImportHook))
import keras
print(hooks, keras.saving.get_registered_object("incdsl>LRN") is not None,
      [f for f in sys.meta_path if isinstance(f, ImportHook) and f.name == "keras"])
"""


def test_looking_keras_up_leaves_the_hook_for_the_import():
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "['keras', 'tensorflow'] True []"


@pytest.mark.slow
def test_incdsl_import_of_a_compiled_model_with_lrn(tmp_path):
    (tmp_path / "t.inc").write_text(LRN_NET)
    run = [sys.executable, "-m", "incdsl"]
    c = subprocess.run(run + ["compile", "t.inc", "--to", "keras", "-o", "t.keras"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert c.returncode == 0, c.stderr
    i = subprocess.run(run + ["import", "t.keras", "-o", "back.inc"], cwd=tmp_path, capture_output=True,
                       text=True,
                       timeout=600)
    assert i.returncode == 0, i.stderr
    assert "checked layer for layer against t.keras" in i.stdout
    assert "lrn" in (tmp_path / "back.inc").read_text()
