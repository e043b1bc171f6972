"""The ops of issue 14 against reference implementations: grouped conv (torch.nn.Conv2d groups=),
channel shuffle (torch.nn.ChannelShuffle), a squeeze-and-excitation `multiply` block
(torchvision.ops.SqueezeExcitation), drop path (timm.layers.DropPath), swish and leaky_relu's slope
(torch.nn.SiLU, LeakyReLU), 1xn sizes from names and stride with dilation (torch.nn.functional.conv2d):
shapes, parameter counts and values from the Keras backend; then all of them through direct ONNX
and tf2onnx (verified against Keras by onnxruntime), and on Keras' JAX and PyTorch backends."""
import os
import subprocess
import sys

import numpy as np
import pytest

import incdsl
from incdsl.cli import main as cli
from incdsl.weights.arrays import init_weights

from conftest import ROOT

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def net_of(spec_file, body: str, shape=(9, 10, 16), head: str = ""):
    h, w, c = shape
    return incdsl.load(spec_file(f"module fac(c, n) {{\n  conv(c, 1xn, pad=same) -> conv(c, nx1)\n}}\n"
                                 f"network t(k=3) {{\n  input {h}x{w}x{c}\n  {body}\n{head}}}\n"))


def perturbed(net, seed=1):
    """init_weights with non-zero biases, so that bias layouts are checked too."""
    w = init_weights(net, 0)
    rng = np.random.default_rng(seed)
    for arrays in w.values():
        if "bias" in arrays:
            arrays["bias"] = rng.standard_normal(arrays["bias"].shape).astype("float32")
    return w


def run_keras(net, weights, x, training=False):
    model = net.to_keras(weights=weights)
    assert model.count_params() == net.total().params  # Keras' own count agrees with the op table
    return np.asarray(model(x, training=training))


def nchw(x):
    import torch
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy()


X = np.random.default_rng(0).standard_normal((2, 9, 10, 16)).astype("float32")


@pytest.mark.slow  # builds Keras models (TensorFlow's import alone is over 5 s)
def test_grouped_conv_matches_torch(spec_file):
    import torch
    net = net_of(spec_file, "conv(32, 3, pad=1, groups=4)")
    w = perturbed(net)
    ref = torch.nn.Conv2d(16, 32, 3, padding=1, groups=4)
    with torch.no_grad():  # Keras (kh, kw, cin / groups, cout) -> torch (cout, cin / groups, kh, kw)
        ref.weight.copy_(torch.from_numpy(w["conv_1"]["kernel"].transpose(3, 2, 0, 1)))
        ref.bias.copy_(torch.from_numpy(w["conv_1"]["bias"]))
    assert sum(p.numel() for p in ref.parameters()) == net.total().params == 3 * 3 * 4 * 32 + 32
    assert net.total().macs == 9 * 10 * 32 * 3 * 3 * 4
    np.testing.assert_allclose(run_keras(net, w, X), nhwc(ref(nchw(X))), atol=1e-5)


@pytest.mark.slow  # builds Keras models (TensorFlow's import alone is over 5 s)
def test_channel_shuffle_matches_torch(spec_file):
    import torch
    net = net_of(spec_file, "channel_shuffle(4)")
    np.testing.assert_array_equal(run_keras(net, None, X), nhwc(torch.nn.ChannelShuffle(4)(nchw(X))))


@pytest.mark.slow  # builds Keras models (TensorFlow's import alone is over 5 s)
def test_squeeze_and_excitation_matches_torchvision(spec_file):
    import torch
    from torchvision.ops import SqueezeExcitation
    net = net_of(spec_file, "multiply { identity; gap -> dense(4, act=relu) -> dense(16, act=sigmoid) }")
    w = perturbed(net)
    ref = SqueezeExcitation(16, 4)  # avgpool -> fc1 (1x1 conv) -> relu -> fc2 -> sigmoid, times the input
    with torch.no_grad():
        for fc, node in ((ref.fc1, "b2/dense_1"), (ref.fc2, "b2/dense_2")):
            fc.weight.copy_(torch.from_numpy(w[node]["kernel"].T[:, :, None, None].copy()))
            fc.bias.copy_(torch.from_numpy(w[node]["bias"]))
    assert sum(p.numel() for p in ref.parameters()) == net.total().params == 16 * 4 + 4 + 4 * 16 + 16
    np.testing.assert_allclose(run_keras(net, w, X), nhwc(ref(nchw(X))), atol=1e-5)


@pytest.mark.slow  # builds Keras models (TensorFlow's import alone is over 5 s)
def test_squeeze_and_excitation_with_a_1x1_map_matches_torchvision(spec_file):
    # the review's spec, torchvision's own form: adaptive_avg_pool2d(1) -> 1x1 conv -> relu -> 1x1
    # conv -> sigmoid gives (N, C, 1, 1), broadcast over HxW (it once said "do not broadcast")
    import torch
    from torchvision.ops import SqueezeExcitation
    net = incdsl.load(spec_file("network se {\n  input 8x8x24\n  multiply { identity; adaptive_avgpool(1) -> "
                                "conv(6,1,act=relu) -> conv(24,1,act=sigmoid) }\n}\n"))
    assert net.shapes["b2/conv_2"] == (1, 1, 24) and net.shapes["multiply_1"] == (8, 8, 24)
    w = perturbed(net)
    ref = SqueezeExcitation(24, 6)
    with torch.no_grad():
        for fc, node in ((ref.fc1, "b2/conv_1"), (ref.fc2, "b2/conv_2")):
            fc.weight.copy_(torch.from_numpy(w[node]["kernel"].transpose(3, 2, 0, 1).copy()))
            fc.bias.copy_(torch.from_numpy(w[node]["bias"]))
    assert sum(p.numel() for p in ref.parameters()) == net.total().params == 24 * 6 + 6 + 6 * 24 + 24
    x = np.random.default_rng(2).standard_normal((2, 8, 8, 24)).astype("float32")
    np.testing.assert_allclose(run_keras(net, w, x), nhwc(ref(nchw(x))), atol=1e-5)


@pytest.mark.slow  # builds Keras models (TensorFlow's import alone is over 5 s)
def test_drop_path_matches_timm(spec_file):
    import torch
    from timm.layers import DropPath
    net = net_of(spec_file, "add { identity; conv(16, 3) -> drop_path(0.25) }")
    w = perturbed(net)
    assert net.total().params == 3 * 3 * 16 * 16 + 16  # drop_path has no weights
    x = np.random.default_rng(1).standard_normal((64, 9, 10, 16)).astype("float32")
    branch = net.to_keras(weights=w)
    # inference: the identity, as timm's DropPath in eval mode
    ref = DropPath(0.25).eval()
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(ref(t).numpy(), x)
    conv = np.asarray(incdsl.load(spec_file("network c() {\n  input 9x10x16\n  conv(16, 3)\n}\n", "c.inc"))
                      .to_keras(weights={"conv_1": w["b2/conv_1"]})(x))
    np.testing.assert_allclose(np.asarray(branch(x, training=False)), x + conv, atol=1e-5)
    # training: each sample's branch is dropped whole or kept and scaled by 1 / (1 - rate), as timm's
    ours = np.asarray(branch(x, training=True)) - x
    theirs = DropPath(0.25).train()(torch.from_numpy(conv.copy())).numpy()
    for got in (ours, theirs):
        kept = [np.allclose(g, c / 0.75, atol=1e-4) for g, c in zip(got, conv)]
        dropped = [np.allclose(g, 0.0) for g in got]
        assert all(k != d for k, d in zip(kept, dropped))
        assert 4 <= sum(dropped) <= 32  # 64 samples at rate 0.25: 16 expected


@pytest.mark.slow  # builds Keras models (TensorFlow's import alone is over 5 s)
def test_swish_leaky_relu_slopes_and_named_sizes_match_torch(spec_file):
    import keras
    import torch
    import torch.nn.functional as F
    net = net_of(spec_file,
                 "concat { swish; leaky_relu(0.01); leaky_relu; fac(8, 3); conv(4, kxk, act=swish); "
                 "leaky_relu(2) }")
    w = perturbed(net)
    k1, k2, k3 = (torch.from_numpy(w[n]["kernel"].transpose(3, 2, 0, 1).copy()) for n in
                  ("b4/fac_1/conv_1", "b4/fac_1/conv_2", "b5/conv_1"))
    b1, b2, b3 = (torch.from_numpy(w[n]["bias"]) for n in ("b4/fac_1/conv_1", "b4/fac_1/conv_2", "b5/conv_1"))
    assert tuple(k1.shape[2:]) == (1, 3) and tuple(k2.shape[2:]) == (3, 1) and tuple(k3.shape[2:]) == (3, 3)
    t = nchw(X)
    fac = F.conv2d(F.conv2d(t, k1, b1, padding=(0, 1)), k2, b2, padding=(1, 0))
    want = torch.cat([torch.nn.SiLU()(t), torch.nn.LeakyReLU(0.01)(t),
                      torch.nn.LeakyReLU(0.2)(t),  # no slope: Keras' default 0.2 (torch's is 0.01)
                      fac, F.silu(F.conv2d(t, k3, b3, padding=1)), torch.nn.LeakyReLU(2)(t)], 1)
    got = run_keras(net, w, X)
    np.testing.assert_allclose(got, nhwc(want), atol=1e-5)
    # a slope above 1 is Keras' too (its LeakyReLU takes any slope >= 0 and refuses a negative one)
    np.testing.assert_allclose(got[..., -16:], np.asarray(keras.layers.LeakyReLU(negative_slope=2)(X)),
                               atol=1e-6)
    with pytest.raises(ValueError):
        keras.layers.LeakyReLU(negative_slope=-0.1)
    with pytest.raises(incdsl.SpecError, match="must be at least 0"):
        net_of(spec_file, "leaky_relu(-0.1)")


@pytest.mark.slow
@pytest.mark.parametrize("pad, torch_pad", [
    ("same", (1, 2, 2, 2)),  # TF same on 9x10, k_eff 5, stride 2: out 5x5; rows (4*2 + 5 - 9) = 4 -> 2+2,
                             # columns (4*2 + 5 - 10) = 3 -> 1 left, 2 right (the odd one at the end)
    ("valid", (0, 0, 0, 0)),
])
def test_stride_with_dilation_matches_torch(spec_file, pad, torch_pad):
    import torch
    import torch.nn.functional as F
    net = net_of(spec_file, f"conv(8, 3, stride=2, dilation=2, pad={pad}, bn=true, act=relu)")
    w = perturbed(net)
    p = w["conv_1"]
    y = F.conv2d(F.pad(nchw(X), torch_pad), torch.from_numpy(p["kernel"].transpose(3, 2, 0, 1).copy()),
                 torch.from_numpy(p["bias"]), stride=2, dilation=2)
    y = F.relu(F.batch_norm(y, torch.from_numpy(p["moving_mean"]), torch.from_numpy(p["moving_variance"]),
                            torch.from_numpy(p["gamma"]), torch.from_numpy(p["beta"]), eps=1e-3))
    np.testing.assert_allclose(run_keras(net, w, X), nhwc(y), atol=1e-5)


def test_check_says_how_each_target_builds_stride_with_dilation(spec_file, capsys):
    path = spec_file("network t() {\n  input 33x33x3\n  conv(32, 3, dilation=2, stride=2)\n}\n")
    assert cli.main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: ok: network t")
    assert err == (
        f"{path}:3:3: note: conv 'conv_1' has stride 2 with dilation 2, which Keras' layers refuse: "
        "--to keras and --to onnx --via tf2onnx compute it at stride 1 and keep one row in 2 and one "
        "column in 2 (4x this layer's MACs, the same outputs); --to onnx (direct) builds it as it is\n"
    )


# --- every new op through both ONNX exporters and the other Keras backends ---------------------------

ALL_NEW = """
module fac(c, n) {
  conv(c, 1xn) -> conv(c, nx1)
}
module head(n) {
  gap -> dense(n, act=softmax)
}
network t(k=5) {
  input 17x17x8
  fac(8, 7)
  conv(16, kxk, groups=4, bn=true, act=swish) -> channel_shuffle(2) -> leaky_relu(0.1)
  conv(16, 3, stride=2, dilation=2, bn=true, act=relu)
  add { identity; conv(16, 3) -> drop_path(0.2) }
  multiply { identity; gap -> dense(4, act=relu) -> dense(16, act=sigmoid) }
  multiply { identity; adaptive_avgpool(1) -> conv(4, 1, act=relu) -> conv(16, 1, act=sigmoid) }
  out = head(5)
}
"""


@pytest.mark.slow
@pytest.mark.parametrize("via", ["direct", "tf2onnx"])
def test_onnx_exports_verify_against_keras(spec_file, via, tmp_path):
    from incdsl.backends.onnx.convert import export
    net = incdsl.load(spec_file(ALL_NEW))
    result = export(net, tmp_path / "t.onnx", perturbed(net), via=via, verify="keras")
    assert "onnxruntime vs Keras" in result.checked  # export verified the values against Keras


RUN = """
import sys, numpy as np, incdsl, keras
assert keras.backend.backend() == sys.argv[3]
net = incdsl.load(sys.argv[1])
data = np.load(sys.argv[2])
weights = {}
for key in data.files:
    if "|" in key:
        node, name = key.split("|")
        weights.setdefault(node, {})[name] = data[key]
y = net.to_keras(weights=weights)(data["x"], training=False)
np.save(sys.argv[2] + ".out.npy", keras.ops.convert_to_numpy(y))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_keras_backends_give_the_same_outputs(spec_file, backend, tmp_path):
    path = spec_file(ALL_NEW)
    net = incdsl.load(path)
    w = perturbed(net)
    x = np.random.default_rng(3).standard_normal((2, 17, 17, 8)).astype("float32")
    np.savez(tmp_path / "w.npz", x=x, **{f"{n}|{k}": a for n, arrays in w.items() for k, a in arrays.items()})
    out = subprocess.run([sys.executable, "-c", RUN, str(path), str(tmp_path / "w.npz"), backend], cwd=ROOT,
                         env={**ENV, "KERAS_BACKEND": backend}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    want = np.asarray(net.to_keras(weights=w)(x, training=False))
    assert np.abs(want - 0.2).max() > 1e-3  # not a uniform softmax: the ops did something
    np.testing.assert_allclose(np.load(tmp_path / "w.npz.out.npy"), want, atol=1e-5)


OUTMOD = """
module blk(c) {
  conv(c, 3) -> relu
}
network o {
  input 8x8x3
  r1 = blk(8)
  r2 = blk(8)
}
"""


@pytest.mark.slow  # builds Keras models
def test_a_network_ending_in_a_named_module_call_compiles(spec_file, tmp_path, capsys):
    # the review's outmod.inc: the last statement `r2 = blk(8)` once gave the output Keras' name
    # `r2/relu_1` ("cannot contain character '/'") under --to keras and --to onnx. The output keeps
    # the call's name. (ALL_NEW ends in `out = head(5)`: direct ONNX, tf2onnx, JAX and torch.)
    import keras
    import onnx
    path = spec_file(OUTMOD, "outmod.inc")
    net = incdsl.load(path)
    assert [(h.name, h.node) for h in net.heads] == [("r2", "r2/relu_1")]
    assert cli.main(["compile", str(path), "--to", "keras", "-o", str(tmp_path / "o.keras")]) == 0
    assert keras.models.load_model(tmp_path / "o.keras").output_names == ["r2"]
    assert cli.main(["compile", str(path), "--to", "onnx", "--verify", "keras", "-o",
                     str(tmp_path / "o.onnx")]) == 0
    assert "onnxruntime vs Keras" in capsys.readouterr().out  # verified, not only written
    assert [o.name for o in onnx.load(tmp_path / "o.onnx").graph.output] == ["r2"]
    # tf2onnx too (a feature-map output, NCHW as the direct model gives it)
    assert cli.main(["compile", str(path), "--to", "onnx", "--via", "tf2onnx", "--verify", "keras",
                     "-o", str(tmp_path / "t.onnx")]) == 0
    assert "onnxruntime vs Keras" in capsys.readouterr().out


def test_summary_expand_and_drawing_name_the_new_ops(spec_file):
    from incdsl.analysis.report import describe
    from incdsl.backends.dot import op_text
    net = incdsl.load(spec_file(ALL_NEW))
    expand = net.expand()
    for text in ("fac_1/conv_1      = conv(8, kernel=1x7)",
                 "conv(16, kernel=5x5, bn=true, act=silu, groups=4)",
                 "channel_shuffle(2) <- conv_1", "act(leaky_relu, slope=0.1)", "drop_path(0.2) <- b2/conv_1",
                 "multiply <- add_1, b4/dense_2"):
        assert " ".join(text.split()) in " ".join(expand.split()), text  # columns align to the longest name
    layers = net.layers
    assert describe(layers["conv_1"]) == "conv 5x5 groups 4 bn silu"
    assert describe(layers["leaky_relu_1"]) == "leaky_relu slope 0.1"
    assert describe(layers["conv_2"]) == "conv 3x3/2 dil 2x2 bn relu"
    # drawings name ops as the summary does (issue 15: batch norm and activation shown)
    names = ("conv_1", "channel_shuffle_1", "b2/drop_path_1", "multiply_1")
    assert [op_text(layers[n]) for n in names] == [describe(layers[n]) for n in names]
    assert op_text(layers["conv_1"]) == "conv 5x5 groups 4 bn silu"
    assert op_text(layers["b2/drop_path_1"]) == "drop_path 0.2"


def test_slope_defaults_reach_leaky_relu_only(spec_file):
    # the review's case: `defaults act(slope=0.05)` then a bare relu once failed ("relu takes no
    # slope"); the slope is leaky_relu's, so relu is left alone. Activation words take defaults too.
    def body(defaults):
        return incdsl.load(spec_file(f"network s {{\n  {defaults}\n  input 8x8x3\n  conv(8, 3) -> relu -> "
                                     "leaky_relu -> act(leaky_relu) -> leaky_relu(0.3) -> swish\n}\n")).layers
    for defaults in ("defaults act(slope=0.05)", "defaults leaky_relu(slope=0.05)"):
        layers = body(defaults)
        assert layers["relu_1"].attrs["slope"] is None and layers["swish_1"].attrs["slope"] is None
        assert [layers[n].attrs["slope"] for n in ("leaky_relu_1", "act_1", "leaky_relu_2")] == [0.05, 0.05,
                                                                                                 0.3]
    assert body("").get("leaky_relu_1").attrs["slope"] is None  # none given: Keras' 0.2 in the backends


def test_add_stays_strict_where_multiply_broadcasts(spec_file):
    from incdsl.errors import SpecError
    body = "{ identity; gap -> dense(16, act=sigmoid) }"
    assert net_of(spec_file, f"multiply {body}").shapes["multiply_1"] == (9, 10, 16)
    with pytest.raises(SpecError, match="add inputs disagree on shape: 9x10x16 vs 16"):
        net_of(spec_file, f"add {body}")
    gate = "{ identity; adaptive_avgpool(1) -> conv(16, 1, act=sigmoid) }"  # a 1x1x16 map broadcasts too
    assert net_of(spec_file, f"multiply {gate}").shapes["multiply_1"] == (9, 10, 16)
    with pytest.raises(SpecError, match="add inputs disagree on shape: 9x10x16 vs 1x1x16"):
        net_of(spec_file, f"add {gate}")
    with pytest.raises(SpecError, match="do not broadcast: 9x10x16 vs 1x1x8") as e:
        net_of(spec_file, "multiply { identity; adaptive_avgpool(1) -> conv(8, 1) }")
    assert "gap -> dense(16)" in e.value.hint
