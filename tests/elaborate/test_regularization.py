"""weight_decay= and init= in specs (TF-slim's arg_scope), and `incdsl train --weight-decay`.

The conventions are checked against their sources: the regularization loss against TF-slim's
l2_regularizer formula (scale * sum(w^2) / 2 per kernel) on known weights, the parameter count of
the TF-slim spec against keras.applications.InceptionV3, initializers against Keras' own objects,
decoupled decay against what Keras' optimizer does to a kernel and a bias.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from incdsl import load
from incdsl.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"

SPEC = """
network t(classes=3, wd=0.0001) {
  defaults conv(weight_decay=wd, init=truncated_normal(0.1), bn=true, bn_momentum=0.9997)
  defaults dense(weight_decay=wd)
  input 16x16x3
  conv(8, 3) -> conv(8, 3, init=he_normal) -> sepconv(8, 3, weight_decay=0.001) ->
    dwconv(3, weight_decay=0.002) -> gap
  output fc = dense(classes)
}
"""


def _check(tmp_path, capsys, text):
    path = tmp_path / "s.inc"
    path.write_text(text)
    code = main(["check", str(path)])
    return code, capsys.readouterr()


@pytest.mark.parametrize("change, message", [
    ("init=he_normal", None),
    ("init=he_normall", "did you mean 'he_normal'"),
    ("init=trunc_normal(0.1)", "unknown function 'trunc_normal'"),
    ("init=truncated_normal(-1)", "stddev must be a finite number above 0"),
    ("init=truncated_normal(1e400)", "number too large"),
    ("init=truncated_normal", "truncated_normal needs its stddev"),
    ("init=he_normal(2)", "he_normal takes no arguments"),
    ("init=3", "must be an initializer"),
    ("init=he_normal, weight_decay=-1", "'weight_decay' must be a finite number, 0 or more"),
    ("init=he_normal, weight_decay=1e400", "number too large"),
])
def test_bad_initializer_and_decay_are_clean_errors(tmp_path, capsys, change, message):
    code, out = _check(tmp_path, capsys, SPEC.replace("init=he_normal", change))
    if message is None:
        assert code == 0
        return
    assert code == 1 and message in out.err and "^" in out.err and "s.inc:" in out.err
    assert "Traceback" not in out.err


def test_training_arguments_are_keyword_only(tmp_path, capsys):
    code, out = _check(tmp_path, capsys,
                       SPEC.replace("output fc = dense(classes)",
                                    "output fc = dense(classes, true, none, 0.1)"))
    assert code == 1 and "dense takes at most 3 positional arguments" in out.err


def test_regularization_loss_is_tf_slims_formula(tmp_path):
    """Keras' regularization loss of the built model equals sum over kernels of s * sum(w^2) / 2
    (TF-slim's l2_regularizer(s) and tf.nn.l2_loss), with each layer's own s, on the weights the
    seed gives (known: incdsl.weights.arrays.init_weights)."""
    import keras

    from incdsl.backends.keras.build import build_model
    from incdsl.weights.arrays import init_weights

    path = tmp_path / "t.inc"
    path.write_text(SPEC)
    net = load(path)
    weights = init_weights(net, 3)
    model = build_model(net, weights=weights)
    got = float(sum(keras.ops.convert_to_numpy(x) for x in model.losses))
    want = 0.0
    for node, arrays in weights.items():
        s = net.layers[node].attrs.get("weight_decay", 0.0)
        want += sum(
            s * float(
                (w.astype("float64") ** 2).sum()) / 2 for k, w in arrays.items() if k.endswith("kernel"))
    assert want > 0 and got == pytest.approx(want, rel=1e-5)
    assert len(model.losses) == 6  # conv_1, conv_2, sepconv's depthwise and pointwise kernels, dwconv, fc


def test_non_finite_values_from_python_are_refused():
    from incdsl.ops import KINDS
    from incdsl.ops.initializers import make
    for bad in (float("inf"), float("nan"), -1e-9):
        with pytest.raises(ValueError, match="finite number, 0 or more"):
            KINDS["decay"](bad)
        with pytest.raises(ValueError, match="finite number above 0"):
            make("truncated_normal", [bad])


def test_initializers_follow_keras(tmp_path):
    """Our numpy draws (init_weights, for seeded runs) and the Keras objects the backend passes
    have the same distribution: Keras' own initializer drawn on the same shape as reference."""
    import keras

    from incdsl.backends.keras.build import keras_initializer
    from incdsl.ops.initializers import draw

    shape = (3, 3, 64, 96)
    rng = np.random.default_rng(0)
    for init in ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal",
                 "lecun_uniform",
                 "truncated_normal(0.1)", "random_normal(0.05)", "random_uniform(0.2)", "zeros", "ones"):
        ours = draw(rng, shape, init)
        ref = keras.ops.convert_to_numpy(keras_initializer(init)(shape))
        assert ours.dtype == np.float32 and ours.shape == shape
        assert ours.std() == pytest.approx(ref.std(), rel=0.03, abs=1e-6), init
        if not init.startswith("random_normal"):  # bounded: uniform, or normal cut at 2 stddev
            assert np.abs(ours).max() <= np.abs(ref).max() * 1.05 + 1e-6, init
    w = draw(rng, shape, "truncated_normal(0.1)")
    assert np.abs(w).max() <= 0.2 and w.std() == pytest.approx(0.1 * 0.8796, rel=0.02)  # cut at 2 stddev


@pytest.mark.slow
def test_init_reaches_every_kernel_of_separable_and_depthwise_convs(tmp_path):
    """Keras names them depthwise_initializer / pointwise_initializer: init= on sepconv and dwconv
    builds, with Keras' own initializers (seed None: no numpy draw replaces them)."""
    from incdsl import loads
    net = loads(
        "network s() {\n  input 16x16x8\n  x = sepconv(64, 3, init=zeros, bias=false)\n"
        "  y = dwconv(3, init=random_uniform(0.5), bias=false)\n  z = x -> dwconv(5, init=ones, bias=false)\n"
        "  output o = concat { x; z } -> gap -> dense(2)\n  output p = y -> gap -> dense(2)\n}\n"
    )
    model = net.to_keras(seed=None)
    dw, pw = model.get_layer("x").get_weights()
    assert not dw.any() and not pw.any()                             # zeros, both kernels
    (k,) = model.get_layer("y").get_weights()
    assert 0 < np.abs(k).max() <= 0.5 and k.std() > 0.1               # uniform in [-0.5, 0.5]
    (ones,) = model.get_layer("z").get_weights()
    assert (ones == 1).all()


def test_seeded_builds_repeat(tmp_path):
    from incdsl.backends.keras.build import build_model
    path = tmp_path / "t.inc"
    path.write_text(SPEC)
    net = load(path)
    a, b, c = (build_model(net, seed=s).get_layer("conv_1").get_weights()[0] for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a).max() <= 0.2  # truncated_normal(0.1) from the defaults


def test_onnx_ignores_training_arguments(tmp_path):
    """weight_decay and init change training only: the ONNX model equals the Keras one."""
    from incdsl.backends.onnx.convert import export
    path = tmp_path / "t.inc"
    path.write_text(SPEC)
    net = load(path)
    r = export(net, tmp_path / "t.onnx", None, verify="keras")
    assert r.checked and "onnxruntime vs Keras" in r.checked  # export raises when they differ


@pytest.mark.slow
def test_tf_slim_inception_v3_arg_scope():
    """specs/inception_v3_slim.inc: TF-slim's inception_v3_arg_scope as it stands. Same params as
    keras.applications.InceptionV3; every conv and the classifier regularized with s = 4e-5 and a
    loss equal to TF-slim's formula on the seeded weights; conv kernels from trunc_normal(0.1);
    every BN with decay (momentum) 0.9997 and eps 0.001."""
    import keras

    from incdsl.backends.keras.build import build_model
    from incdsl.weights.arrays import init_weights

    net = load(SPECS / "inception_v3_slim.inc")
    ref = keras.applications.InceptionV3(weights=None)
    weights = init_weights(net, 0)
    model = build_model(net, weights=weights)
    assert model.count_params() == ref.count_params() == 23_851_784
    kernels = [w for node, arrays in weights.items() for k, w in arrays.items() if k.endswith("kernel")]
    assert len(model.losses) == len(kernels) == 95  # 94 convs and the classifier
    want = sum(4e-5 * float((w.astype("float64") ** 2).sum()) / 2 for w in kernels)
    got = float(sum(keras.ops.convert_to_numpy(x) for x in model.losses))
    assert got == pytest.approx(want, rel=1e-5)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 94
    for layer in convs:
        cfg = layer.get_config()
        assert cfg["kernel_initializer"]["class_name"] == "TruncatedNormal"
        assert cfg["kernel_initializer"]["config"]["stddev"] == 0.1
        assert cfg["kernel_regularizer"]["config"]["l2"] == pytest.approx(2e-5)  # Keras L2(s / 2)
        assert np.abs(layer.get_weights()[0]).max() <= 0.2
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(bns) == 94 and all(b.momentum == 0.9997 and b.epsilon == 0.001 and not b.scale for b in bns)


def test_decoupled_weight_decay_spares_biases_and_bn():
    """--weight-decay: Keras' decoupled decay, w -= lr * wd * w each step, kernels only."""
    import keras

    from incdsl.train.model import make_optimizer

    opt = make_optimizer("sgd", 0.1, 10, weight_decay=0.01)
    kernel = keras.Variable(np.ones((2, 2), "float32"), name="kernel")
    bias = keras.Variable(np.ones((2,), "float32"), name="bias")
    gamma = keras.Variable(np.ones((2,), "float32"), name="gamma")
    opt.apply_gradients([(np.zeros((2, 2), "float32"), kernel), (np.zeros(2, "float32"), bias),
                         (np.zeros(2, "float32"), gamma)])
    assert np.allclose(keras.ops.convert_to_numpy(kernel), 1 - 0.1 * 0.01)
    assert np.allclose(keras.ops.convert_to_numpy(bias), 1.0)
    assert np.allclose(keras.ops.convert_to_numpy(gamma), 1.0)
