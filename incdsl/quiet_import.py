"""TensorFlow's native start-up lines kept off stderr from Python too, not only in the CLI.

`import tensorflow` prints, from C++ and before absl is set up, lines that TF_CPP_MIN_LOG_LEVEL
does not reach ("WARNING: All log messages before absl::InitializeLog() ...", the cpu_feature_guard
line, "To enable the following instructions ..."); on a GPU, more come when the first graph runs.
`import incdsl` installs `install()`'s finder, which runs TensorFlow's own import inside
`quiet.native_stderr_filtered` (only the `quiet.NOISE` lines are dropped; everything else passes,
in order), whoever triggers the import: `Network.to_keras()`, an export, training, or the caller's
own `import keras`. `Network.to_keras()` and `to_onnx()` also run inside the filter, for the lines
of the first graph run. `INCDSL_VERBOSE=1` in the environment lets everything through.

Not covered: TensorFlow imported before `import incdsl` (its lines are printed by then), and
native lines printed later, outside incdsl's calls (an XLA compile in the caller's own `fit`).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys

from .quiet import native_stderr_filtered

_active = 0  # filters running in this process: a nested call adds none of its own


def verbose() -> bool:
    """Whether the user asked to see every native line (`INCDSL_VERBOSE=1`)."""
    return os.environ.get("INCDSL_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def quiet_native():
    """Run the block with TensorFlow's native start-up lines filtered from file descriptor 2
    (`quiet.native_stderr_filtered`), once however deeply nested, and not at all under
    `INCDSL_VERBOSE=1`."""
    global _active
    if _active or verbose():
        yield
        return
    _active += 1
    try:
        with native_stderr_filtered():
            yield
    finally:
        _active -= 1


def install() -> None:
    """Put the finder that quiets TensorFlow's import on `sys.meta_path` (once); nothing happens
    if TensorFlow is already imported. Imports no TensorFlow itself."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _TensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowFinder())


class _TensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of `tensorflow` so its import runs quieted."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Quieted(spec.loader)
        return spec


class _Quieted(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self._loader  # tensorflow sees its own loader
        module.__spec__.loader = self._loader
        with quiet_native():
            self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)
