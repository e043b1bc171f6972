"""Load a saved .keras model for inference without paying for its initial weights.

`keras.saving.load_model` builds every layer first, and building draws each weight's initial
values (GlorotUniform...) only for the file's weights to replace them: for Inception v3 that is
24M random numbers on TensorFlow (seconds of CPU), and on JAX one compiled random-number program
per distinct kernel shape (57 of them, ~30 s of CPU here). `load_for_inference` builds the model
from the archive's config.json with every built-in initializer replaced by Zeros, then loads the
weights with Keras' own `Model.load_weights`, which reads the same archive and checks every
layer's variables as load_model does, from the archive's weights file extracted to a temporary
folder: read in place, through the zip stream, h5py's random reads make zipfile re-read the
entry from its start again and again (5 s of CPU for Inception v3). The built-in initializers
become HostZeros (numpy's zeros): Keras' own Zeros compiles an XLA program per weight shape on JAX.
"""
from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

import keras

from ..backends.keras.build import HostZeros
from ..untrusted import check_h5, check_zip, copy_member, member_limit, read_member

CONFIG = "config.json"  # the model's architecture inside a Keras 3 .keras archive
WEIGHTS = "model.weights.h5"  # its weights, as Model.save_weights writes them


_HOST_ZEROS = {"module": None, "class_name": "HostZeros", "config": {}, "registered_name": "HostZeros"}


def _zeros_everywhere(node) -> None:
    """Replace, in place, every built-in Keras initializer in a serialized config by HostZeros."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("initializer") and isinstance(value,
                                                          dict) and value.get(
                                                              "module") == "keras.initializers":
                node[key] = dict(_HOST_ZEROS)
            else:
                _zeros_everywhere(value)
    elif isinstance(node, list):
        for value in node:
            _zeros_everywhere(value)


def load_for_inference(path: str | Path):
    """The keras.Model saved in the .keras archive `path`, built without drawing initial weights
    and holding the archive's weights. Not compiled (no optimizer state): for inference.

    The archive is checked as `untrusted.check_weights_archive` checks it (members that would
    inflate beyond their limit, an HDF5 file naming other files), but its weights are read once:
    copied with the cap to the temporary file Keras then reads, and checked there (h5py reads
    only the file's structure for that). Raises incdsl.errors.SpecError for what those checks
    refuse, and what Keras raises for an archive it cannot read (the caller turns it into a
    SpecError)."""
    check_zip(path)
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="incdsl-predict.") as tmp:
        config = json.loads(read_member(archive, CONFIG, member_limit(archive, CONFIG), path))
        _zeros_everywhere(config)
        config.pop("compile_config", None)  # load_model(compile=False) ignores it too
        weights = Path(tmp) / WEIGHTS
        with open(weights, "wb") as dst:
            copy_member(archive, WEIGHTS, member_limit(archive, WEIGHTS), path, dst)
        check_h5(str(weights), f"{path} ({WEIGHTS})")
        model = keras.saving.deserialize_keras_object(config, custom_objects={"HostZeros": HostZeros})
        model.load_weights(str(weights))
    return model
