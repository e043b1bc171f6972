"""The Keras 3 backend: counts and shapes for every spec, each special op against torch.nn.functional,
save/load in a fresh process, a second Keras backend (PyTorch), and `incdsl compile --to keras`."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import incdsl
from incdsl.errors import SpecError
from incdsl.weights.arrays import init_weights, weight_shapes

from conftest import ROOT, SPECS

SIZES = (75, 96, 128, 160, 224, 299)  # tried in order for specs with a `size` parameter
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def small_variant(path: Path):
    """The spec at a small size, 10 classes and width 0.25 where its parameters allow."""
    spec = incdsl.Spec(path)
    base = {"classes": 10} if "classes" in spec.params else {}
    widths = [{"width": 0.25}, {}] if "width" in spec.params else [{}]
    sizes = [{"size": s} for s in SIZES] if "size" in spec.params else [{}]
    for w in widths:
        for s in sizes:
            try:
                return spec.build(**base, **w, **s)
            except SpecError:
                continue
    return spec.build(**base)


def spec_text(body: str, h: int, w: int, c: int, params: str = "") -> str:
    return f"network t({params}) {{\n  input {h}x{w}x{c}\n  {body}\n}}\n"


def spec_net(body: str, tmp_path: Path, h: int, w: int, c: int):
    p = tmp_path / "t.inc"
    p.write_text(spec_text(body, h, w, c))
    return incdsl.load(p)


def node_tensors(model, net):
    """Each node's Keras output tensor: its activation, else its batch norm, else its layer."""
    from incdsl.backends.keras.build import keras_name
    names = {layer.name for layer in model.layers}
    out = {}
    for node in net.layers:
        name = next(n for n in (keras_name(node, "act"), keras_name(node, "bn"),
                                keras_name(node)) if n in names)
        out[node] = model.get_layer(name).output
    return out


def weight_count(variables) -> int:
    return sum(math.prod(v.shape) for v in variables)


# --- weights: numpy only ---------------------------------------------------------------------

def test_init_weights_cover_every_parameter_and_are_deterministic():
    net = incdsl.load(SPECS / "googlenet_tv.inc", width=0.25, size=64, classes=3)
    w0, w0b, w1 = init_weights(net, 0), init_weights(net, 0), init_weights(net, 1)
    assert sum(a.size for arrays in w0.values() for a in arrays.values()) == net.total().params
    for node, arrays in w0.items():
        assert {k: a.shape for k, a in arrays.items()} == weight_shapes(net, node)
        assert all(np.array_equal(a, w0b[node][k]) for k, a in arrays.items())
    kernel = w0["conv1"]["kernel"]  # 7x7x3x16: glorot limit sqrt(6 / (49*3 + 49*16))
    limit = math.sqrt(6 / (49 * 3 + 49 * 16))
    assert kernel.dtype == np.float32 and np.abs(
        kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert not np.array_equal(kernel, w1["conv1"]["kernel"])
    bn = w0["conv1"]
    assert (bn["gamma"] == 1).all() and (bn["beta"] == 0).all() and (bn["moving_variance"] == 1).all()
    # a node's weights depend on its name, not on the rest of the network
    other = incdsl.load(SPECS / "googlenet_tv.inc", width=0.25, size=64, classes=3, aux=False)
    assert np.array_equal(init_weights(other, 0)["conv1"]["kernel"], kernel)


def test_import_incdsl_does_not_import_keras():
    code = ("import sys, incdsl; incdsl.load('specs/googlenet.inc'); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'torch', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- every spec: counts, shapes, a forward pass ----------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SPECS.glob("*.inc")), ids=lambda p: p.stem)
def test_counts_and_shapes_match_the_front_end(path):
    net = small_variant(path)
    summary = net.report()
    models = {}
    for inference, want in ((False, summary["params"]), (True, summary["inference"]["params"])):
        model = models[inference] = net.to_keras(inference=inference)
        assert model.count_params() == want["total"]
        assert weight_count(model.trainable_weights) == want["trainable"]
        assert weight_count(model.non_trainable_weights) == want["non_trainable"]
        heads = [h for h in net.heads if not (inference and h.train_only)]
        assert model.output_names == [h.name for h in heads]
    # training model: run it once and check every node's actual output shape
    tensors = node_tensors(models[False], net)
    probe = __import__("keras").Model(models[False].input, list(tensors.values()))
    x = np.random.default_rng(0).uniform(0, 1, (1, *net.input_shape)).astype("float32")
    for node, y in zip(tensors, probe(x, training=False)):
        assert tuple(y.shape) == (1, *net.shapes[node]), node
        assert np.isfinite(np.asarray(y)).all(), node


# --- each op against torch.nn.functional on tiny tensors -------------------------------------

def _same_pad(size, k, s):  # TF's pad=same: the extra row/column goes at the bottom/right
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _tf_same(t, k, s, value=0.0):
    import torch.nn.functional as F
    (pt, pb), (pl, pr) = _same_pad(t.shape[2], k, s), _same_pad(t.shape[3], k, s)
    return F.pad(t, (pl, pr, pt, pb), value=value)


def _ops_cases():
    import torch
    import torch.nn.functional as F
    acts = ("relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax", "silu", "gelu",
            "elu",
            "leaky_relu")
    torch_acts = (F.relu, F.relu6, torch.sigmoid, F.hardsigmoid, torch.tanh, lambda t: F.softmax(t, 1),
                  lambda t: F.log_softmax(t, 1), F.silu, F.gelu, F.elu, lambda t: F.leaky_relu(t, 0.2))
    return [  # (id, body, torch reference on NCHW, h, w, c)
        ("max_ceil", "maxpool(3, stride=2, ceil=true)", lambda t: F.max_pool2d(t, 3, 2, ceil_mode=True), 10,
         8, 3),
        ("max_pad_ceil", "maxpool(3, stride=2, pad=1, ceil=true)",
         lambda t: F.max_pool2d(t, 3, 2, padding=1, ceil_mode=True), 10, 8, 3),
        ("max_same", "maxpool(3, stride=2, pad=same)",
         lambda t: F.max_pool2d(_tf_same(t, 3, 2, -math.inf), 3, 2),
         10, 9, 3),
        ("avg_ceil", "avgpool(3, stride=2, ceil=true)", lambda t: F.avg_pool2d(t, 3, 2, ceil_mode=True), 10,
         8, 3),
        ("avg_pad_ceil_countpad", "avgpool(3, stride=2, pad=1, ceil=true, count_pad=true)",
         lambda t: F.avg_pool2d(t, 3, 2, padding=1, ceil_mode=True, count_include_pad=True), 10, 8, 3),
        ("avg_pad_ceil_nocount", "avgpool(3, stride=2, pad=1, ceil=true, count_pad=false)",
         lambda t: F.avg_pool2d(t, 3, 2, padding=1, ceil_mode=True, count_include_pad=False), 10, 8, 3),
        ("avg_pad_countpad", "avgpool(3, stride=1, pad=1, count_pad=true)",
         lambda t: F.avg_pool2d(t, 3, 1, padding=1, count_include_pad=True), 7, 6, 3),
        ("avg_pad_nocount", "avgpool(3, stride=1, pad=1, count_pad=false)",
         lambda t: F.avg_pool2d(t, 3, 1, padding=1, count_include_pad=False), 7, 6, 3),
        ("avg_same_nocount", "avgpool(3, stride=2, pad=same)",  # Keras/TF: padding excluded
         lambda t: F.avg_pool2d(_tf_same(t, 3, 2), 3, 2) / F.avg_pool2d(_tf_same(torch.ones_like(t), 3, 2), 3,
                                                                        2),
         8, 7, 3),
        ("avg_same_countpad", "avgpool(3, stride=2, pad=same, count_pad=true)",
         lambda t: F.avg_pool2d(_tf_same(t, 3, 2), 3, 2), 8, 7, 3),
        ("adaptive_4", "adaptive_avgpool(4)", lambda t: F.adaptive_avg_pool2d(t, 4), 14, 10, 3),
        ("adaptive_divisible", "adaptive_avgpool((2, 5))", lambda t: F.adaptive_avg_pool2d(t, (2, 5)), 8, 10,
         3),
        ("lrn_5", "lrn(5, alpha=0.5, beta=0.75, bias=2.0)",
         lambda t: F.local_response_norm(t, 5, alpha=0.5, beta=0.75, k=2.0), 4, 5, 7),
        ("lrn_4_default", "scale(30.0) -> lrn(4)", lambda t: F.local_response_norm(t * 30, 4), 4, 5, 6),
        ("zeropad_asym", "zeropad((1, 2, 0, 3))", lambda t: F.pad(t, (0, 3, 1, 2)), 4, 5, 2),
        ("scale", "scale(0.17)", lambda t: t * 0.17, 3, 3, 2),
        ("gap_gmp", "concat { gap; gmp }", lambda t: torch.cat([t.mean((2, 3)), t.amax((2, 3))], 1), 5, 4, 3),
        ("flatten", "flatten", lambda t: t.permute(0, 2, 3, 1).reshape(t.shape[0], -1), 3, 4, 2),
        ("acts", "concat { " + "; ".join(acts) + " }", lambda t: torch.cat([f(t) for f in torch_acts], 1), 3,
         4, 5),
        ("add", "add { identity; relu; sigmoid }", lambda t: t + F.relu(t) + torch.sigmoid(t), 3, 4, 2),
    ]


@pytest.mark.slow
def test_ops_match_torch_functional(tmp_path):
    import torch
    rng = np.random.default_rng(0)
    failures = []
    for case_id, body, ref, h, w, c in _ops_cases():
        model = spec_net(body, tmp_path, h, w, c).to_keras()
        x = rng.standard_normal((2, h, w, c)).astype("float32")
        y = np.asarray(model(x))
        t = torch.from_numpy(x).permute(0, 3, 1, 2)
        want = ref(t)
        want = (want.permute(0, 2, 3, 1) if want.ndim == 4 else want).numpy()
        if y.shape != want.shape or not np.allclose(y, want, atol=1e-5, rtol=1e-5):
            failures.append((case_id, y.shape, want.shape))
    assert not failures


def _conv_weights(net, rng):
    """Seeded weights with non-trivial biases and batch-norm statistics."""
    weights = init_weights(net, 0)
    for arrays in weights.values():
        for k in ("bias", "beta", "moving_mean"):
            if k in arrays:
                arrays[k] = rng.standard_normal(arrays[k].shape).astype("float32")
        for k in ("gamma", "moving_variance"):
            if k in arrays:
                arrays[k] = rng.uniform(0.5, 2.0, arrays[k].shape).astype("float32")
    return weights


@pytest.mark.slow
def test_convs_with_explicit_padding_bn_and_act_match_torch(tmp_path):
    import torch
    import torch.nn.functional as F

    def bn(t, a):
        return F.batch_norm(t,
                            *(torch.from_numpy(a[k]) for k in ("moving_mean", "moving_variance", "gamma",
                                                               "beta")),
                            eps=1e-3)

    def k4(a):  # HWIO -> OIHW
        return torch.from_numpy(a.transpose(3, 2, 0, 1).copy())

    cases = [  # body, torch reference(t, weights of node op_1)
        ("conv(5, 3, stride=2, pad=(0, 2, 1, 0), bn=true, act=relu)",
         lambda t, a: F.relu(bn(F.conv2d(F.pad(t, (1, 0, 0, 2)), k4(a["kernel"]), torch.from_numpy(a["bias"]),
                                         stride=2), a))),
        ("conv(4, (1, 3), dilation=2, pad=same, bias=false)",
         lambda t, a: F.conv2d(F.pad(t, (2, 2, 0, 0)), k4(a["kernel"]), dilation=2)),
        ("conv(4, 3, stride=2, pad=same)",
         lambda t, a: F.conv2d(_tf_same(t, 3, 2), k4(a["kernel"]), torch.from_numpy(a["bias"]), stride=2)),
        ("dwconv(3, multiplier=2, pad=(1, 0, 0, 1), bn=true)",
         lambda t, a: bn(F.conv2d(F.pad(t, (0, 1, 1, 0)), _dw(a["depthwise_kernel"]),
                                  torch.from_numpy(a["bias"]),
                                  groups=3), a)),
        ("sepconv(6, 3, pad=valid, bias=false, act=relu6)",
         lambda t, a: F.relu6(F.conv2d(F.conv2d(t, _dw(a["depthwise_kernel"]), groups=3),
                                       k4(a["pointwise_kernel"])))),
        ("conv(4, 1) -> flatten -> dense(5, act=tanh)", None),
    ]
    rng = np.random.default_rng(1)
    for body, ref in cases:
        net = spec_net(body, tmp_path, 7, 6, 3)
        weights = _conv_weights(net, rng)
        model = net.to_keras(weights=weights)
        x = rng.standard_normal((2, 7, 6, 3)).astype("float32")
        y = np.asarray(model(x))
        t = torch.from_numpy(x).permute(0, 3, 1, 2)
        if ref is None:  # dense on the NHWC flattening of a 1x1 conv
            a, d = weights["conv_1"], weights["dense_1"]
            z = F.conv2d(t, k4(a["kernel"]), torch.from_numpy(a["bias"])).permute(0, 2, 3, 1).reshape(2, -1)
            want = torch.tanh(z @ torch.from_numpy(d["kernel"]) + torch.from_numpy(d["bias"])).numpy()
        else:
            node = next(iter(weights))
            want = ref(t, weights[node]).permute(0, 2, 3, 1).numpy()
        assert y.shape == want.shape, body
        np.testing.assert_allclose(y, want, atol=1e-4, rtol=1e-4, err_msg=body)


def _dw(kernel):  # (kh, kw, cin, mult) -> torch grouped weight (cin*mult, 1, kh, kw)
    import torch
    kh, kw, cin, mult = kernel.shape
    return torch.from_numpy(kernel.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw).copy())


@pytest.mark.slow
def test_seeded_model_holds_init_weights_and_weights_round_trip():
    from incdsl.backends.keras.weights import from_keras, to_keras
    net = incdsl.load(SPECS / "googlenet_tv.inc", width=0.25, size=64, classes=3)
    want = init_weights(net, 3)
    model = net.to_keras(seed=3)
    assert model.get_layer("inception3a-b2-conv_2-bn").count_params() == 4 * 32  # the naming contract
    assert model.get_layer("aux1-dense_2").output.shape == (None, 3)
    got = from_keras(model, net)
    assert got.keys() == want.keys()
    assert all(np.array_equal(got[n][k], want[n][k]) for n in want for k in want[n])
    inf = net.to_keras(inference=True, weights=want)  # extra training-only nodes are skipped
    assert set(from_keras(inf, net)) == {n for n in want if not net.is_train_only(n)}
    bad = {**want, "conv1": {**want["conv1"], "kernel": want["conv1"]["kernel"][:, :, :, :4]}}
    with pytest.raises(SpecError, match="kernel of 'conv1' is 7x7x3x4; the layer needs 7x7x3x16"):
        to_keras(inf, net, bad)
    with pytest.raises(SpecError, match="nothing for layer 'conv1'"):
        to_keras(inf, net, {n: a for n, a in want.items() if n != "conv1"})


@pytest.mark.slow
def test_stride_with_dilation_builds_at_stride_1_then_subsamples(tmp_path):
    # Keras' Conv2D refuses strides > 1 with dilation_rate > 1; the backend builds the same conv at
    # stride 1 and keeps every 2nd row and column (values: tests/ops/test_ops_vs_torch.py, against torch)
    model = spec_net("conv(4, 3, stride=2, dilation=2)", tmp_path, 9, 9, 3).to_keras()
    assert model.get_layer("conv_1").strides == (1, 1) and model.get_layer("conv_1-sub").strides == (2, 2)
    assert tuple(model.output.shape[1:]) == (5, 5, 4)


# --- save and load in a fresh process --------------------------------------------------------

ALL_CUSTOM = """conv(8, 3, pad=1, bn=true, act=relu) -> lrn(5) -> scale(3.0)
  maxpool(3, stride=2, pad=1, ceil=true)
  avgpool(3, stride=2, pad=1, ceil=true, count_pad=false)
  a = avgpool(3, stride=1, ceil=true, pad=1, count_pad=true)
  output main = adaptive_avgpool(3) -> flatten -> dense(classes, act=softmax)
  train_output side = a -> conv(6, 3, stride=2, pad=same) -> avgpool(3, stride=2, pad=same) ->
    maxpool(2, stride=1, pad=same) -> gap -> dense(2)"""

LOAD = """
import sys, numpy as np, incdsl
assert "keras" not in sys.modules
import keras
data = np.load(sys.argv[1])
model = keras.models.load_model(sys.argv[2])
ys = model(data["x"], training=False)
np.savez(sys.argv[3], *[np.asarray(y) for y in (ys if isinstance(ys, (list, tuple)) else [ys])])
print(" ".join(model.output_names))
"""


@pytest.mark.slow
def test_save_and_load_model_in_a_fresh_process(tmp_path):
    net = spec_net(ALL_CUSTOM.replace("classes", "4"), tmp_path, 12, 10, 3)  # ceil mode adds a window
    model = net.to_keras(weights=_conv_weights(net, np.random.default_rng(2)))
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"LRN", "MaxPool2D", "AvgPool2D", "AdaptiveAvgPool2D"} <= kinds
    x = np.random.default_rng(3).standard_normal((2, 12, 10, 3)).astype("float32")
    want = [np.asarray(y) for y in model(x, training=False)]
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "x.npz", x=x)
    out = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "x.npz"), str(tmp_path / "m.keras"),
                          str(tmp_path / "y.npz")], env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["main", "side"]
    got = np.load(tmp_path / "y.npz")
    for i, w in enumerate(want):
        np.testing.assert_allclose(got[f"arr_{i}"], w, atol=1e-6)


# --- the same model on Keras' PyTorch backend ------------------------------------------------

TORCH_RUN = """
import sys, numpy as np, incdsl, keras
assert keras.backend.backend() == "torch"
flat = np.load(sys.argv[1])
weights = {}
for key in flat.files:
    if "|" in key:
        node, name = key.split("|")
        weights.setdefault(node, {})[name] = flat[key]
net = incdsl.load("specs/googlenet_tv.inc", width=0.25, size=64, classes=3)
model = net.to_keras(weights=weights)
assert model.get_layer("inception3a-b2-conv_2-bn").count_params() == 4 * 32  # torch forbids '.' in names
ys = model(flat["x"], training=False)
# the tiny spec with every custom layer, seeded weights
tiny = incdsl.load(sys.argv[3]).to_keras(seed=0)(flat["x_tiny"], training=False)
np.savez(sys.argv[2], *[keras.ops.convert_to_numpy(y) for y in [*ys, *tiny]])
"""


@pytest.mark.slow
def test_torch_backend_gives_the_same_outputs(tmp_path):
    import keras
    assert keras.backend.backend() == "tensorflow"
    net = incdsl.load(SPECS / "googlenet_tv.inc", width=0.25, size=64, classes=3)
    weights = _conv_weights(net, np.random.default_rng(4))
    x = np.random.default_rng(5).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    x_tiny = np.random.default_rng(6).standard_normal((2, 12, 10, 3)).astype("float32")
    tiny = tmp_path / "tiny.inc"
    tiny.write_text(spec_text(ALL_CUSTOM.replace("classes", "4"), 12, 10, 3))
    np.savez(tmp_path / "w.npz", x=x, x_tiny=x_tiny,
             **{f"{n}|{k}": a for n, arrays in weights.items() for k, a in arrays.items()})
    out = subprocess.run([sys.executable, "-c", TORCH_RUN, str(tmp_path / "w.npz"), str(tmp_path / "y.npz"),
                          str(tiny)],
                         cwd=ROOT, env={**ENV, "KERAS_BACKEND": "torch"}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    want = [np.asarray(y) for y in net.to_keras(weights=weights)(x, training=False)]
    want += [np.asarray(y) for y in incdsl.load(tiny).to_keras(seed=0)(x_tiny, training=False)]
    got = np.load(tmp_path / "y.npz")
    assert len(got.files) == len(want) == 5
    for i, w in enumerate(want):
        assert np.abs(w).max() > 1e-3  # a real signal, not zeros on both sides
        np.testing.assert_allclose(got[f"arr_{i}"], w, atol=1e-4, rtol=1e-4)


# --- incdsl compile --to keras (on a tiny spec: the command, not the network, is under test) --

@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.inc"
    path.write_text(spec_text(ALL_CUSTOM, 12, 10, 3, "classes=4"))

    def run(*args):
        from incdsl.cli.main import main
        return main(["compile", str(path), "--to", "keras", *args])
    run.path = path
    return run


@pytest.mark.slow
def test_compile_cli_writes_a_loadable_file(tiny, tmp_path, capsys, monkeypatch):
    import keras

    from incdsl.backends.keras.weights import from_keras
    out = tmp_path / "g.keras"
    assert tiny("-o", str(out)) == 0
    printed = capsys.readouterr().out
    net = incdsl.load(tiny.path)
    model = keras.models.load_model(out)
    assert str(out) in printed and f"{net.total().params:,} params" in printed
    assert model.count_params() == net.total().params and model.output_names == ["main", "side"]
    seeded = init_weights(net, 0)
    a = from_keras(model, net)
    assert all(np.array_equal(a[n][k], seeded[n][k]) for n in seeded for k in seeded[n])
    # --inference, weights from the training model's file; default output name in the working dir
    monkeypatch.chdir(tmp_path)
    assert tiny("--inference", "--weights", str(out)) == 0
    inf = keras.models.load_model(tmp_path / "t.keras")
    assert inf.count_params() == net.total(inference=True).params and inf.output_names == ["main"]
    b = from_keras(inf, net)
    assert set(b) == {"conv_1", "main"} and all(np.array_equal(b[n][k], a[n][k]) for n in b for k in b[n])
    # a .weights.h5 file of the same model
    changed = net.to_keras(weights=_conv_weights(net, np.random.default_rng(6)))
    changed.save_weights(tmp_path / "w.weights.h5")
    assert tiny("--weights", str(tmp_path / "w.weights.h5"), "-o", "h.keras") == 0
    c, want = from_keras(keras.models.load_model(tmp_path / "h.keras"), net), from_keras(changed, net)
    assert all(np.array_equal(c[n][k], want[n][k]) for n in want for k in want[n])


@pytest.mark.slow
def test_compile_cli_failure_leaves_no_file(tiny, tmp_path, capsys):
    saved = tmp_path / "classes4.keras"
    assert tiny("-o", str(saved)) == 0
    before = set(tmp_path.iterdir())
    capsys.readouterr()
    # weights of another variant (4 classes into 5), a file that is not weights, a missing file, a wrong
    # suffix
    assert tiny("--set", "classes=5", "--weights", str(saved), "-o", str(tmp_path / "x.keras")) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and "'main'" in err and "needs 72x5" in err
    assert tiny("--weights", str(tiny.path), "-o", str(tmp_path / "x.keras")) == 1
    assert "error:" in capsys.readouterr().err  # ours, or the keras.applications importer's
    other = tmp_path / "other.weights.h5"
    incdsl.load(tiny.path, classes=5).to_keras().save_weights(other)
    assert tiny("--weights", str(other), "-o", str(tmp_path / "x.keras")) == 1
    assert "cannot load weights" in capsys.readouterr().err
    other.unlink()
    assert tiny("--weights", str(tmp_path / "nope.keras"), "-o", str(tmp_path / "y.keras")) == 1
    assert "no such weights file" in capsys.readouterr().err
    assert tiny("-o", str(tmp_path / "z.h5")) == 2
    assert set(tmp_path.iterdir()) == before  # no output, no temporary left behind
