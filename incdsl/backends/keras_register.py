"""Make incdsl's custom Keras layers loadable after `import incdsl`, without importing Keras.

`keras.models.load_model` finds a custom layer only if its class was registered (by importing
`keras_layers`) before the call. The front end must stay light, so `import incdsl` calls
`install()`, which:
- registers at once if Keras is already imported;
- otherwise puts a small finder on `sys.meta_path` that waits for `import keras`, settles the
  Keras backend just before it (`keras_backend.apply`: KERAS_BACKEND and keras.json win, else an
  installed backend), and registers right after Keras's own `__init__` has run, then removes itself.
So both `import keras, incdsl` and `import incdsl, keras` (in either order) load incdsl models.
`incdsl.backends.keras.custom_objects()` gives the same classes for an explicit `custom_objects=`.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

_LAYERS = "incdsl.backends.keras_layers"


def install() -> None:
    """Make sure incdsl's custom layers get registered with Keras: now if Keras is already imported,
    otherwise right after `import keras` (through a finder on `sys.meta_path`, installed
    once). Called by `import incdsl`; imports no Keras itself."""
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(f, _KerasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasFinder())


def _register() -> None:
    try:
        importlib.import_module(_LAYERS)
    except Exception:  # a broken Keras install: loading a model will say so itself
        pass


class _KerasFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of `keras` so registration follows its import."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # Keras reads its backend once, at this import: settle it first (KERAS_BACKEND and
        # keras.json win; else an installed backend rather than a missing TensorFlow)
        from .keras_backend import BackendError, apply
        try:
            apply()
        except BackendError:
            if not any(isinstance(f, _KerasFinder) for f in sys.meta_path):
                sys.meta_path.insert(0, _KerasFinder())  # the import fails; a later one is checked again
            raise
        module.__loader__ = self._loader  # keras sees its own loader (resources, is_package)
        module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name):
        return getattr(self._loader, name)
