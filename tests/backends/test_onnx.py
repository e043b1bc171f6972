"""ONNX export: the direct emitter against onnxruntime + Keras (the reference: same weights, same
random batch) for every spec and every op, against tf2onnx, across layouts, batch modes, batch-norm
folding and the opset range; byte-identical output; no TensorFlow in the direct path; and failures
that leave nothing behind."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import incdsl
from incdsl.backends.onnx import direct as onnx_direct
from incdsl.backends.onnx import verify as onnx_verify
from incdsl.backends.onnx.convert import DEFAULT_OPSET, MIN_OPSET, export, max_opset
from incdsl.errors import SpecError, UsageError

from conftest import ROOT, SPECS
from perturbed_weights import perturbed

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
SIZES = (75, 96, 128, 160, 224, 299)

# Every op the exporter translates, with the awkward cases: asymmetric same padding (even input,
# stride 2), explicit asymmetric pads, dilation, ceil-mode pools whose last window hangs past the
# padding, count_pad, uneven adaptive bins, odd and even LRN windows, a standalone bn that folds
# into the conv before it and one that cannot, every activation, a feature map flattened into a
# dense layer, four inference heads (softmax, log_softmax, logits, softmax under a dropout) and a
# training-only head.
ZOO = """
network zoo(classes=5, size=24) {
  input(size, size, 3)
  conv(8, 3, stride=2, bn=true, bn_scale=false, bias=true, act=relu6)   # 12x12: same pads 0 + 1
  conv(8, 3, pad=(0, 1, 1, 0), act=elu)                                  # 11x11
  conv(8, 3, dilation=2, bias=false) -> bn                               # a standalone bn that folds
  lrn(5) -> lrn(4, alpha=0.001, beta=0.5, bias=2.0)                      # odd and even windows
  dwconv(3, multiplier=2, stride=2, bn=true, act=hard_sigmoid)           # 6x6x16
  zeropad((1, 1, 2, 0))                                                  # 8x8
  mid = sepconv(12, 3, multiplier=2, bn=true, act=silu)
  concat {                                                               # 5x5: ceil overhang 1
    maxpool(3, stride=2, pad=1, ceil=true)
    avgpool(3, stride=2, pad=1, ceil=true, count_pad=true)
    avgpool(3, stride=2, pad=1, ceil=true) -> gelu
  }
  concat {                                                               # 3x3
    avgpool(2, stride=2, pad=same) -> tanh
    maxpool(3, stride=2, pad=same) -> sigmoid
    adaptive_avgpool(3) -> leaky_relu
  } -> bn                                                                # a standalone bn that cannot fold
  add { identity; conv(108, 1, act=relu) -> scale(0.2) }
  feat = dropout(0.1)
  output probs = feat -> gap -> dense(classes, act=softmax)
  output logp = feat -> gmp -> dense(classes, act=log_softmax)
  output flat = feat -> conv(4, 1) -> flatten -> dense(classes)
  output late = feat -> gap -> dense(classes, act=softmax) -> dropout(0.1)   # softmax before dropout
  train_output aux(loss_weight=0.3) = mid -> gap -> dense(classes)
}
"""


def small(path: Path):
    """A small variant of a spec: 3 classes, width 0.25, the smallest size that builds."""
    spec = incdsl.Spec(path)
    base = {k: v for k, v in (("classes", 3), ("width", 0.25)) if k in spec.params}
    sizes = [{"size": s} for s in SIZES] if "size" in spec.params else [{}]
    for extra in ({}, {"aux": False}) if "aux" in spec.params else ({},):
        for s in sizes:
            try:
                return spec.build(**base, **extra, **s)
            except SpecError:
                continue
    raise AssertionError(f"no small variant of {path} builds")




@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    p = tmp_path_factory.mktemp("zoo") / "zoo.inc"
    p.write_text(ZOO)
    net = incdsl.load(p)
    return net, perturbed(net)


def ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def run_ort(path, x):
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))


def verify(path, net, w, tensors, layout, batch):
    """The three checks, asserted here rather than trusted to export()."""
    compared, total = onnx_verify.check_structure(str(path), net, tensors, layout, batch)
    assert compared == total > 0  # ONNX inferred a shape for every layer tensor, and all agree
    rel, absd, scale, n, on = onnx_verify.compare_runtime(str(path), net, w, layout, batch)
    assert rel <= onnx_verify.RTOL and scale > 0
    return rel


# --- every spec, direct, against Keras --------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SPECS.glob("*.inc")), ids=lambda p: p.stem)
def test_direct_matches_keras_for_every_spec(path, tmp_path):
    net = small(path)
    w = perturbed(net)
    out = tmp_path / f"{net.name}.onnx"
    r = export(net, out, w, verify=False)
    em = onnx_direct.emit(net, w)  # for the layer -> tensor map
    verify(out, net, w, em.layer_tensors, "nchw", None)
    model = onnx.load(str(out))
    # names from the IR: every weighted inference layer names its initializers and a tensor
    inits = {i.name for i in model.graph.initializer}
    tensors = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.input}
    for name, layer in net.layers.items():
        if name in net.inference and layer.op in ("conv", "dense", "dwconv", "sepconv"):
            assert any(i.startswith(name + "/") for i in inits), name
        if name in net.inference and layer.op not in ("dropout", "bn"):
            assert name in tensors, name
    # training-only heads and dropout are left out; batch norm is folded by default
    assert [o.name for o in model.graph.output] == [h.name for h in net.heads if not h.train_only]
    assert not any(n.op_type in ("Dropout", "BatchNormalization") for n in model.graph.node)
    assert r.folded == sum(1 for n in net.inference if net.layers[n].attrs.get("bn"))


# --- every op, every option -------------------------------------------------------------------

OPTIONS = [  # layout, batch, fold_bn, opset
    ("nchw", None, True, MIN_OPSET),
    ("nhwc", 3, False, "max"),
    ("nchw", 1, False, DEFAULT_OPSET),
    ("nhwc", None, True, DEFAULT_OPSET),
]


@pytest.mark.slow
@pytest.mark.parametrize("layout,batch,fold,opset", OPTIONS, ids=lambda v: str(v))
def test_zoo_options_match_keras(zoo, tmp_path, layout, batch, fold, opset):
    net, w = zoo
    opset = max_opset() if opset == "max" else opset
    out = tmp_path / "zoo.onnx"
    r = export(net, out, w, opset=opset, layout=layout, batch=batch, fold_bn=fold, verify=False)
    em = onnx_direct.emit(net, w, opset=opset, layout=layout, batch=batch, fold_bn=fold)
    assert em.serialized() == out.read_bytes()
    assert onnx.load(str(out)) == em.model  # the same message, field by field
    verify(out, net, w, em.layer_tensors, layout, batch)

    model = onnx.load(str(out))
    assert model.opset_import[0].version == opset
    dims = [d.dim_value or d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    b = "batch" if batch is None else batch
    assert dims == ([b, 24, 24, 3] if layout == "nhwc" else [b, 3, 24, 24])
    for o in model.graph.output:
        assert [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] == [b, 5]
    kinds = ops(out)
    # folding: 5 batch norms (conv_1, bn_1 after conv_3, dwconv_1, mid, bn_2); bn_2 follows a concat
    assert kinds.count("BatchNormalization") == (1 if fold else 5) and r.folded == (4 if fold else 0)
    assert kinds.count("LRN") == 1  # the odd window; the even one is a banded conv
    assert ("Gelu" in kinds) == (opset >= 20) and ("Erf" in kinds) == (opset < 20)
    transposes = [n for n in model.graph.node if n.op_type == "Transpose"]
    assert [t.input[0] for t in transposes] == (["input"] if layout == "nhwc" else []) + ["conv_4"]


@pytest.mark.slow
def test_batches_run_at_their_size(zoo, tmp_path):
    net, w = zoo
    dyn, fixed = tmp_path / "dyn.onnx", tmp_path / "fixed.onnx"
    export(net, dyn, w, verify=False)
    export(net, fixed, w, batch=4, verify=False)
    x = np.random.default_rng(0).standard_normal((4, 3, 24, 24)).astype(np.float32)
    a, b = run_ort(dyn, x), run_ort(fixed, x)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert run_ort(dyn, x[:1])["probs"].shape == (1, 5)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        run_ort(fixed, x[:1])


# --- tf2onnx: a second opinion ----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name,layout,batch,check", [
    ("googlenet", "nchw", None, True),      # LRN, ceil-mode pools, softmax head
    ("inception_v3", "nhwc", 2, False),     # 1x7/7x1 convs, same pads, no-scale bn
])
def test_tf2onnx_agrees_with_direct(name, layout, batch, check, tmp_path):
    net = small(SPECS / f"{name}.inc")
    w = perturbed(net)
    direct, via_tf = tmp_path / "direct.onnx", tmp_path / "tf.onnx"
    export(net, direct, w, layout=layout, batch=batch, verify=False)
    r = export(net, via_tf, w, layout=layout, batch=batch, via="tf2onnx", verify="keras" if check else False)
    assert onnx.load(str(via_tf)).producer_name == "tf2onnx"
    if check:
        assert "onnxruntime vs Keras" in r.checked
    else:
        with pytest.raises(UsageError, match="tf2onnx supports opsets 13 to 18"):
            export(net, tmp_path / "x.onnx", w, opset=19, via="tf2onnx")
    h, wd, c = net.input_shape
    x = np.random.default_rng(3).standard_normal((batch or 2, h, wd, c)).astype(np.float32)
    x = x if layout == "nhwc" else x.transpose(0, 3, 1, 2)
    a, b = run_ort(direct, x), run_ort(via_tf, x)
    assert sorted(a) == sorted(b) == [h.name for h in net.heads if not h.train_only]
    for k in a:
        scale = np.abs(b[k]).max()
        assert np.abs(a[k] - b[k]).max() <= 1e-4 * scale, k


# --- determinism, no TensorFlow, the command line ---------------------------------------------

def test_direct_is_deterministic_without_tensorflow(tmp_path):
    """The same inputs give the same bytes, in this process and a fresh one (another hash seed),
    and the direct path (with --no-verify) never imports TensorFlow, Keras or tf2onnx."""
    net = small(SPECS / "googlenet_tv.inc")
    mine = tmp_path / "mine.onnx"
    export(net, mine, verify=False)
    again = tmp_path / "again.onnx"
    export(incdsl.Spec(SPECS / "googlenet_tv.inc").build(**net.params), again, verify=False)
    assert mine.read_bytes() == again.read_bytes()

    sets = [
        a
        for k, v in net.params.items()
        for a in ("--set", f"{k}={'true' if v is True else 'false' if v is False else v}")
    ]
    code = ("import json, sys\nfrom incdsl.cli.main import main\n"
            f"rc = main(['compile', {str(SPECS / 'googlenet_tv.inc')!r}, '--to', 'onnx', '--no-verify', "
            f"*{sets!r}])\n"
            "print(json.dumps([rc, sorted({m.split('.')[0] for m in sys.modules} "
            "& {'tensorflow', 'keras', 'tf2onnx', 'torch'})]))")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**ENV, "PYTHONHASHSEED": "123"},
                       capture_output=True, text=True, timeout=120)
    rc, heavy = json.loads(p.stdout.strip().splitlines()[-1])
    assert rc == 0 and heavy == [], p.stderr
    assert p.stdout.startswith("wrote googlenet_tv.onnx")  # default name, in the working directory
    assert (tmp_path / "googlenet_tv.onnx").read_bytes() == mine.read_bytes()


def test_opset_and_batch_bounds(tmp_path):
    import onnxruntime.capi._pybind_state as c
    ort_max = max(k.version_range[0] for k in c.get_all_opkernel_def() if k.domain in ("", "ai.onnx"))
    assert max_opset() == min(onnx.defs.onnx_opset_version(), ort_max) >= DEFAULT_OPSET
    net = small(SPECS / "googlenet_tv.inc")
    for bad in (MIN_OPSET - 1, max_opset() + 1):
        with pytest.raises(UsageError, match=f"^opset {bad} is out of range: direct supports opsets"):
            export(net, tmp_path / "x.onnx", opset=bad, verify=False)
    p = subprocess.run([sys.executable, "-m", "incdsl", "compile", str(SPECS / "googlenet_tv.inc"), "--to",
                        "onnx",
                        "--batch", "two"], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert p.returncode == 2 and "--batch must be 'dynamic' or an integer from 1 to" in p.stderr
    assert list(tmp_path.iterdir()) == []


# --- failures leave nothing behind ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("verify,against", [("keras", "Keras"), (True, "incdsl's numpy reference")])
def test_failed_verification_leaves_nothing(zoo, tmp_path, monkeypatch, verify, against):
    """A wrong batch-norm fold (an emitter bug) is caught by onnxruntime vs Keras (--verify keras)
    and by the default, onnxruntime vs the numpy reference: no file."""
    net, w = zoo

    def wrong(p, eps):
        scale, shift = real(p, eps)
        return scale * 1.01, shift
    real = onnx_direct.bn_affine
    monkeypatch.setattr(onnx_direct, "bn_affine", wrong)
    out = tmp_path / "zoo.onnx"
    with pytest.raises(SpecError, match=f"onnxruntime and {against} disagree"):
        export(net, out, w, verify=verify)
    assert list(tmp_path.iterdir()) == []


def test_shape_disagreement_is_caught(zoo, tmp_path):
    net, w = zoo
    out = tmp_path / "zoo.onnx"
    export(net, out, w, verify=False)
    em = onnx_direct.emit(net, w)
    wrong = dict(em.layer_tensors, concat_1=em.layer_tensors["concat_2"])  # 3x3x108 where 5x5x36 is due
    with pytest.raises(SpecError, match="shape inference gives batchx108x3x3 for 'concat_1'.*5x5x36|36x5x5"):
        onnx_verify.check_structure(str(out), net, wrong, "nchw", None)


def test_unwritable_and_bad_weights_leave_nothing(zoo, tmp_path):
    net, w = zoo
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    with pytest.raises(UsageError, match="cannot write"):
        export(net, blocker / "zoo.onnx", w, verify=False)
    with pytest.raises(UsageError, match="is a directory"):
        export(net, tmp_path, w, verify=False)
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: no model.weights.h5
    with pytest.raises(SpecError, match="not a Keras 3 model archive"):
        export(net, tmp_path / "zoo.onnx", bad, verify=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.keras", "file.txt"]


# --- weights from a .keras file, read without TensorFlow --------------------------------------

@pytest.mark.slow
def test_keras_file_weights_read_with_h5py(zoo, tmp_path):
    from incdsl.backends.keras.build import build_model
    from incdsl.backends.keras.weights import from_keras
    from incdsl.backends.onnx.weights import read_keras_file
    net, w = zoo
    model = build_model(net, weights=w)
    model.save(tmp_path / "zoo.keras")
    got = read_keras_file(net, tmp_path / "zoo.keras")
    ref = from_keras(model, net)
    assert set(got) == {n for n in ref if n in net.inference} and "aux" not in got
    for node, arrays in got.items():
        assert arrays.keys() == ref[node].keys()
        for k in arrays:
            np.testing.assert_array_equal(arrays[k], ref[node][k])
            np.testing.assert_array_equal(arrays[k], w[node][k])
    r = export(net, tmp_path / "zoo.onnx", tmp_path / "zoo.keras", verify="keras")
    assert r.checked and "onnxruntime vs Keras" in r.checked
    other = incdsl.load(_zoo_path(tmp_path), classes=6)
    with pytest.raises(SpecError, match="layer 'probs' holds"):
        export(other, tmp_path / "other.onnx", tmp_path / "zoo.keras", verify=False)
    assert not (tmp_path / "other.onnx").exists()


def _zoo_path(tmp_path) -> Path:
    p = tmp_path / "zoo.inc"
    p.write_text(ZOO)
    return p


@pytest.mark.slow
def test_trained_model_file_gives_raw_pixel_onnx(zoo, tmp_path):
    """A model saved by `incdsl train` wraps the network in a `preprocess` layer (and names its
    outputs after the heads, like the heads' own layers): the ONNX export reads the network's
    weights past both and scales raw pixels itself, agreeing with the saved Keras model."""
    import onnxruntime as ort

    from incdsl.backends.keras.build import build_model
    from incdsl.train.model import with_preprocessing
    net, w = zoo
    heads = [h.name for h in net.heads if not h.train_only]
    saved = with_preprocessing(build_model(net, inference=True, weights=w), net.input_shape, "imagenet",
                               heads)
    saved.save(tmp_path / "trained.keras")
    r = export(net, tmp_path / "trained.onnx", tmp_path / "trained.keras", layout="nhwc", verify="keras")
    assert "Normalization preprocess" in r.lines()[0] and "onnxruntime vs Keras" in r.checked
    raw = np.random.default_rng(7).uniform(0, 255, (3, *net.input_shape)).astype(np.float32)
    ref = saved(raw)
    sess = ort.InferenceSession(str(tmp_path / "trained.onnx"), providers=["CPUExecutionProvider"])
    got = dict(zip(heads, sess.run(None, {"input": raw})))
    for h in heads:
        want = np.asarray(ref[h])
        assert np.abs(got[h] - want).max() <= 1e-4 * np.abs(want).max(), h


def test_maxpool_padding_as_wide_as_the_window(spec_file):
    """A pool pad as wide as the window puts whole windows in the padding (their max is -inf,
    -3.4e38 once exported): `check` refuses it for every backend (issue 12, item 19), so no
    exporter has to invent a translation for it."""
    with pytest.raises(SpecError, match=r"bottom padding 2 is not smaller than the window \(2\)"):
        incdsl.load(spec_file("network t() {\n  input 4x4x2\n  maxpool(2, stride=2, pad=(0, 2, 0, 2))\n}\n"))


def test_a_bn_does_not_fold_into_a_conv_that_an_output_reads(tmp_path):
    p = tmp_path / "h.inc"
    p.write_text("""
network h() {
  input 8x8x3
  feat = conv(4, 3, bias=false)
  output f = feat
  output main = feat -> bn -> gap -> dense(3)
}
""")
    net = incdsl.load(p)
    r = export(net, tmp_path / "h.onnx", perturbed(net), verify="keras")  # onnxruntime vs Keras on 'f' too
    assert r.folded == 0 and "BatchNormalization" in ops(tmp_path / "h.onnx")


@pytest.mark.parametrize("layout,batch,fold,opset", OPTIONS, ids=lambda v: str(v))
def test_zoo_options_match_the_numpy_reference(zoo, tmp_path, layout, batch, fold, opset):
    """The zoo under every option, in the quick suite: onnxruntime against incdsl's numpy
    interpreter of the graph (backends/numpy_ref.py, itself checked against Keras and torch by the
    slow tests), on every inference head and every layer tensor's inferred shape."""
    net, w = zoo
    opset = max_opset() if opset == "max" else opset
    out = tmp_path / "zoo.onnx"
    r = export(net, out, w, opset=opset, layout=layout, batch=batch, fold_bn=fold, verify=False)
    em = onnx_direct.emit(net, w, opset=opset, layout=layout, batch=batch, fold_bn=fold)
    assert em.serialized() == out.read_bytes() and onnx.load(str(out)) == em.model
    compared, total = onnx_verify.check_structure(str(out), net, em.layer_tensors, layout, batch)
    assert compared == total > 0
    rel, _, scale, n, against = onnx_verify.compare_runtime(str(out), net, w, layout, batch,
                                                            reference="numpy")
    assert rel <= onnx_verify.RTOL and scale > 0 and n == (batch or 1)
    model = onnx.load(str(out))
    assert model.opset_import[0].version == opset and model.graph.name == "zoo"
    assert model.producer_name == "incdsl" and model.graph.doc_string.startswith("incdsl: network zoo from ")
    assert [o.name for o in model.graph.output] == ["probs", "logp", "flat", "late"]
    b = "batch" if batch is None else batch
    dims = [d.dim_value or d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ([b, 24, 24, 3] if layout == "nhwc" else [b, 3, 24, 24])
    assert all([d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] == [b, 5]
               for o in model.graph.output)
    kinds = ops(out)
    assert kinds.count(
        "BatchNormalization") == (1 if fold else 5) and r.folded == em.folded == (4 if fold else 0)
    assert kinds.count("LRN") == 1 and ("Gelu" in kinds) == (opset >= 20)
    assert [t.input[0] for t in model.graph.node if t.op_type == "Transpose"] == (
        ["input"] if layout == "nhwc" else []) + ["conv_4"]


OTHERS = """
network others() {
  input 6x6x4
  normalize((0.1, 0.2, 0.3, 0.4), (0.5, 1.5, 2.0, 0.8))
  affine(1.5, -0.25)
  x = conv(8, 3, act=relu)
  channel_shuffle(2)
  multiply { identity; gap -> dense(8, act=sigmoid) }
  drop_path(0.2)
  add { identity; conv(8, 1); conv(8, 3) }
  output v = gap -> dense(3) -> affine((1.0, 2.0, 3.0), 0.5)
}
"""


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_the_ops_the_zoo_lacks_match_the_numpy_reference(layout):
    """Per-channel normalize and affine (on a map and on a vector), channel shuffle, a
    squeeze-and-excitation gate, drop path and a three-input add, against the numpy interpreter."""
    net = incdsl.loads(OTHERS)
    w = perturbed(net)
    em = onnx_direct.emit(net, w, layout=layout)
    compared, total = onnx_verify.check_structure(em.model, net, em.layer_tensors, layout, None)
    assert compared == total > 0
    rel, _, scale, _, _ = onnx_verify.compare_runtime(em.model, net, w, layout, None, reference="numpy")
    assert rel <= onnx_verify.RTOL and scale > 0
    kinds = [n.op_type for n in em.model.graph.node]
    assert kinds.count("Sum") == 1 and kinds.count("Reshape") == 3  # shuffle: 2, the gate: 1
