"""`incdsl import` (issue 17): Keras and ONNX models back into readable specs.

The exact cases: keras.applications InceptionV3, InceptionResNetV2 and Xception (weights=None, with
random batch-norm statistics so that every array matters) and torchvision googlenet and
inception_v3 exported here with torch.onnx.export. For each, the imported spec's counts equal the
source's (Keras' count_params and MACs computed from the Keras layers; the ONNX graph's own
weights and MACs from ONNX shape inference), and the spec compiled with the weights the import
wrote gives the source's outputs to 1e-5 relative (Keras for Keras sources, onnxruntime for ONNX
sources). A spec incdsl compiled comes back with the same `incdsl expand`. Bad input is one clear
error and no file.
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import ROOT, SPECS

RTOL = 1e-5


def rel_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(a)))


def summary(cli, spec) -> dict:
    code, out, err = cli("summary", spec, "--json")
    assert code == 0, err
    return json.loads(out)


# --- bad input: tiny hand-made ONNX graphs (no torch, no Keras) ---------------------------------

def _onnx_model(tmp_path, nodes, inputs, inits=(), name="m.onnx"):
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", inputs, [out], initializer=list(inits))
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _image(name="x", dims=(1, 3, 8, 8)):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def _kernel():
    return helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))


def _assert_clean_failure(code, err, tmp_path, *words):
    assert code == 1, err
    assert "Traceback" not in err and len(err.splitlines()) <= 6, err
    for w in words:
        assert w in err, err
    assert not (
        tmp_path / "out.inc").exists() and not (tmp_path / "w.keras").exists(), list(tmp_path.iterdir())


def test_bad_input_not_a_model(tmp_path, cli):
    for name in ("notes.onnx", "notes.keras", "notes.txt"):
        bad = tmp_path / name
        bad.write_text("these are my notes, not a model\n")
        code, _, err = cli("import", bad, "-o", tmp_path / "out.inc", "--weights-out", tmp_path / "w.keras")
        _assert_clean_failure(code, err, tmp_path, f"{name}: not a")


def test_bad_input_unsupported_op_names_node_and_op(tmp_path, cli):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="stem/conv", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Sin", ["c"], ["y"], name="stem/wave")]
    path = _onnx_model(tmp_path, nodes, [_image()], [_kernel()])
    code, _, err = cli("import", path, "-o", tmp_path / "out.inc")
    _assert_clean_failure(code, err, tmp_path, "'stem/wave' (Sin)", "no incdsl equivalent")


def test_bad_input_dynamic_spatial_size_names_the_input(tmp_path, cli):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])]
    path = _onnx_model(tmp_path, nodes, [_image("pixels", ("batch", 3, "height", "width"))], [_kernel()])
    code, _, err = cli("import", path, "-o", tmp_path / "out.inc")
    _assert_clean_failure(code, err, tmp_path, "input 'pixels' has a dynamic height, width", "fixed")


def test_bad_input_several_inputs(tmp_path, cli):
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], name="sum")]
    path = _onnx_model(tmp_path, nodes, [_image("a"), _image("b")])
    code, _, err = cli("import", path, "-o", tmp_path / "out.inc")
    _assert_clean_failure(code, err, tmp_path, "2 inputs (a, b)", "one image")


def test_bad_usage_is_exit_2(tmp_path, cli):
    code, _, err = cli("import", tmp_path / "missing.onnx")
    assert code == 2 and "no such model file" in err
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])]
    path = _onnx_model(tmp_path, nodes, [_image()], [_kernel()])
    code, _, err = cli("import", path, "-o", tmp_path / "out.txt")
    assert code == 2 and ".inc" in err
    code, _, err = cli("import", path, "--weights-out", tmp_path / "w.h5")
    assert code == 2 and ".keras" in err


SMALL = """
network small(classes=10, size=16) {
  input(size, size, 3)
  conv(8, 3, stride=2, pad=1, act=relu)
  concat {
    conv(4, 1, act=relu)
    conv(4, 1, act=relu) -> conv(6, 3, act=relu)
    maxpool(3, stride=1, pad=1, ceil=true) -> conv(2, 1, act=relu)
  }
  gap
  output logits = dense(classes)
}
"""


def test_import_onnx_loads_no_keras_and_front_end_reads_the_spec(tmp_path):
    """An ONNX import (without --weights-out) never loads TensorFlow or Keras; the spec it writes is
    then checked by the front end alone."""
    spec = tmp_path / "small.inc"
    spec.write_text(SMALL)
    onnx_file = tmp_path / "small.onnx"
    code = f"""
import sys, incdsl
from incdsl.backends.onnx.convert import export
export(incdsl.load({str(spec)!r}), {str(onnx_file)!r}, verify=False)
for m in ("keras", "tensorflow"):
    sys.modules.pop(m, None)
from incdsl.cli.main import main
assert main(["import", {str(onnx_file)!r}, "-o", {str(tmp_path / "back.inc")!r}]) == 0
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"keras", "tensorflow", "torch"}}))
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "[]"
    back = (tmp_path / "back.inc").read_text()
    assert "module" in back and "concat {" in back and "output logits = dense(classes)" in back
    import incdsl
    a, b = incdsl.load(spec).total(), incdsl.load(tmp_path / "back.inc").total()
    assert (a.params, a.macs) == (b.params, b.macs)


# --- item 2: keras.applications round trips --------------------------------------------------

def keras_macs(model) -> int:
    """MACs of a Keras model from its own layers (independent of incdsl's op table)."""
    import keras
    L = keras.layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, L.SeparableConv2D):
            _, h, w, cout = layer.output.shape
            cin = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += h * w * (cin * kh * kw + cin * cout)
        elif isinstance(layer, L.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * cout * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, L.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


def _randomize_bn(model, seed=0):
    """Random batch-norm statistics: with Keras' identity ones a lost or misplaced array would go unseen."""
    import keras
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.2, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.2, c).astype("float32"))
            if layer.gamma is not None:
                layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))


def _keras_case(tmp_path_factory, app):
    import keras
    d = tmp_path_factory.mktemp(app)
    src = getattr(keras.applications, app)(weights=None)
    _randomize_bn(src)
    src.save(d / f"{app}.keras")
    return d, src


FEATURES = "avg_pool"  # keras.applications' name for the pooled features (the layer before the softmax)


def _keras_round_trip(cli, d, src, app, via):
    """Import, check the counts and compare outputs and pooled features with the source model."""
    import keras

    import incdsl
    from incdsl.backends.keras.build import build_model, load_weights_file
    from incdsl.backends.onnx.weights import read_keras_file

    spec, w = d / f"{app}.inc", d / f"{app}_weights.keras"
    code, out, err = cli("import", d / f"{app}.keras", "-o", spec, "--weights-out", w)
    assert code == 0, err
    s = summary(cli, spec)
    assert s["params"]["total"] == src.count_params()
    assert s["params"]["trainable"] == sum(int(np.prod(v.shape)) for v in src.trainable_weights)
    assert s["macs"] == keras_macs(src)
    net = incdsl.load(spec)
    if via == "keras":  # incdsl compile --to keras --weights W: the Keras backend's reader
        ours = build_model(net)
        load_weights_file(ours, net, w)
    else:  # the ONNX backend's reader (h5py, no Keras model load)
        ours = build_model(net, weights=read_keras_file(net, w))
    x = np.random.default_rng(1).uniform(-1, 1, (2,) + tuple(net.input_shape)).astype("float32")
    feats = [keras.Model(m.inputs, [m.get_layer(FEATURES).output, m.outputs[0]]) for m in (src, ours)]
    (fa, pa), (fb, pb) = (f.predict_on_batch(x) for f in feats)
    assert rel_err(fa, fb) <= RTOL and rel_err(pa, pb) <= RTOL
    return spec.read_text(), out


@pytest.fixture(scope="module")
def inception_v3_keras(tmp_path_factory):
    return _keras_case(tmp_path_factory, "InceptionV3")


@pytest.mark.slow
def test_keras_inception_v3_round_trip(inception_v3_keras, cli):
    text, out = _keras_round_trip(cli, *inception_v3_keras, "InceptionV3", via="keras")
    assert "modules: mixed_a x3, mixed_b, mixed_c x4, mixed_d, mixed_e x2" in out
    assert "defaults conv(bias=false, bn=true, bn_scale=false, act=relu)" in text
    assert "module mixed_c(c1) {" in text  # the seven 128/160/192 convs of mixed4-7 are one argument
    for line in ("mixed0 = mixed_a(32)", "mixed4 = mixed_c(128)", "mixed7 = mixed_c(192)",
                 "mixed10 = mixed_e()",
                 "avg_pool = gap", "output predictions = dense(classes, act=softmax)"):
        assert line in text
    assert "mixed0 = mixed_a(32)                              # 35x35x256" in text


@pytest.mark.slow
def test_keras_xception_round_trip(tmp_path_factory, cli):
    text, out = _keras_round_trip(cli, *_keras_case(tmp_path_factory, "Xception"), "Xception", via="keras")
    assert "block_c x8" in out and "block_b x3" in out
    # the 3x3 convs' valid padding is hoisted; the 1x1 residual convs, where padding changes
    # nothing, follow it and write no pad
    for line in ("defaults conv(pad=valid, bias=false, bn=true)",
                 "block1_conv1 = conv(32, 3, stride=2, act=relu)",
                 "    conv(128, 1, stride=2)\n", "block13 = block_b(728, 1024)",
                 "block14_sepconv2 = sepconv(2048, 3)"):
        assert line in text


@pytest.mark.slow
def test_keras_inception_resnet_v2_round_trip(tmp_path_factory, cli):
    d, src = _keras_case(tmp_path_factory, "InceptionResNetV2")
    text, out = _keras_round_trip(cli, d, src, "InceptionResNetV2", via="onnx")
    for line in ("block35 = repeat 10 { block35() }", "block17 = repeat 20 { block17() }",
                 "block8 = repeat 9 { block8_a() }", "block8_10 = block8_b()", "conv_7b = conv(1536, 1)",
                 "-> conv(320, 1, bias=true, bn=false, act=none) -> scale(0.17)"):
        assert line in text


# --- item 2: torchvision through torch.onnx.export ------------------------------------------

def onnx_counts(path):
    """(params, MACs) of an ONNX file from its own graph: each Conv's and Gemm's weights and bias,
    and their multiply-accumulates from ONNX shape inference (batch 1)."""
    from onnx import shape_inference
    m = shape_inference.infer_shapes(onnx.load(path))
    g = m.graph
    size = {t.name: int(np.prod(t.dims)) for t in g.initializer}
    dims = {t.name: list(t.dims) for t in g.initializer}
    for n in g.node:  # the exporter shares equal initializers through Identity nodes
        if n.op_type == "Identity" and n.input[0] in size:
            size[n.output[0]], dims[n.output[0]] = size[n.input[0]], dims[n.input[0]]
    shapes = {
        v.name: [
            d.dim_value for d in v.type.tensor_type.shape.dim] for v in list(g.value_info) + list(g.output)}
    params = macs = 0
    for n in g.node:
        if n.op_type in ("Conv", "Gemm"):
            params += sum(size[i] for i in n.input[1:] if i)
            if n.op_type == "Conv":
                cout, cin_g, kh, kw = dims[n.input[1]]
                macs += int(np.prod(shapes[n.output[0]])) * cin_g * kh * kw
            else:
                macs += size[n.input[1]]
    return params, macs


def _torch_case(tmp_path_factory, name, size):
    import torch
    import torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, init_weights=True).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # random batch-norm statistics, folded into the convs by the exporter
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    d = tmp_path_factory.mktemp(name)
    path = d / f"{name}.onnx"
    torch.onnx.export(model, torch.randn(1, 3, size, size), path, dynamo=False, input_names=["input"],
                      output_names=["logits"])
    return d, path


def _onnx_round_trip(cli, d, path, size):
    import onnxruntime as ort
    spec, w, again = d / "spec.inc", d / "weights.keras", d / "again.onnx"
    code, out, err = cli("import", path, "-o", spec, "--weights-out", w)
    assert code == 0, err
    s = summary(cli, spec)
    params, macs = onnx_counts(str(path))
    assert (s["params"]["total"], s["macs"]) == (params, macs)
    code, _, err = cli("compile", spec, "--to", "onnx", "--weights", w, "-o", again, "--no-verify")
    assert code == 0, err
    x = np.random.default_rng(2).normal(size=(2, 3, size, size)).astype("float32")
    a = ort.InferenceSession(str(path)).run(None, {"input": x[:1]})[0]
    sess = ort.InferenceSession(str(again))
    b = sess.run(None, {sess.get_inputs()[0].name: x[:1]})[0]
    assert rel_err(a, b) <= RTOL
    return spec.read_text(), out


@pytest.mark.slow
def test_onnx_torchvision_googlenet_round_trip(tmp_path_factory, cli):
    d, path = _torch_case(tmp_path_factory, "googlenet", 224)
    text, out = _onnx_round_trip(cli, d, path, 224)
    assert "modules: inception x9" in out
    for line in ("module inception(c1, c2, c3, c4, c5, c6) {",
                 "inception3a = inception(64, 96, 128, 16, 32, 32)",
                 "inception5b = inception(384, 192, 384, 48, 128, 128)",
                 "conv1 = conv(64, 7, stride=2, pad=3)",
                 "defaults conv(act=relu)", "output logits = dense(classes)"):
        assert line in text


@pytest.mark.slow
def test_onnx_torchvision_inception_v3_round_trip(tmp_path_factory, cli):
    d, path = _torch_case(tmp_path_factory, "inception_v3", 299)
    text, out = _onnx_round_trip(cli, d, path, 299)
    assert "modules: Mixed_a x3, Mixed_b, Mixed_c x4, Mixed_d, Mixed_e x2" in out
    # torch's exporter merged InceptionE's cat([a, cat([b, c])]) into one Concat; it comes back nested
    assert "conv(384, 1) -> concat {" in text
    assert "Mixed_6b = Mixed_c(128)" in text and "avgpool(pad=same, count_pad=true)" in text


# --- item 3: expand, then re-fold -----------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("spec", ["inception_v3.inc", "xception.inc"])
def test_import_of_a_compiled_spec_expands_the_same(spec, tmp_path, cli):
    model, back = tmp_path / "model.keras", tmp_path / "back.inc"
    code, _, err = cli("compile", SPECS / spec, "--to", "keras", "-o", model)
    assert code == 0, err
    code, out, err = cli("import", model, "-o", back)
    assert code == 0, err
    assert "note:" not in out  # every layer got its own name back
    code, original, _ = cli("expand", SPECS / spec)
    code2, again, _ = cli("expand", back)
    assert code == code2 == 0
    assert again == original


@pytest.mark.slow
def test_bad_keras_input_unsupported_layer_dynamic_size_several_inputs(tmp_path, cli):
    import keras
    L = keras.layers
    x = keras.Input((8, 8, 3))
    y = L.Conv2D(4, 3, name="stem_conv")(x)
    y = L.UpSampling2D(name="grow")(y)
    cases = {"upsample.keras": (keras.Model(x, y), ("grow (UpSampling2D)", "no incdsl op"))}
    free = keras.Input((None, None, 3), name="pixels")
    cases["dynamic.keras"] = (keras.Model(free, L.Conv2D(4, 3)(free)),
                              ("input 'pixels' has a dynamic size", "fixed"))
    a, b = keras.Input((8, 8, 3), name="left"), keras.Input((8, 8, 3), name="right")
    cases["two.keras"] = (keras.Model([a, b], L.Add()([a, b])), ("2 inputs (left, right)", "one image"))
    for name, (model, words) in cases.items():
        path = tmp_path / name
        model.save(path)
        code, _, err = cli("import", path, "-o", tmp_path / "out.inc", "--weights-out", tmp_path / "w.keras")
        _assert_clean_failure(code, err, tmp_path, *words)
