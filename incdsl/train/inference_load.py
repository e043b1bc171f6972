"""Load a saved .keras model for inference without paying for its initial weights.

`keras.saving.load_model` builds every layer first, and building draws each weight's initial
values (GlorotUniform...) only for the file's weights to replace them: for Inception v3 that is
24M random numbers on TensorFlow (seconds of CPU), and on JAX one compiled random-number program
per distinct kernel shape (57 of them, ~30 s of CPU here). `load_for_inference` builds the model
from the archive's config.json with every built-in initializer replaced by Zeros, then loads the
weights with Keras' own `Model.load_weights`, which reads the same archive and checks every
layer's variables as load_model does, from the archive's weights file extracted to a temporary
folder: read in place, through the zip stream, h5py's random reads make zipfile re-read the
entry from its start again and again (5 s of CPU for Inception v3).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import keras

CONFIG = "config.json"  # the model's architecture inside a Keras 3 .keras archive
WEIGHTS = "model.weights.h5"  # its weights, as Model.save_weights writes them


def _zeros_everywhere(node) -> None:
    """Replace, in place, every built-in Keras initializer in a serialized config by Zeros."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("initializer") and isinstance(value, dict) and value.get("module") == "keras.initializers":
                node[key] = {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}
            else:
                _zeros_everywhere(value)
    elif isinstance(node, list):
        for value in node:
            _zeros_everywhere(value)


def load_for_inference(path: str | Path):
    """The keras.Model saved in the .keras archive `path`, built without drawing initial weights
    and holding the archive's weights. Not compiled (no optimizer state): for inference.
    Raises what Keras raises for an archive it cannot read (the caller turns it into a SpecError)."""
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="incdsl-predict.") as tmp:
        config = json.loads(archive.read(CONFIG))
        _zeros_everywhere(config)
        config.pop("compile_config", None)  # load_model(compile=False) ignores it too
        model = keras.saving.deserialize_keras_object(config)
        weights = Path(tmp) / WEIGHTS
        with archive.open(WEIGHTS) as src, open(weights, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 24)
        model.load_weights(str(weights))
    return model
