"""Training that holds up (issue 10): batch norm that settles, runs that diverge stop, real data.

The exact cases the issue names: the README's own command on googlenet_tv (width 0.25, 64x64,
3 colour classes, 6 epochs of 11 batches) with aux=false and aux=true must classify 60 freshly
generated images through the saved model from raw 0-255 pixels; scikit-learn's handwritten digits
(tools/digits_folder.py) train a small Inception with batch norm to >= 95% and googlenet_tv at
width 0.25 to >= 90% on the held-out part. Batch-norm momentum and epsilon of the torch-matched
specs are compared with the real torchvision/timm modules.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from incdsl import load
from incdsl.train.diagnose import explain_gap

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning",
                                        "ignore:The structure of `inputs`:UserWarning")

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
COLOURS = ("red", "green", "blue")

# A small Inception with batch norm: GoogLeNet's module, every conv conv -> BN -> relu, grey input.
SMALL_BN = f"""
use "{SPECS / 'googlenet.inc'}"

network small_bn(classes=10, size=32, width=0.25) {{
  defaults conv(bias=false, bn=true, bn_momentum=0.9, act=relu)
  input(size, size, 1)
  conv(16, 3, stride=2)
  a = inception(64, 96, 128, 16, 32, 32, width)
  maxpool(3, stride=2, pad=same)
  b = inception(64, 96, 128, 16, 32, 32, width)
  output fc = gap -> dense(classes)
}}
"""


def colour_images(root: Path, per_class: int, seed: int, size: int = 64) -> Path:
    """The issue's folder: pixels uniform 0-89, the class's channel uniform 150-255, PNG."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for ch, name in enumerate(COLOURS):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            x = rng.integers(0, 90, size=(size, size, 3))
            x[..., ch] = rng.integers(150, 256, size=(size, size))
            Image.fromarray(x.astype("uint8")).save(root / name / f"{i:03d}.png")
    return root


def saved_model_accuracy(model_path: Path, folder: Path) -> float:
    """Accuracy of a saved model on every image under folder/<class>/, fed raw 0-255 pixels (the
    model does its own preprocessing), loaded with plain Keras."""
    import keras
    from PIL import Image
    model = keras.saving.load_model(model_path, compile=False)
    with __import__("zipfile").ZipFile(model_path) as z:
        classes = json.loads(z.read("incdsl.json"))["classes"]
    files = sorted(folder.rglob("*.png"))
    h, w, c = model.input_shape[1:]
    mode = {1: "L", 3: "RGB"}[c]
    x = np.stack([np.asarray(Image.open(f).convert(mode).resize((w, h), Image.BILINEAR),
                             dtype="float32").reshape(h, w, c)
                  for f in files])
    assert x.max() > 100  # raw pixels, not scaled
    y = np.asarray(model.predict(x, batch_size=64, verbose=0))
    got = [classes[i] for i in y.argmax(-1)]
    return float(np.mean([g == f.parent.name for g, f in zip(got, files)]))


# --- the README's command, exactly -------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("aux", ["false", "true"])
def test_readme_command_classifies_fresh_colour_images(tmp_path, cli, aux):
    data = colour_images(tmp_path / "rgb", 60, seed=0)
    fresh = colour_images(tmp_path / "fresh", 20, seed=123)
    out = tmp_path / "m.keras"
    code, stdout, _ = cli("train", SPECS / "googlenet_tv.inc", "--data", data, "--epochs", 6,
                              "--batch-size", 16, "--set", "width=0.25", "--set", "size=64", "--set",
                          "classes=3",
                              "--set", f"aux={aux}", "-o", out, "--progress", "off", "--no-tensorboard")
    assert code == 0
    # 162 training images in full batches of 16 (the input path drops an epoch's last partial batch)
    assert "layers recalibrated over 10 training batches (160 images)" in stdout
    assert saved_model_accuracy(out, fresh) >= 0.9
    # predict through the command too: each colour gets its own class
    files = [str(fresh / c / "000.png") for c in COLOURS]
    code, stdout, _ = cli("predict", out, *files, "--top", 1, "--json")
    assert code == 0
    top = {Path(f).parent.name: v[0]["class"] for f, v in json.loads(stdout).items()}
    assert top == {c: c for c in COLOURS}


# --- real data: scikit-learn's digits -----------------------------------------------------------

@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tools"))
    from digits_folder import write_digits
    root = tmp_path_factory.mktemp("digits")
    return {size: write_digits(root / str(size), size=size) for size in (32, 64)}


@pytest.mark.slow
def test_small_bn_inception_learns_digits(digits, tmp_path, cli):
    train, test = digits[32]
    assert sum(1 for _ in train.rglob("*.png")) == 1437 and sum(1 for _ in test.rglob("*.png")) == 360
    spec = tmp_path / "small_bn.inc"
    spec.write_text(SMALL_BN)
    out = tmp_path / "digits.keras"
    # SGD at 5x the default rate (0.05), as batch norm allows (BN-Inception's "BN-x5", Ioffe & Szegedy
    # 2015, section 4.2): at 0.01 the 160 steps leave it underfit (training accuracy 0.91, loss 0.70)
    # and the held-out figure drifts with the order of the batches (seeds 0, 1, 2: 0.942, 0.933, 0.958).
    # At 0.05 seeds 0, 1, 2 gave 0.978, 0.981, 0.986 (training accuracy 0.97).
    code, stdout, _ = cli("train", spec, "--data", train, "--epochs", 4, "--batch-size", 32, "--lr", 0.05,
                              "--no-augment", "--progress", "off", "--no-tensorboard", "-o", out)
    assert code == 0, stdout
    acc = saved_model_accuracy(out, test)
    print(f"small BN Inception on the digits: {acc:.4f}")
    assert acc >= 0.95


@pytest.mark.slow
def test_googlenet_tv_quarter_width_learns_digits(digits, tmp_path, cli):
    train, test = digits[64]
    out = tmp_path / "g.keras"
    code, stdout, _ = cli("train", SPECS / "googlenet_tv.inc", "--data", train, "--set", "width=0.25",
                              "--set", "size=64", "--set", "classes=10", "--set", "aux=false", "--epochs", 4,
                              "--batch-size", 32, "--no-augment", "--progress", "off", "--no-tensorboard",
                          "-o", out)
    assert code == 0, stdout
    acc = saved_model_accuracy(out, test)
    print(f"googlenet_tv width 0.25 on the digits: {acc:.4f}")
    assert acc >= 0.90


def test_digits_folder_tool_refuses_bad_input(tmp_path):
    tool = ROOT / "tools" / "digits_folder.py"
    for extra, message in ((["--size", "4"], "at least 8"), (["--test", "1.5"], "between 0 and 1")):
        p = subprocess.run([sys.executable, tool, tmp_path / "d", *extra], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr
        assert not (tmp_path / "d").exists()


# --- precise batch norm itself ------------------------------------------------------------------

@pytest.mark.slow  # builds GoogLeNet in Keras and recalibrates it: ~4.5 s of CPU (issue 29's quick budget)
def test_recalibrated_statistics_are_the_batch_statistics(tmp_path):
    """After recalibrating on one batch, every BN layer's moving mean and variance are that batch's:
    the model in inference mode computes what Keras' training mode computes on it (up to the last
    BN; dropout after it differs on purpose)."""
    import keras

    from incdsl.backends.keras.build import build_model
    from incdsl.train.bn import bn_layers, recalibrate
    from incdsl.train.model import with_preprocessing

    # Keras' biased rule (the spec's torch rule, bn_unbiased, keeps n / (n - 1) more variance on
    # purpose: tests/ops/test_torch_bn.py)
    text = (SPECS / "googlenet_tv.inc").read_text().replace("bn_unbiased=true", "bn_unbiased=false")
    assert "bn_unbiased=false" in text
    spec = tmp_path / "googlenet_tv.inc"
    spec.write_text(text)
    shutil.copy(SPECS / "googlenet.inc", tmp_path / "googlenet.inc")
    net = load(spec, width=0.25, size=64, classes=3, aux=False)
    core = build_model(net, inference=True, seed=0)
    model = with_preprocessing(core, net.input_shape, "inception", ["fc"])
    x = np.random.default_rng(0).uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    done = recalibrate(model, [(x, None), (x + 50, None)], limit=1)
    assert (done.layers, done.batches, done.images) == (57, 1, 8)
    last = bn_layers(model)[-1]
    sub = keras.Model(core.input, last.output)
    xp = model.get_layer("preprocess")(x)
    infer = keras.ops.convert_to_numpy(sub(xp, training=False))
    train = keras.ops.convert_to_numpy(sub(xp, training=True))
    assert np.abs(infer - train).max() < 1e-3 * np.abs(train).max()


# Counts the XLA programs JAX compiles while `recalibrate` runs a small BN network on two batches:
# the probe through Keras' compiled predict is one program (and the batch's conversions), where an
# eager call of the network compiles one per op and shape (conv, mean, variance, rsqrt...).
COMPILES = r"""
import jax, keras, numpy as np
from incdsl.train.bn import recalibrate, statistics_probe
inp = keras.Input((16, 16, 3))
x = keras.layers.ReLU()(keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3)(inp)))
x = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, padding="same")(x))
model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
probe = statistics_probe(model)
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **kw: compiles.append(event) if event.endswith("backend_compile_duration") else None)
x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
done = recalibrate(model, [x, x + 1], 2, probe)
print(done.layers, done.batches, len(compiles))
"""


@pytest.mark.slow
def test_recalibration_on_jax_runs_the_network_as_one_compiled_program():
    # Keras' predict_on_batch on JAX builds an unbuilt model by calling it eagerly first: the probe
    # must count as built, or every recalibrating run compiles the network op by op once
    # (googlenet_tv at 32x32: ~450 programs, 23 of the first epoch's 29 s of recalibration).
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # every program compiled here, none read from a cache
    p = subprocess.run([sys.executable, "-c", COMPILES], capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    layers, batches, compiles = map(int, p.stdout.split())
    assert (layers, batches) == (2, 2)
    assert 1 <= compiles <= 3, compiles


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_recalibration_on_other_keras_backends(tmp_path, backend):
    spec = tmp_path / "s.inc"
    spec.write_text(SMALL_BN)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "incdsl", "train", spec, "--data", "synthetic", "--epochs", "1",
                        "--batch-size", "4", "--steps-per-epoch", "3", "--bn-recalibrate", "2", "-o",
                        tmp_path / "m.keras",
                        "--progress", "off", "--no-tensorboard"], capture_output=True, text=True, timeout=300,
                       env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"Keras {backend}" in p.stdout
    assert "13 layers recalibrated over 2 training batches (8 images)" in p.stdout
    meta = json.loads(__import__("zipfile").ZipFile(tmp_path / "m.keras").read("incdsl.json"))
    assert meta["bn_recalibrated"]["batches"] == 2


@pytest.mark.slow
def test_recalibration_under_mirrored_strategy(tmp_path):
    spec = tmp_path / "s.inc"
    spec.write_text(SMALL_BN)
    code = ("import tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
            "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
            "from incdsl.cli.main import main; import sys; sys.exit(main(sys.argv[1:]))")
    p = subprocess.run([sys.executable, "-c", code, "train", spec, "--data", "synthetic", "--epochs", "1",
                        "--batch-size",
                        "4", "--steps-per-epoch", "3", "--strategy", "mirrored", "-o", tmp_path / "m.keras",
                        "--progress",
                        "off", "--no-tensorboard"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert "MirroredStrategy, 2 replicas" in p.stdout
    assert "13 layers recalibrated over 3 training batches (12 images)" in p.stdout


def test_gap_diagnosis_names_the_causes_it_can_check():
    lines = explain_gap(1.0, 0.39, steps=66, bn_momenta=[0.99] * 57, recalibrated=False, val_images=18,
                        classes=3)
    assert "far below" in lines[0]
    assert any("momentum up to 0.99" in ln and "66 steps" in ln and "52%" in ln for ln in lines)
    assert any("18 images (6.0 per class)" in ln for ln in lines)
    assert explain_gap(1.0, 0.95, steps=66, bn_momenta=[0.99], recalibrated=False, val_images=18,
                       classes=3) == []
    lines = explain_gap(1.0, 0.5, steps=5000, bn_momenta=[0.9], recalibrated=True, val_images=500, classes=3)
    assert len(lines) == 2 and "overfitting" in lines[1]


# --- a run that diverges stops ---------------------------------------------------------------------

@pytest.mark.slow
def test_divergence_stops_with_an_error(tmp_path, cli):
    spec = tmp_path / "s.inc"
    spec.write_text(SMALL_BN)
    out = tmp_path / "m.keras"
    code, stdout, err = cli("train", spec, "--data", "synthetic", "--lr", "1e30", "--epochs", 3,
                                "--batch-size", 4, "--steps-per-epoch", 3, "-o", out, "--progress", "off",
                            "--no-tensorboard")
    assert code == 1
    assert "training diverged" in err and "at step" in err and "--lr" in err and "Traceback" not in err
    assert f"{out} was not written" in err
    assert not out.exists() and "wrote" not in stdout


# --- bad input -------------------------------------------------------------------------------------

def test_bad_recalibration_and_decay_options(tmp_path, cli):
    spec = tmp_path / "s.inc"
    spec.write_text(SMALL_BN)
    out = tmp_path / "m.keras"
    for argv, message in ((["--bn-recalibrate", "0"], "at least 1 batch"),
                          (["--bn-recalibrate", "many"], "number of batches or 'off'"),
                          (["--weight-decay", "-1"], "--weight-decay must be"),
                          (["--weight-decay", "inf"], "--weight-decay must be")):
        code, _, err = cli("train", spec, "--data", "synthetic", "-o", out, *argv)
        assert code == 2, (argv, err)
        assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [spec]


def test_a_folder_too_small_for_recalibration(tmp_path, cli):
    data = colour_images(tmp_path / "rgb", 10, seed=0, size=8)
    spec = tmp_path / "s.inc"
    spec.write_text(SMALL_BN.replace("classes=10", "classes=3").replace("input(size, size, 1)",
                                                                        "input(size, size, 3)"))
    code, _, err = cli("train", spec, "--data", data, "--batch-size", 16, "--bn-recalibrate", 5,
                           "-o", tmp_path / "m.keras")
    assert code == 1
    assert (
        "--bn-recalibrate 5 needs 5 training batches of 16" in err and "gives (27 training images) 2" in err
    )
    assert not (tmp_path / "m.keras").exists() and not (tmp_path / "m.log.csv").exists()


# --- torch's momentum in the torch-matched specs -------------------------------------------------

TORCH_BN = r"""
import json, timm, torch, torchvision
with torch.device("meta"):
    models = {
        "googlenet_tv": torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False),
        "inception_v3_tv": torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False),
        "inception_v4": timm.create_model("inception_v4", pretrained=False),
    }
print(json.dumps({k: [[m.momentum, m.eps] for m in v.modules() if isinstance(m, torch.nn.BatchNorm2d)]
                  for k, v in models.items()}))
"""


@pytest.mark.slow
def test_bn_momentum_and_eps_match_torch():
    """Every BN layer of the three torch-matched specs, in order, against the torch module: Keras'
    momentum is 1 - torch's (torch: new = (1 - m) * old + m * batch), eps the same."""
    p = subprocess.run([sys.executable, "-c", TORCH_BN], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    torch_bn = json.loads(p.stdout.splitlines()[-1])
    for spec, over in (("googlenet_tv", {"aux": True}), ("inception_v3_tv", {"aux": True}),
                       ("inception_v4", {})):
        net = load(SPECS / f"{spec}.inc", **over)
        ours = [(l.attrs["bn_momentum"], l.attrs["bn_eps"]) if l.op != "bn" else (l.attrs["momentum"],
                                                                                  l.attrs["eps"])
                for l in net.layers.values() if l.attrs.get("bn") or l.op == "bn"]
        theirs = torch_bn[spec]
        assert len(ours) == len(theirs), spec
        for i, ((m, eps), (tm, teps)) in enumerate(zip(ours, theirs)):
            assert m == pytest.approx(1 - tm) and eps == pytest.approx(teps), (spec, i)


def test_precise_bn_recalibrates_the_layers_unfrozen_between_validations():
    # --unfreeze-after makes frozen BN layers trainable between two validations: the next precise BN
    # recalibrates them too, with a probe built for the new split of the variables (a stale one left
    # them out, and its compiled step no longer fit the variables under keras.distribution).
    import keras

    from incdsl.train.precise import PreciseBN

    x_in = keras.Input((8, 8, 3))
    h = keras.layers.BatchNormalization(name="bn1")(keras.layers.Conv2D(4, 3, name="c1")(x_in))
    h = keras.layers.BatchNormalization(name="bn2")(keras.layers.Conv2D(4, 3, name="c2")(h))
    model = keras.Model(x_in, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    x = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    first = [model.get_layer("c1"), model.get_layer("bn1")]
    for layer in first:
        layer.trainable = False
    precise = PreciseBN(model, [(x, None)], 1)
    precise.on_train_begin()
    precise.on_test_begin()
    assert precise.done.layers == 1
    assert np.all(keras.ops.convert_to_numpy(model.get_layer("bn1").moving_mean) == 0)
    for layer in first:
        layer.trainable = True
    precise.on_test_begin()
    assert precise.done.layers == 2
    assert np.any(keras.ops.convert_to_numpy(model.get_layer("bn1").moving_mean) != 0)
