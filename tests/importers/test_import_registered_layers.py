"""A compiled model with incdsl's own layers imports from the command line: incdsl's layers are
registered with Keras by the import hook of `import incdsl` (backends/keras/register.py), which a
mere `importlib.util.find_spec("keras")` (the backend rule's check) must not use up.

Quick: the hook itself (backends/keras/import_hook.py) on a module of the test's own, and the hooks
`import incdsl` leaves for keras and tensorflow, in this process. Slow: the same with the real
Keras in a fresh interpreter (an import of Keras and TensorFlow, 6.5 s of CPU), and the command line."""
from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import pytest

from incdsl.backends.keras import quiet_import, register
from incdsl.backends.keras.import_hook import ImportHook

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


def _hooks(name: str) -> list:
    return [f for f in sys.meta_path if isinstance(f, ImportHook) and f.name == name]


def test_a_lookup_leaves_the_hook_and_the_import_runs_around_it_once(tmp_path, monkeypatch):
    (tmp_path / "incdsl_hooked_probe.py").write_text("import sys\nAT_IMPORT = [h.name for h in sys.meta_path "
                                                     "if type(h).__name__ == 'ImportHook']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, "incdsl_hooked_probe", raising=False)
    calls = []

    def around(execute):
        calls.append("before")
        execute()
        calls.append("after")

    ImportHook("incdsl_hooked_probe", around).install()
    ImportHook("incdsl_hooked_probe", around).install()  # a second one for the same module is not added
    assert len(_hooks("incdsl_hooked_probe")) == 1
    assert importlib.util.find_spec("incdsl_hooked_probe") is not None
    assert importlib.util.find_spec("incdsl_hooked_probe") is not None
    assert len(_hooks("incdsl_hooked_probe")) == 1 and calls == []  # looked up twice: still waiting
    module = importlib.import_module("incdsl_hooked_probe")
    assert calls == ["before", "after"] and _hooks("incdsl_hooked_probe") == []
    assert "incdsl_hooked_probe" not in module.AT_IMPORT  # gone before the module's own code ran
    assert module.__loader__ is module.__spec__.loader  # the module sees its own loader, not the wrapper
    assert type(module.__loader__).__name__ == "SourceFileLoader"


def test_a_failed_import_puts_the_hook_back_for_the_next(tmp_path, monkeypatch):
    (tmp_path / "incdsl_hooked_broken.py").write_text("raise ImportError('half installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    ImportHook("incdsl_hooked_broken", lambda execute: execute()).install()
    with pytest.raises(ImportError, match="half installed"):
        importlib.import_module("incdsl_hooked_broken")
    assert len(_hooks("incdsl_hooked_broken")) == 1


def test_import_incdsl_leaves_hooks_for_keras_and_tensorflow_that_a_lookup_keeps(monkeypatch):
    """What `import incdsl` does in a process without Keras (the pytest process has it: taken out
    of sys.modules for the test, and not imported again: only looked up)."""
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, ImportHook)])
    for name in ("keras", "tensorflow"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    register.install()
    quiet_import.install()
    assert None not in (importlib.util.find_spec("keras"), importlib.util.find_spec("tensorflow"))
    assert [len(_hooks("keras")), len(_hooks("tensorflow"))] == [1, 1]
    assert set(sys.meta_path[:2]) == {*_hooks("keras"), *_hooks("tensorflow")}  # no finder before them


@pytest.mark.slow  # a fresh interpreter importing Keras; the quick tests above check the hooks in this one
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
