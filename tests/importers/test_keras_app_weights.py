"""Issue 13, items 1 and 5: keras.applications weights into our specs, against keras.applications.

Item 1: every reference spec takes top=true|false and pooling=none|avg|max (keras' include_top
and pooling); a *_notop file in keras.applications' legacy .h5 layout, made here from a
weights=None model with random values, loads into the headless spec through --weights and gives
keras.applications' features to 1e-5. Item 5: the same weights as Keras 3's own `.weights.h5`
and as a legacy `.h5` load into a training model with aux heads, through the CLI, for
inception_v3 and inception_resnet_v2.
"""
from __future__ import annotations

import numpy as np
import pytest

import incdsl
from incdsl.backends.keras.apps import reference_model
from incdsl.backends.keras.build import build_model, load_weights_file
from incdsl.backends.onnx.weights import read_keras_file
from incdsl.cli.main import main
from incdsl.errors import SpecError

from conftest import SPECS
from pretrained_files import randomized, save_legacy_h5


@pytest.mark.parametrize("spec", sorted(p.stem for p in SPECS.glob("*.inc")))
def test_every_reference_spec_is_headless_on_request(spec):
    top = incdsl.load(SPECS / f"{spec}.inc")
    main_head = next(h for h in top.heads if not h.train_only)
    for pooling, op in (("avg", "gap"), ("max", "gmp"), (None, None)):
        net = incdsl.load(SPECS / f"{spec}.inc", top=False, pooling=pooling)
        head = next(h for h in net.heads if not h.train_only)
        if op:
            assert net.layers[head.node].op == op and len(head.shape) == 1
        else:
            assert len(head.shape) == 3  # the last feature map
        assert net.total().params < top.total().params or main_head.shape == head.shape
    ignored = incdsl.load(SPECS / f"{spec}.inc", pooling="max")  # keras ignores pooling with a top
    assert ignored.total() == top.total()


@pytest.mark.slow
@pytest.mark.parametrize("spec,pooling,size", [("inception_v3", None, 299), ("xception", "avg", 96)])
def test_notop_legacy_h5_gives_keras_features(spec, pooling, size, tmp_path):
    net = incdsl.load(SPECS / f"{spec}.inc", top=False, pooling=pooling, size=size)
    ref = randomized(reference_model(net))
    assert len(ref.output.shape) == (2 if pooling else 4)
    path = tmp_path / f"{spec}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    save_legacy_h5(ref, path)
    x = np.random.default_rng(1).uniform(-1, 1, (1, size, size, 3)).astype("float32")
    want = np.asarray(ref(x, training=False), np.float64)
    for w in ref.weights:  # the importer loads into this same (cached) reference: the file alone counts
        w.assign(np.zeros(w.shape, "float32"))
    ours = build_model(net, inference=True)
    load_weights_file(ours, net, path)
    got = np.asarray(ours(x, training=False), np.float64)
    assert got.shape == want.shape and want.std() > 1e-3
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    if spec == "inception_v3":  # bad input: the notop file into the spec with its top
        with_top = incdsl.load(SPECS / f"{spec}.inc")
        with pytest.raises(SpecError,
                           match="without its top .* no weights for layer 'predictions', which expects "
                                            "kernel 2048x1000, bias 1000") as e:
            load_weights_file(build_model(with_top, inference=True), with_top, path)
        # the library's words
        assert "hint: load it into the headless network: set top=false" in e.value.render()
        from incdsl.cli.commands.flags import cli_error
        assert "hint: load it into the headless network: --set top=false" in cli_error(e.value).render()


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["inception_v3", "inception_resnet_v2"])
def test_keras_applications_weights_both_formats_into_aux_model_through_cli(spec, tmp_path, capsys):
    net = incdsl.load(SPECS / f"{spec}.inc", aux=True)
    inference = incdsl.load(SPECS / f"{spec}.inc")
    ref = randomized(reference_model(net))
    modern, legacy = tmp_path / "ref.weights.h5", tmp_path / "ref.h5"
    ref.save_weights(modern)  # Keras 3's own format
    save_legacy_h5(ref, legacy)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 299, 299, 3)).astype("float32")
    logits = np.log(np.asarray(ref(x, training=False), np.float64))
    read = {}
    for weights in (modern, legacy):
        out = tmp_path / f"{weights.name}.keras"
        code = main(["compile", str(SPECS / f"{spec}.inc"), "--to", "keras", "--set", "aux=true",
                     "--weights", str(weights), "-o", str(out)])
        printed = capsys.readouterr()
        assert code == 0, printed.err
        assert "keras.applications importer" in printed.out and "aux_logits" in printed.out
        read[weights] = read_keras_file(inference, out)  # the written file's weights, read with h5py
    for node, arrays in read[modern].items():  # both formats give the same weights
        for key, arr in arrays.items():
            np.testing.assert_array_equal(arr, read[legacy][node][key])
    got = np.log(np.asarray(build_model(inference, inference=True, weights=read[modern])(x, training=False),
                            np.float64))
    # log-probabilities: the logits up to a constant per image
    np.testing.assert_allclose(got - got.mean(), logits - logits.mean(), atol=1e-4)
    assert logits.std() > 1e-3
