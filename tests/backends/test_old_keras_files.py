"""`.keras` files saved before issue 26 moved the modules still load (issue 26 item 1).

tests/data/old_tree.keras was written by `incdsl compile tests/data/old_tree.inc --to keras` from
the flat layout, when incdsl's layers lived in `incdsl.backends.keras_layers`; its config names
that module and the registered names (`incdsl>LRN` ...) of every custom layer incdsl has.
"""
from __future__ import annotations

import json
import zipfile

import numpy as np

from conftest import ROOT

OLD = ROOT / "tests" / "data" / "old_tree.keras"
SPEC = ROOT / "tests" / "data" / "old_tree.inc"


def test_the_file_is_from_the_old_tree_and_names_every_custom_layer():
    from incdsl.backends.keras.layers import CUSTOM_OBJECTS

    config = json.loads(zipfile.ZipFile(OLD).read("config.json"))
    ours = {layer["registered_name"] for layer in config["config"]["layers"]
            if layer["module"] == "incdsl.backends.keras_layers"}
    assert ours == set(CUSTOM_OBJECTS)


def test_a_keras_file_from_the_old_tree_loads_and_predicts_as_the_spec_builds():
    import keras

    import incdsl

    old = keras.saving.load_model(OLD, compile=False)
    new = incdsl.load(SPEC).to_keras()  # seed 0, as `compile --to keras` seeded it
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(old(x)), np.asarray(new(x)), rtol=1e-5, atol=1e-5)
    assert [type(layer).__name__ for layer in old.layers] == [type(layer).__name__ for layer in new.layers]
