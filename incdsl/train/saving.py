"""A trained model on disk: the .keras zip plus an `incdsl.json` entry (class names, how it was trained)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..io import atomic_path

META_ENTRY = "incdsl.json"  # the extra file inside a saved .keras zip
META_FORMAT = "incdsl-model/1"


def save_model(model, path: Path, meta: dict) -> None:
    """model.save plus the incdsl.json entry, atomically."""
    from ..backends.keras import without_tf
    from .keras_saving_fix import warm
    warm()  # Keras 3.15's saving cache, which never hits otherwise: half the CPU time of a save
    without_tf.install()  # on JAX and PyTorch, Keras' serializer imported TensorFlow
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(META_ENTRY, json.dumps(meta, indent=1))


def read_meta(path: str | Path) -> dict | None:
    """The incdsl.json entry of the saved .keras zip at `path` as a dict (class names, head,
    preprocessing, epoch, metrics ...), or None when the file is not a zip, cannot be read,
    or has no such entry (a model saved elsewhere)."""
    try:
        with zipfile.ZipFile(path) as z:
            if META_ENTRY not in z.namelist():
                return None
            return json.loads(z.read(META_ENTRY))
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def copy_weights(src, dst) -> None:
    """Copy by layer name: the Keras backend names layers after IR nodes, in both models."""
    for layer in dst.layers:
        if layer.weights:
            layer.set_weights(src.get_layer(layer.name).get_weights())


def _jsonable(params: dict) -> dict:
    return {k: v if isinstance(v,
                               (bool, int, float, str)) or v is None else str(v) for k, v in params.items()}
