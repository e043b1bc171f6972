"""`incdsl import` on the cases a new-user review of issue 17 found broken, each run as reported.

Sequential Keras models (.keras and .h5); output and layer names that are keywords or ops; the
layers and ONNX nodes the language has ops for (LeakyReLU, relu6, dilated and depthwise convs,
global max pooling, sigmoid, multiply); errors that never show the temporary spec; a compiled
`.keras` loading after `import incdsl`; the import of a model incdsl compiled giving back the same
`incdsl expand` (ceil=true included); ONNX opset 11 through onnx's version converter. Outputs are
compared with Keras or onnxruntime running the source model.
"""
import subprocess
import sys

import numpy as np
import onnx
import pytest

from conftest import ROOT, SPECS
from test_import import RTOL, _onnx_round_trip, rel_err, summary

# --- Keras sources --------------------------------------------------------------------------

def _keras_outputs_equal(cli, src, path, tmp_path):
    """Import `path` with its weights; the spec compiled with them gives `src`'s outputs."""
    import incdsl
    from incdsl.backends.keras.build import build_model, load_weights_file

    spec, w = tmp_path / f"{path.stem}.inc", tmp_path / f"{path.stem}_w.keras"
    code, out, err = cli("import", path, "-o", spec, "--weights-out", w)
    assert code == 0, err
    assert summary(cli, spec)["params"]["total"] == src.count_params()
    net = incdsl.load(spec)
    ours = build_model(net)
    load_weights_file(ours, net, w)
    x = np.random.default_rng(1).uniform(-1, 1, (2,) + tuple(net.input_shape)).astype("float32")
    assert rel_err(src.predict_on_batch(x), ours.predict_on_batch(x)) <= RTOL
    return spec.read_text()


def _randomize_bn(model):
    import keras
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.2, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))


@pytest.mark.slow
def test_sequential_keras_model_keras_and_h5(tmp_path, cli):
    """The reviewer's Sequential model, saved both ways; its last layer keeps Keras' automatic name
    `dense`, an op, so the output is called `dense_out`."""
    import keras
    from keras.layers import (
        Activation,
        AveragePooling2D,
        BatchNormalization,
        Conv2D,
        Dense,
        GlobalAveragePooling2D,
        MaxPooling2D,
    )
    src = keras.Sequential([keras.Input((32, 32, 3)), Conv2D(8, 3, padding="same", use_bias=False),
                            BatchNormalization(), Activation("relu"), MaxPooling2D(2),
                            Conv2D(16, 3, strides=2),
                            Activation("relu"), AveragePooling2D(2, padding="same"), GlobalAveragePooling2D(),
                            Dense(10, activation="softmax")], name="seqnet")
    _randomize_bn(src)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"seq{suffix}"
        src.save(path)
        text = _keras_outputs_equal(cli, src, path, tmp_path)
        assert "network seqnet(classes=10, size=32) {" in text
        assert "conv(8, 3, bias=false, bn=true, act=relu)" in text
        assert "output dense_out = dense(classes, act=softmax)" in text


def test_keras_leaky_relu_relu6_dilation_gmp_multiply_and_keyword_names(tmp_path, cli):
    """LeakyReLU, standalone and folded ZeroPadding2D, dilated Conv2D, dilated DepthwiseConv2D with
    batch norm, ReLU(max_value=6), GlobalMaxPooling2D, Dense(sigmoid), Multiply (an SE gate); the
    model is called `if`, layers `conv` and `gap`, the output layer `output`; a 1x1 conv with
    padding="valid" among `same` ones is written without `pad`."""
    import keras
    L = keras.layers
    x = keras.Input((32, 32, 3))
    y = L.ZeroPadding2D(1)(x)
    y = L.MaxPooling2D(2)(y)
    y = L.Conv2D(8, 3, dilation_rate=2, padding="same", name="conv")(y)
    y = L.LeakyReLU(0.1, name="gap")(y)
    y = L.ZeroPadding2D(2)(y)
    y = L.Conv2D(16, 5, use_bias=False)(y)
    y = L.BatchNormalization()(y)
    y = L.ReLU(max_value=6.0)(y)
    y = L.DepthwiseConv2D(3, dilation_rate=2, padding="same", use_bias=False)(y)
    y = L.BatchNormalization()(y)
    y = L.ReLU(max_value=6.0)(y)
    y = L.Conv2D(16, 1, padding="valid")(y)
    y = L.Conv2D(16, 3, padding="same")(y)
    g = L.GlobalMaxPooling2D()(y)
    g = L.Dense(16, activation="sigmoid")(g)
    y = L.Multiply()([y, g])
    y = L.GlobalMaxPooling2D()(y)
    src = keras.Model(x, L.Dense(10, activation="sigmoid", name="output")(y), name="if")
    _randomize_bn(src)
    path = tmp_path / "k4.keras"
    src.save(path)
    text = _keras_outputs_equal(cli, src, path, tmp_path)
    for line in ("network if_out(classes=10, size=32) {", "  zeropad(1)  ", "conv(8, 3, dilation=2)",
                 "  leaky_relu(0.1)  ", "conv(16, 5, pad=2, bias=false, bn=true, act=relu6)",
                 "dwconv(3, dilation=2, bias=false, bn=true, act=relu6)", "  conv(16, 1)  ",
                 "gmp -> dense(16, act=sigmoid)", "multiply {",
                 "output output_out = dense(classes, act=sigmoid)"):
        assert line in text, line


# --- ONNX sources ---------------------------------------------------------------------------

def _torch_small(tmp_path, groups=1, opset=17, name="t4"):
    """A small torch net with LeakyReLU, ReLU6 (Clip 0..6), a dilated depthwise conv, an SE gate
    (Sigmoid, Reshape to (N, C, 1, 1), Mul) and global max pooling."""
    import torch
    from torch import nn

    class SE(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.pool, self.fc, self.c = nn.AdaptiveMaxPool2d(1), nn.Linear(c, c), c

        def forward(self, x):
            return x * torch.sigmoid(self.fc(torch.flatten(self.pool(x), 1))).view(-1, self.c, 1, 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.act1 = nn.Conv2d(3, 8, 3, padding=2, dilation=2), nn.LeakyReLU(0.1)
            self.c2, self.bn2 = nn.Conv2d(8, 16, 3, padding=1, bias=False, groups=groups), nn.BatchNorm2d(16)
            self.act2 = nn.ReLU6()
            self.dw, self.se = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16), SE(16)
            self.pool, self.fc = nn.AdaptiveMaxPool2d(1), nn.Linear(16, 10)

        def forward(self, x):
            x = self.se(self.dw(self.act2(self.bn2(self.c2(self.act1(self.c1(x)))))))
            return torch.sigmoid(self.fc(torch.flatten(self.pool(x), 1)))

    torch.manual_seed(0)
    m = Net().eval()
    with torch.no_grad():
        m.bn2.running_mean.normal_(0, 0.2)
        m.bn2.running_var.uniform_(0.5, 1.5)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(m, torch.randn(1, 3, 16, 16), path, dynamo=False, opset_version=opset,
                      input_names=["input"], output_names=["probs"])
    return path


def _global_max_pool(path):
    """torch exports AdaptiveMaxPool2d(1) as a MaxPool over the whole map: make the last one the
    GlobalMaxPool other exporters (tf2onnx, Keras) write."""
    from onnx import helper
    model = onnx.load(path)
    g = model.graph
    k = max(i for i, n in enumerate(g.node) if n.op_type == "MaxPool")
    old = g.node[k]
    g.node.remove(old)
    g.node.insert(k,
                  helper.make_node("GlobalMaxPool", [old.input[0]], [old.output[0]],
                                   name="/pool/GlobalMaxPool"))
    onnx.save(model, path)


def test_onnx_leaky_relu_clip_gmp_sigmoid_mul_and_grouped_conv(tmp_path, cli):
    path = _torch_small(tmp_path)
    _global_max_pool(path)
    text, _ = _onnx_round_trip(cli, tmp_path, path, 16)
    for line in ("act1 = leaky_relu(0.1)", "conv(16, 3, act=relu6)", "dw = dwconv(3, dilation=2)",
                 "multiply {",
                 "flatten -> dense(16, act=sigmoid)", "pool = gmp",
                 "output probs = dense(classes, act=sigmoid)"):
        assert line in text, line
    grouped = _torch_small(tmp_path, groups=2, name="grouped")
    code, _, err = cli("import", grouped, "-o", tmp_path / "out.inc")
    assert code == 1 and "'/c2/Conv' (Conv): grouped convolution (group=2) has no incdsl op" in err, err
    assert "Traceback" not in err and not (tmp_path / "out.inc").exists()


def test_onnx_opset_11_through_the_version_converter(tmp_path, cli):
    path = _torch_small(tmp_path, opset=11, name="op11")
    assert next(o.version for o in onnx.load(path).opset_import if o.domain in ("", "ai.onnx")) == 11
    text, _ = _onnx_round_trip(cli, tmp_path, path, 16)
    assert "act1 = leaky_relu(0.1)" in text and "conv(16, 3, act=relu6)" in text


def _rename_output(src, dst, name):
    model = onnx.load(src)
    old = model.graph.output[0].name
    for n in model.graph.node:
        n.output[:] = [name if o == old else o for o in n.output]
    model.graph.output[0].name = name
    onnx.save(model, dst)


@pytest.fixture(scope="module")
def googlenet_output(tmp_path_factory):
    """torchvision googlenet exported with output_names=["output"], as the reviewer did."""
    import torch
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, init_weights=True).eval()
    d = tmp_path_factory.mktemp("gnet")
    path = d / "gnet.onnx"
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), path, dynamo=False, input_names=["input"],
                      output_names=["output"])
    return d, path


@pytest.mark.slow
def test_onnx_googlenet_output_named_output(googlenet_output, cli):
    d, path = googlenet_output
    text, out = _onnx_round_trip(cli, d, path, 224)  # the weights file loads, outputs equal
    assert "output output_out = dense(classes)" in text and "wrote" in out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["network", "if", "conv", "gap", "relu"])
def test_onnx_output_names_that_are_keywords_or_ops(googlenet_output, name, tmp_path, cli):
    d, path = googlenet_output
    renamed = tmp_path / "gnet.onnx"
    _rename_output(path, renamed, name)
    code, out, err = cli("import", renamed, "-o", tmp_path / "g.inc")
    assert code == 0, err
    assert f"output {name}_out = dense(classes)" in (tmp_path / "g.inc").read_text()


def test_onnx_output_number_becomes_logits(tmp_path, cli):
    """An exporter's numbered output (torch's `29`) is called `logits` when a dense layer gives it."""
    import incdsl
    from incdsl.backends.onnx.convert import export
    spec = tmp_path / "n.inc"
    spec.write_text("network n {\n  input(8, 8, 3)\n  conv(4, 3)\n  gap\n  output y = dense(5)\n}\n")
    export(incdsl.load(spec), tmp_path / "n.onnx", verify=False)
    _rename_output(tmp_path / "n.onnx", tmp_path / "n29.onnx", "29")
    code, _, err = cli("import", tmp_path / "n29.onnx", "-o", tmp_path / "back.inc")
    assert code == 0, err
    assert "output logits = dense(classes)" in (tmp_path / "back.inc").read_text()


def test_a_written_spec_that_does_not_check_names_the_layer_not_a_temp_file(tmp_path, cli, monkeypatch):
    """If the writer ever wrote a spec the front end refuses, the error names the source's layer and
    calls it a bug or an unsupported pattern; no temporary path, nothing written."""
    import incdsl
    from incdsl.backends.onnx.convert import export
    from incdsl.importers import model as importer
    spec = tmp_path / "n.inc"
    spec.write_text("network n {\n  input(8, 8, 3)\n  conv(4, 3)\n  gap\n  output y = dense(5)\n}\n")
    export(incdsl.load(spec), tmp_path / "n.onnx", verify=False)
    real = importer.write_spec

    def broken(*a, **k):  # the kind of mistake the reviewer hit: a name the grammar refuses
        w = real(*a, **k)
        w.text = w.text.replace("  conv(4, 3)", "  output = conv(4, 3)")
        return w
    monkeypatch.setattr(importer, "write_spec", broken)
    code, _, err = cli("import", tmp_path / "n.onnx", "-o", tmp_path / "out.inc")
    assert code == 1, err
    assert "/tmp" not in err.replace(str(tmp_path), "") and "n.inc" not in err, err
    assert (
        "(Conv) (its line 6: `output = conv(4, 3)`)" in err
        and "does not check" in err
        and "a bug in incdsl import" in err
    ), err
    assert not (tmp_path / "out.inc").exists()


# --- models incdsl compiled -----------------------------------------------------------------

EXPAND_CASES = [("googlenet.inc", 96), ("googlenet_tv.inc", 96), ("inception_v3.inc", 75),
                ("xception.inc", 71),
                ("inception_resnet_v2.inc", 75)]


@pytest.mark.slow
@pytest.mark.parametrize("spec,size", EXPAND_CASES)
def test_import_of_a_compiled_spec_expands_the_same_at_small_sizes(spec, size, tmp_path, cli):
    """The reviewer's case: googlenet's stride-1 pools keep ceil=true (which changes no shape)."""
    model, back = tmp_path / "rt.keras", tmp_path / "rt.inc"
    code, _, err = cli("compile", SPECS / spec, "--set", f"size={size}", "--to", "keras", "-o", model)
    assert code == 0, err
    code, out, err = cli("import", model, "-o", back)
    assert code == 0, err
    assert "note:" not in out
    code, original, _ = cli("expand", SPECS / spec, "--set", f"size={size}")
    code2, again, _ = cli("expand", back)
    assert code == code2 == 0
    assert again == original
    if spec == "googlenet.inc":
        assert "ceil=true" in again


@pytest.mark.slow
def test_compiled_keras_file_loads_after_import_incdsl(tmp_path, cli):
    """A .keras file incdsl compiled holds incdsl's own layers (a ceil-mode max pool is
    incdsl>MaxPool2D): keras.models.load_model reads it in a fresh Python once `import incdsl` has
    run, and not without it (what README.md says)."""
    spec, model = tmp_path / "p.inc", tmp_path / "p.keras"
    spec.write_text("network p {\n  input(9, 9, 3)\n  conv(4, 3)\n  maxpool(2, ceil=true)\n  gap\n"
                    "  output y = dense(5)\n}\n")
    code, _, err = cli("compile", spec, "--to", "keras", "-o", model)
    assert code == 0, err
    load = """
IMPORT
import keras
m = keras.models.load_model(MODEL)
print(sorted(type(l).__module__.split('.')[0] for l in m.layers if type(l).__name__ == 'MaxPool2D'))
""".replace("MODEL", repr(str(model)))
    env = {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    with_incdsl, without = (subprocess.run([sys.executable, "-c", load.replace("IMPORT", imp)], cwd=ROOT,
                                           capture_output=True, text=True, timeout=300, env=env)
                            for imp in ("import incdsl", ""))
    assert with_incdsl.returncode == 0, with_incdsl.stderr[-800:]
    assert with_incdsl.stdout.split() == ["['incdsl']"], with_incdsl.stdout
    assert without.returncode != 0 and "MaxPool2D" in without.stderr, without.stderr[-800:]


@pytest.mark.slow
def test_onnx_torchvision_inception_v3_output_named_output(tmp_path, cli):
    """torchvision inception_v3 exported with output_names=["output"] (the reviewer could not get
    this far): imports as `output_out`, counts and outputs equal onnxruntime's."""
    import torch
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, init_weights=True, aux_logits=False).eval()
    path = tmp_path / "iv3.onnx"
    torch.onnx.export(model, torch.randn(1, 3, 107, 107), path, dynamo=False, input_names=["input"],
                      output_names=["output"])
    text, out = _onnx_round_trip(cli, tmp_path, path, 107)
    assert "output output_out = dense(classes)" in text
    assert "modules: Mixed_a x3, Mixed_b, Mixed_c x4, Mixed_d, Mixed_e x2" in out
