"""Make incdsl's custom Keras layers loadable after `import incdsl`, without importing Keras.

`keras.models.load_model` finds a custom layer only if its class was registered (by importing
`layers.py`) before the call. The front end must stay light, so `import incdsl` calls
`install()`, which:
- registers at once if Keras is already imported;
- otherwise puts an `ImportHook` on `sys.meta_path` that waits for `import keras`, settles the
  Keras backend just before it (`backend.apply`: KERAS_BACKEND and keras.json win, else an
  installed backend), and registers right after Keras's own `__init__` has run (the hook leaves
  when the import runs, not when `find_spec("keras")` merely looks).
So both `import keras, incdsl` and `import incdsl, keras` (in either order) load incdsl models.
`incdsl.backends.keras.build.custom_objects()` gives the same classes for an explicit `custom_objects=`.
"""
from __future__ import annotations

import importlib
import sys

from .import_hook import ImportHook

_LAYERS = "incdsl.backends.keras.layers"


def install() -> None:
    """Make sure incdsl's custom layers get registered with Keras: now if Keras is already imported,
    otherwise right after `import keras` (an `ImportHook` on `sys.meta_path`, installed once).
    Called by `import incdsl`; imports no Keras itself."""
    if "keras" in sys.modules:
        _register()
    else:
        ImportHook("keras", _settle_then_register).install()


def _register() -> None:
    try:
        importlib.import_module(_LAYERS)
    except Exception:  # a broken Keras install: loading a model will say so itself
        pass


def _settle_then_register(execute) -> None:
    # Keras reads its backend once, at this import: settle it first (KERAS_BACKEND and
    # keras.json win; else an installed backend rather than a missing TensorFlow)
    from .backend import apply
    apply()
    execute()
    _register()
