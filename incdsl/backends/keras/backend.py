"""Which Keras backend incdsl's Keras work runs on, settled before Keras is imported.

Keras 3 reads its backend once, when `keras` is first imported: from `KERAS_BACKEND`, else from
`~/.keras/keras.json` (`$KERAS_HOME/keras.json`), else "tensorflow"; on a machine with JAX or
PyTorch and no TensorFlow that default makes the first model call fail ("This requires the
tensorflow module"). incdsl keeps the user's choice and fills in only the default:

1. `KERAS_BACKEND`, when set, wins;
2. else the "backend" of keras.json, unless the file is exactly the one Keras writes on its own
   first import (its four defaults: backend "tensorflow", floatx float32, epsilon 1e-07,
   channels_last) -- that file records Keras' default, not a choice;
3. else the first installed of ORDER: tensorflow, jax, torch. TensorFlow first because it is
   Keras' own default (a machine with it trains exactly as before, and only it has
   `--strategy multiworker`, TensorBoard logs and tf2onnx); JAX next because Keras compiles its
   whole train step with XLA and runs `--strategy mirrored` on it (keras.distribution.DataParallel);
   PyTorch last: one device only under Keras, and the slowest `import keras` (README, "Which Keras
   backend").

A named backend that Keras does not know, or one that is not installed, is a BackendError (a
UsageError: the command line exits 2) naming what to set or install; so is a machine with Keras
but no backend at all. Imports nothing heavy: packages are found (importlib.util.find_spec), not
imported.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError

ORDER = ("tensorflow", "jax", "torch")  # tried in this order when nothing names a backend
# Every backend Keras 3 accepts, with the module that must be importable for it; numpy and openvino
# run inference only (no training in Keras), so incdsl never picks them itself.
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy",
           "openvino": "openvino"}
EXTRAS = {"tensorflow": "tf", "jax": "jax", "torch": "torch"}  # pip install 'incdsl[EXTRA]'
# The keras.json Keras writes when it finds none (keras/src/backend/config.py, Keras 3.x)
KERAS_DEFAULT_JSON = {"floatx": "float32", "epsilon": 1e-07, "backend": "tensorflow",
                      "image_data_format": "channels_last"}


class BackendError(UsageError):
    """The Keras backend cannot be used: a KERAS_BACKEND or keras.json naming a backend Keras does
    not know or one that is not installed, or no backend (or no Keras) installed at all. The
    message names what to set or install; the command line exits 2."""


@dataclass(frozen=True)
class BackendChoice:
    """The Keras backend in use and why: `name` as Keras spells it ("jax"), `source` one of
    "KERAS_BACKEND", the keras.json path, "installed" (chosen by ORDER) or "already imported"
    (Keras was imported before incdsl could choose)."""
    name: str
    source: str

    def describe(self) -> str:
        """A few words for logs and `--version`: 'jax (KERAS_BACKEND)'."""
        if self.source == "installed":
            return (f"{self.name} (the first installed of {', '.join(ORDER)}: KERAS_BACKEND unset, "
                    f"keras.json absent "
                    "or Keras' own default)")
        if self.source == "KERAS_BACKEND":
            return f"{self.name} (KERAS_BACKEND)"
        if self.source == "already imported":
            return f"{self.name} (Keras was already imported)"
        return f"{self.name} ({self.source})"


def installed(name: str) -> bool:
    """Whether backend `name`'s package can be imported (found, not imported)."""
    module = MODULES.get(name)
    try:
        return module is not None and importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-imported package counts as absent
        return False


def installed_backends() -> list[str]:
    """The trainable backends (ORDER) whose package is installed, in ORDER."""
    return [b for b in ORDER if installed(b)]


def keras_json() -> Path:
    """Where Keras reads keras.json: $KERAS_HOME/keras.json, else ~/.keras/keras.json."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "keras.json"


def configured() -> tuple[str, str] | None:
    """(backend, where it was set) from KERAS_BACKEND or keras.json (rules 1 and 2 above), or None
    when neither names one. An unreadable keras.json names none (Keras ignores it too)."""
    env = os.environ.get("KERAS_BACKEND")
    if env is not None and env.strip():
        return env.strip(), "KERAS_BACKEND"
    path = keras_json()
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config == KERAS_DEFAULT_JSON or not isinstance(config.get("backend"),
                                                                                      str):
        return None
    return config["backend"], str(path)


def _alternatives(exclude: str) -> str:
    others = [b for b in installed_backends() if b != exclude]
    if others:
        return f"set KERAS_BACKEND={others[0]} (installed here: {', '.join(others)})"
    return "no other backend is installed either"


def _setting(source: str, name: str) -> str:
    return f"KERAS_BACKEND={name}" if source == "KERAS_BACKEND" else f'"backend": "{name}" in {source}'


def choose() -> BackendChoice:
    """The backend Keras will run on (rules above), without importing Keras. Raises BackendError
    for a named backend Keras does not know or that is not installed, and when Keras or every
    trainable backend is missing."""
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "backend"):
        return BackendChoice(sys.modules["keras"].backend.backend(), "already imported")
    if importlib.util.find_spec("keras") is None:
        raise BackendError(
            "Keras is not installed: pip install 'incdsl[jax]', 'incdsl[torch]' or 'incdsl[tf]' "
                           "(Keras with one backend)")
    named = configured()
    if named is not None:
        name, source = named
        if name not in MODULES:
            fix = "unset KERAS_BACKEND" if source == "KERAS_BACKEND" else f"edit {source}"
            have = installed_backends()
            raise BackendError(f"{_setting(source, name)} is not a Keras backend; Keras 3 knows "
                               f"{', '.join(ORDER)} (and numpy, openvino for inference): {fix} or set "
                               f"KERAS_BACKEND={have[0] if have else 'jax'}"
                               + (f" (installed here: {', '.join(have)})" if have else ""))
        if not installed(name):
            extra = EXTRAS.get(name)
            how = f"pip install 'incdsl[{extra}]'" if extra else f"pip install {MODULES[name]}"
            raise BackendError(f"{_setting(source, name)} names a Keras backend that is not installed "
                               f"(no module {MODULES[name]}): {how}, or {_alternatives(name)}")
        return BackendChoice(name, source)
    have = installed_backends()
    if not have:
        raise BackendError("no Keras backend is installed (none of tensorflow, jax, torch): "
                           "pip install 'incdsl[jax]', 'incdsl[torch]' or 'incdsl[tf]'")
    return BackendChoice(have[0], "installed")


def apply() -> BackendChoice:
    """Choose (see `choose`) and, before Keras is imported, set KERAS_BACKEND to the choice so that
    Keras loads it. Called by the hook `keras_register` puts on `import keras`; raises
    BackendError as `choose` does (the import then fails with that message)."""
    choice = choose()
    if choice.source != "already imported":
        os.environ["KERAS_BACKEND"] = choice.name
    return choice


__all__ = ["ORDER", "EXTRAS", "BackendError", "BackendChoice", "choose", "apply", "installed",
           "installed_backends",
           "keras_json", "configured"]
