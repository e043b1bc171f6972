"""Issue 13 review, items 4 and 5: keras.applications files that do not fit say so in our words
(which application the file belongs to; the first layer whose shapes differ, expected vs found),
and a file with the classifier loads into top=false with a note that the classifier was not used,
giving keras.applications' own headless features."""
from __future__ import annotations

import keras
import numpy as np
import pytest

import incdsl
from incdsl.backends.keras.build import build_model, load_weights_file

from conftest import SPECS, Cli
from pretrained_files import randomized, save_legacy_h5


@pytest.fixture(scope="module")
def v3_files(tmp_path_factory):
    """InceptionV3 (weights=None, random values) as keras.applications' legacy .h5: headless
    (`inception_v3_notop.h5`), with its 1000-class top, with a 7-class top; and the top one in
    Keras 3's .weights.h5."""
    d = tmp_path_factory.mktemp("v3")
    shape = (75, 75, 3)
    notop = randomized(keras.applications.InceptionV3(weights=None, include_top=False, input_shape=shape))
    save_legacy_h5(notop, d / "inception_v3_notop.h5")
    top = randomized(keras.applications.InceptionV3(weights=None, input_shape=shape), seed=1)
    save_legacy_h5(top, d / "inception_v3.h5")
    top.save_weights(d / "inception_v3.weights.h5")
    seven = keras.applications.InceptionV3(weights=None, input_shape=shape, classes=7)
    save_legacy_h5(seven, d / "seven.h5")
    headless = keras.Model(top.input, top.get_layer("mixed10").output)  # top's features, keras' own
    x = np.random.default_rng(0).uniform(-1, 1, (1, *shape)).astype("float32")
    return d, x, np.asarray(headless(x, training=False), np.float64)


def _compile(capsys, tmp_path, spec, weights, *sets):
    out = tmp_path / "m.keras"
    code, _, err = Cli(capsys)("compile", SPECS / f"{spec}.inc", "--to", "keras",
                               *[a for s in sets for a in ("--set", s)], "--weights", weights, "-o", out)
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 4, err
    assert code == 0 or not out.exists()
    return code, err


@pytest.mark.slow
def test_inception_v3_notop_file_into_xception_names_its_application(v3_files, capsys, tmp_path):
    d, _x, _want = v3_files
    code, err = _compile(capsys, tmp_path, "xception", d / "inception_v3_notop.h5", "size=96", "top=false")
    assert code == 1, err
    assert "looks like keras.applications.InceptionV3 weights (spec inception_v3" in err, err
    assert "Layer count mismatch" not in err and "compile specs/inception_v3.inc" in err, err


@pytest.mark.slow
def test_seven_class_file_into_1000_classes_names_the_classifier_shapes(v3_files, capsys, tmp_path):
    d, _x, _want = v3_files
    code, err = _compile(capsys, tmp_path, "inception_v3", d / "seven.h5", "size=75")
    assert code == 1, err
    assert ("'predictions' expects kernel 2048x1000, bias 1000; the file's #189 'predictions' has "
            "kernel 2048x7, bias 7") in err, err
    assert "--set classes=7" in err and "Shape mismatch" not in err, err


@pytest.mark.slow
def test_file_with_top_into_top_false_notes_the_unused_classifier_and_gives_keras_features(v3_files, capsys,
                                                                                           tmp_path):
    d, x, want = v3_files
    net = incdsl.load(SPECS / "inception_v3.inc", size=75, top=False)
    for weights in (d / "inception_v3.h5", d / "inception_v3.weights.h5"):
        code, err = _compile(capsys, tmp_path, "inception_v3", weights, "size=75", "top=false")
        assert code == 0, err
        assert (f"{weights}: note: the file's classifier weights (layer 'predictions', 1000 classes) "
                "were not used") in err
        model = build_model(net, inference=True)
        load_weights_file(model, net, weights)
        capsys.readouterr()
        got = np.asarray(model(x, training=False), np.float64)
        assert got.shape == want.shape and want.std() > 1e-3
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), weights
