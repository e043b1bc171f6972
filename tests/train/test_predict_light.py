"""Issue 23, item 5: `incdsl predict` of a model incdsl wrote runs without Keras (train/predict_light.py):
the network rebuilt from the spec text the file records (analysis/rebuild.py), its weights read with
h5py, the images through the numpy reference after the model's own preprocess layer. It must give
the probabilities Keras gives for the same file (keras.saving.load_model, the reference), and
hand every model it cannot vouch for to Keras. The CPU time is measured by tools/bench_startup.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import incdsl
from incdsl.analysis.rebuild import KEY, fingerprint, rebuild, record

from conftest import ROOT, SPECS
from perturbed_weights import perturbed

HEAVY = {"tensorflow", "keras", "jax", "torch", "onnx", "onnxruntime"}




# --- the record: rebuilt from its own text, or not at all (no Keras) ----------------------------------

def test_record_rebuilds_the_same_network_from_its_text_alone(tmp_path):
    spec = tmp_path / "v3.inc"  # a spec that `use`s a library file: both texts are recorded
    spec.write_text((SPECS / "inception_v3.inc").read_text())
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "inception_v3.inc").write_text((SPECS / "lib" / "inception_v3.inc").read_text())
    net = incdsl.load(spec, width=0.25, size=107, classes=7, aux=True)
    rec = json.loads(json.dumps(record(net)))  # as read back from the file
    assert len(rec["sources"]) == 2 and rec["params"]["classes"] == 7
    (tmp_path / "lib" / "inception_v3.inc").unlink()  # the files on disk play no part
    spec.write_text("not a spec any more")
    again = rebuild(rec)
    assert again is not None and fingerprint(again) == fingerprint(net) and again.expand() == net.expand()


def test_a_record_that_does_not_give_the_same_network_is_not_used():
    net = incdsl.load(SPECS / "googlenet.inc", width=0.25, size=64, classes=5, aux=False)
    rec = record(net)
    root = rec["spec"]
    edited = {**rec, "sources": {root: rec["sources"][root].replace("lrn(", "lrn(size=3, ", 1)}}
    assert "size=3" in edited["sources"][root] and rebuild(edited) is None  # same shapes, other numbers
    assert rebuild({**rec, "params": {**rec["params"], "width": 0.5}}) is None  # other arguments
    assert rebuild({**rec, "fingerprint": "0" * 64}) is None
    assert rebuild({**rec, "format": "something/2"}) is None and rebuild(None) is None
    assert rebuild(rec) is not None
    v3 = record(incdsl.load(SPECS / "inception_v3.inc", width=0.25, size=75))
    lib = next(k for k in v3["sources"] if k != v3["spec"])
    del v3["sources"][lib]  # the library file would be read from disk: not from the record
    assert rebuild(v3) is None
    assert record(incdsl.loads("network n() {\n  input 8x8x3\n  output o = gap\n}\n")) is None  # no files


def test_a_zip_without_a_record_goes_to_keras(tmp_path):
    from incdsl.train.predict_light import scores
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("config.json", "{}")
    assert scores(tmp_path / "other.keras", x=np.zeros((1, 8, 8, 3), np.float32)) is None


# --- the same probabilities as Keras -------------------------------------------------------------------

def _compiled(net, path, inference: bool):
    """What `incdsl compile --to keras` writes (backends/keras/export.py), with perturbed weights."""
    from incdsl.backends.keras.build import build_model
    from incdsl.backends.keras.file import write_spec_meta
    build_model(net, inference=inference, weights=perturbed(net)).save(path)
    write_spec_meta(path, net, inference)


def _trained(net, path, preprocess: str):
    """What `incdsl train` writes (train/run/export.py make_exporter, saving.save_model): the
    inference network inside a wrapper that scales raw pixels, its main head named, class names."""
    from incdsl.backends.keras.build import build_model
    from incdsl.train.model import with_preprocessing
    from incdsl.train.saving import META_FORMAT, save_model
    main = next(h for h in net.heads if not h.train_only)
    model = with_preprocessing(build_model(net, inference=True, weights=perturbed(net)), net.input_shape,
                               preprocess, [main.name])
    classes = [f"c{i}" for i in range(main.shape[0])]
    save_model(model, path, {"format": META_FORMAT, "network": net.name, "classes": classes,
                             "head": main.name, "logits": True, "preprocess": preprocess, KEY: record(net)})


CASES = [  # spec, arguments, how the file was written
    ("inception_v3", dict(width=0.25, size=107, classes=10, aux=True), "compiled"),  # aux head left out
    ("googlenet_tv", dict(width=0.25, size=64, classes=6, aux=False, transform_input=True), "inference"),
    ("googlenet", dict(width=0.25, size=64, classes=5, aux=False), "inference"),  # LRN
    ("inception_resnet_v2", dict(width=0.25, size=75, classes=4, n35=1, n17=1, n8=1), "inference"),
    ("xception", dict(width=0.25, size=71, classes=3), "inference"),  # separable convolutions
    ("inception_v3", dict(width=0.25, size=75, classes=5, aux=False), "trained:inception"),
    ("bn_inception", dict(width=0.25, size=64, classes=4), "trained:imagenet"),
    ("inception_v4", dict(width=0.25, size=75, classes=3), "trained:unit"),
]


@pytest.mark.slow  # builds and saves eight Keras models
@pytest.mark.parametrize("spec, args, how", CASES, ids=[f"{s}-{h}" for s, _, h in CASES])
def test_gives_keras_own_scores(tmp_path, spec, args, how):
    import keras

    from incdsl.train.predict_light import ranked, scores
    net = incdsl.load(SPECS / f"{spec}.inc", **args)
    path = tmp_path / "m.keras"
    if how.startswith("trained:"):
        _trained(net, path, how.split(":")[1])
    else:
        _compiled(net, path, inference=how == "inference")
    x = np.random.default_rng(0).uniform(0, 255, (2, *net.input_shape)).astype(np.float32)
    model = keras.saving.load_model(path, compile=False)  # Keras' own loader: the reference
    want = model(x if how.startswith("trained:") else x / 127.5 - 1, training=False)
    if isinstance(want, (list, tuple)):  # the training model, outputs in head order: read the main head
        assert how == "compiled" and len(want) == len(net.heads) == 2
        want = want[next(i for i, h in enumerate(net.heads) if not h.train_only)]
    want = np.asarray(keras.ops.convert_to_numpy(want), np.float64)
    got = scores(path, x=x if how.startswith("trained:") else x / 127.5 - 1)
    assert got is not None, "the light path refused a model incdsl wrote"
    y, meta = got
    assert y.shape == want.shape and y.dtype == np.float32
    scale = np.abs(want).max()
    assert np.abs(y - want).max() <= 1e-4 * scale, np.abs(y - want).max() / scale
    # and the ranking the command prints: the same classes, probabilities to 1e-5
    a, b = ranked(y, meta, path, 3), ranked(want, meta, path, 3)
    assert [[c for c, _ in r] for r in a] == [[c for c, _ in r] for r in b]
    np.testing.assert_allclose([[p for _, p in r] for r in a], [[p for _, p in r] for r in b], atol=1e-5)


@pytest.mark.slow  # a Keras model saved, then the command in a fresh interpreter
def test_predict_imports_no_keras_for_a_model_incdsl_wrote(tmp_path):
    """The CLI on a compiled Inception v3 (the benchmark's case, small): the answer Keras gives, and
    neither Keras nor any backend imported; a file without the record still goes to Keras."""
    from PIL import Image
    net = incdsl.load(SPECS / "inception_v3.inc", width=0.25, size=75, classes=10, aux=False)
    _compiled(net, tmp_path / "m.keras", inference=True)
    images = []
    for i in range(2):
        images.append(str(tmp_path / f"img{i}.jpg"))
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (90, 80, 3), np.uint8)).save(images[-1])
    code = (
        "import json, sys\nfrom incdsl.cli.main import main\nrc = main(['predict', *sys.argv[1:], '--json', "
            "'--top', '3'])\nprint(json.dumps([rc, sorted({m.split('.')[0] for m in sys.modules} & "
            f"set({sorted(HEAVY)!r}))]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras"), *images], env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stdout.strip().splitlines()
    rc, heavy = json.loads(lines[-1])
    assert rc == 0 and heavy == [], heavy
    light = json.loads("\n".join(lines[:-1]))

    from incdsl.train.predict import predict  # Keras' answer on the same file and images
    want = predict(str(tmp_path / "m.keras"), images, top=3)
    for img, top in zip(images, want):
        assert [t["class"] for t in light[img]] == [c for c, _ in top]
        np.testing.assert_allclose([t["probability"] for t in light[img]], [p for _, p in top], atol=1e-5)

    with zipfile.ZipFile(tmp_path / "m.keras") as z, zipfile.ZipFile(tmp_path / "plain.keras", "w") as out:
        for info in z.infolist():
            if info.filename != "incdsl_spec.json":  # as a model from elsewhere: no record
                out.writestr(info, z.read(info))
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "plain.keras"), *images], env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    rc, heavy = json.loads(p.stdout.strip().splitlines()[-1])
    assert rc == 0 and "keras" in heavy
