"""The public Python API, used the way a Keras user would guess it: only names `incdsl` exports.

Counts are checked against hand-worked numbers for a tiny network, and against the built Keras
model and onnxruntime where a backend is involved.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import incdsl

# Input 8x8x3. conv(4, 3): 3*3*3*4 + 4 = 112 params, 8*8*4*27 = 6,912 MACs.
# Main head gap -> dense(2): 4*2 + 2 = 10 params, 8 MACs. Aux head dense(7): 4*7 + 7 = 35, 28 MACs.
TEXT = """
network tiny(classes=2, width=1.0, aux=true) {
  input 8x8x3
  x = conv(int(4 * width), 3)
  output main = x -> gap -> dense(classes)
  if aux { train_output side = x -> gap -> dense(7) }
}
"""
MAIN, AUX = 112 + 10, 35
MAIN_MACS, AUX_MACS = 6912 + 8, 28


def test_loads_counts_and_properties():
    net = incdsl.loads(TEXT)
    assert isinstance(net, incdsl.Network)
    assert net.count_params() == MAIN + AUX and net.count_params(inference=True) == MAIN
    assert net.count_macs() == MAIN_MACS + AUX_MACS and net.macs == MAIN_MACS
    assert net.input_shape == (8, 8, 3)
    assert net.outputs == {"main": (2,), "side": (7,)}
    assert net.arguments == {"classes": 2, "width": 1.0, "aux": True}
    assert "122 params (157 with training-only heads)" in repr(net)  # as `incdsl check` reports
    half = incdsl.loads(TEXT, width=0.5, aux=False)
    assert half.count_params() == (3 * 3 * 3 * 2 + 2) + (2 * 2 + 2) and list(half.outputs) == ["main"]


def test_summary_prints_the_table_and_report_is_the_json(tmp_path):
    net = incdsl.loads(TEXT)
    printed: list[str] = []
    assert net.summary(print_fn=printed.append) is None
    assert len(printed) == 1 and "\nx " in printed[0] and "112" in printed[0]
    assert printed[0] == net.table()
    rep = net.report()
    assert rep == net.to_dict()
    assert rep["params"]["total"] == MAIN + AUX and rep["inference"]["params"]["total"] == MAIN
    json.dumps(rep)  # plain data
    assert {"taps", "memory"} <= set(rep) and "memory" in rep["layers"][1]
    path = tmp_path / "t.inc"
    path.write_text(TEXT)
    import contextlib
    import io

    from incdsl.cli.main import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["summary", str(path), "--json"]) == 0
    cli = json.loads(out.getvalue())
    assert cli == {**incdsl.load(path).report(), "spec": str(path)}  # the CLI prints exactly the API's report
    with pytest.raises(incdsl.UsageError):
        net.summary(depth=0)


def test_load_resolves_shipped_names_and_files(tmp_path):
    assert incdsl.load("inception_v3").count_params() == 23_851_784   # keras.applications InceptionV3
    assert incdsl.load("v3").count_params() == 23_851_784
    assert incdsl.load("irv2").count_params() == 55_873_736            # InceptionResNetV2
    path = tmp_path / "t.inc"
    path.write_text(TEXT)
    assert incdsl.load(path, classes=5).outputs["main"] == (5,)


def test_python_errors_use_python_words(tmp_path):
    with pytest.raises(incdsl.ArgumentError) as caught:
        incdsl.loads(TEXT, width="half")
    assert str(caught.value) == "width='half': width is a number (its default is 1.0)"
    assert isinstance(caught.value, incdsl.UsageError)
    with pytest.raises(incdsl.UsageError, match="has no parameter 'widht'; did you mean 'width'"):
        incdsl.loads(TEXT, widht=0.5)
    with pytest.raises(incdsl.SpecError) as bad:
        incdsl.loads("network n() {\n  input 8x8x3\n  conv(4, 9, pad=valid)\n}\n")
    assert bad.value.span.line == 3 and "does not fit" in str(bad.value)


def test_help_is_useful():
    for obj in (incdsl, incdsl.load, incdsl.loads, incdsl.Network, incdsl.Network.summary,
                incdsl.Network.report, incdsl.Network.count_params, incdsl.Network.to_keras,
                incdsl.Network.to_onnx, incdsl.Network.draw, incdsl.Network.arguments,
                incdsl.Network.outputs, incdsl.Network.input_shape, incdsl.SpecError, incdsl.UsageError):
        assert obj.__doc__ and len(obj.__doc__.strip()) > 20, obj


def test_draw_writes_by_suffix(tmp_path):
    net = incdsl.loads(TEXT)
    out = net.draw(tmp_path / "t.dot", depth=1)
    assert out.read_text().startswith("digraph")
    svg = net.draw(tmp_path / "t.svg")
    assert b"<svg" in svg.read_bytes()
    with pytest.raises(incdsl.UsageError, match="not t.pdf"):
        net.draw(tmp_path / "t.pdf")
    assert not (tmp_path / "t.pdf").exists()


@pytest.mark.slow
def test_to_keras_and_to_onnx_agree(tmp_path):
    import onnxruntime as ort

    net = incdsl.loads(TEXT)
    model = net.to_keras()  # the training model: both heads
    assert model.count_params() == net.count_params() and model.output_names == ["main", "side"]
    inf = net.to_keras(inference=True, seed=3)
    assert inf.count_params() == net.count_params(inference=True) and inf.output_names == ["main"]
    inf.save(tmp_path / "m.keras")
    again = net.to_keras(inference=True, weights=tmp_path / "m.keras")
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    want = np.asarray(inf.predict(x, verbose=0))
    np.testing.assert_array_equal(np.asarray(again.predict(x, verbose=0)), want)

    result = net.to_onnx(tmp_path / "m.onnx", tmp_path / "m.keras", layout="nhwc", batch=2)
    assert result.path == tmp_path / "m.onnx" and "onnxruntime" in result.checked
    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_compare_and_fit_from_python():
    rows = incdsl.compare(incdsl.Spec.from_text(TEXT), sweep={"width": [0.5, 1.0]}, aux=False)
    assert [r.label for r in rows] == ["width=0.5", "width=1.0"]
    # width 0.5: conv(2, 3) = 56, dense(2) on 2 = 6; width 1.0: the hand count above without aux
    assert [r.total.params for r in rows] == [56 + 6, MAIN]
    assert rows[1].inference.macs == MAIN_MACS
    # the widest network under 100 params: conv(c, 3) + dense(2) = 28c + (2c + 2) <= 100 -> c = 3
    result = incdsl.fit(incdsl.Spec.from_text(TEXT), "width", params=100, aux=False)
    assert int(4 * result.best.value) == 3 and result.best.count.params == 28 * 3 + 3 * 2 + 2
    assert result.next is not None and int(4 * result.next.value) == 4
    assert callable(incdsl.compare) and callable(incdsl.fit)
    with pytest.raises(incdsl.UsageError, match="needs a budget"):
        incdsl.fit("googlenet", "width")
    with pytest.raises(incdsl.UsageError, match="nothing fits"):
        incdsl.fit("googlenet", "width", params=10)
