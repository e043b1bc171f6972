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
import os
import sys

from .import_hook import ImportHook
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
    """Put the hook that quiets TensorFlow's import on `sys.meta_path` (once); nothing happens
    if TensorFlow is already imported. Imports no TensorFlow itself."""
    if "tensorflow" not in sys.modules:
        ImportHook("tensorflow", _quieted).install()


def _quieted(execute) -> None:
    with quiet_native():
        execute()
