"""Issue 23, items 1 and 3 and its bad input: training, prediction and weights with one Keras
backend installed and no TensorFlow, in real fresh venvs (`pip install incdsl[jax]`, and
`incdsl[torch]` with torch's CPU wheel; tests/freshvenv.py), driven through the `incdsl` program
as a user runs it: HOME of the test's own (no keras.json of the developer's), no PYTHONPATH.

One venv per backend, shared by the tests of this module (module-scoped fixture); the weight files
and image folders are made here, in the dev venv (torchvision, keras.applications), and read there.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from freshvenv import TORCH_CPU, fresh_venv, has_module, venv_env

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
BACKENDS = ("jax", "torch")
OTHER = {"jax": "torch", "torch": "jax"}

pytestmark = pytest.mark.slow

# A small Inception with batch norm on 32x32 images (tests/train/test_train_bn.py's SMALL_BN, colour or grey)
SMALL_BN = """
use "{specs}/googlenet.inc"

network small_bn(classes=10, size=32, width=0.25, channels=3) {{
  defaults conv(bias=false, bn=true, bn_momentum=0.9, act=relu)
  input(size, size, channels)
  stem = conv(16, 3, stride=2)
  a = inception(64, 96, 128, 16, 32, 32, width)
  maxpool(3, stride=2, pad=same)
  b = inception(64, 96, 128, 16, 32, 32, width)
  output fc = gap -> dense(classes)
}}
"""


@pytest.fixture(scope="module", params=BACKENDS)
def venv(request):
    """(backend, venv folder): incdsl[jax] or incdsl[torch] (torch's CPU wheel), no TensorFlow."""
    backend = request.param
    path = fresh_venv("jax") if backend == "jax" else fresh_venv("torch", TORCH_CPU)
    assert not has_module(path, "tensorflow"), "the venv must not have TensorFlow"
    assert has_module(path, backend) and has_module(path, "keras")
    assert not has_module(path, OTHER[backend])
    return backend, path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The issue's 3-class folder of JPEGs, scikit-learn's digits and the small BN spec."""
    from PIL import Image
    root = tmp_path_factory.mktemp("nontf")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cat", "dog", "fox")):  # the class's channel bright: learnable
        (root / "three" / name).mkdir(parents=True)
        for i in range(12):
            x = rng.integers(0, 90, size=(60, 70, 3))
            x[..., c] = rng.integers(150, 256, size=(60, 70))
            Image.fromarray(x.astype("uint8")).save(root / "three" / name / f"{i:02d}.jpg", quality=90)
    sys.path.insert(0, str(ROOT / "tools"))
    from digits_folder import write_digits
    write_digits(root / "digits", size=32)
    (root / "small_bn.inc").write_text(SMALL_BN.format(specs=SPECS))
    return root


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """Weight files as users bring them: torchvision googlenet as .pth and .safetensors,
    keras.applications InceptionV3 (headless) as Keras 3 .weights.h5 and legacy .h5 (random
    weights: no download); with the arrays to compare against."""
    root = tmp_path_factory.mktemp("weights")
    import torch
    import torchvision
    from safetensors.torch import save_file
    torch.manual_seed(0)
    sd = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).state_dict()
    torch.save(sd, root / "g.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, root / "g.safetensors")
    np.save(root / "conv1.npy", sd["conv1.conv.weight"].numpy())

    import keras

    from pretrained_files import randomized, save_legacy_h5
    ref = randomized(keras.applications.InceptionV3(weights=None, include_top=False))
    ref.save_weights(root / "v3.weights.h5")
    save_legacy_h5(ref, root / "v3.h5")
    # the stem's first conv; not by name: Keras numbers it conv2d_N after other models in this process
    stem = next(layer for layer in ref.layers if isinstance(layer, keras.layers.Conv2D))
    np.save(root / "v3_conv.npy", np.asarray(stem.kernel))
    return root


def incdsl(venv, cwd, *args, home=None, timeout=1200, **env):
    """Run the venv's `incdsl` program as a user would; returns the CompletedProcess."""
    home = home or cwd / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run([str(venv / "bin" / "incdsl"), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True,
                          env=venv_env(venv, home, **env), timeout=timeout)


def keras_weights(path: Path) -> dict[str, np.ndarray]:
    """Every array of a .keras file's model.weights.h5, by its HDF5 path (read with h5py here)."""
    import io

    import h5py
    out = {}
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj,
                                                                                    h5py.Dataset) else None)
    return out


def test_the_issue_command_trains_then_predict_and_compile_work(venv, files, tmp_path):
    backend, v = venv
    done = incdsl(v, tmp_path, "train", SPECS / "googlenet.inc", "--data", files / "three", "--epochs", 3,
                  "--batch-size", 8, "--set", "width=0.25", "--set", "size=48", "--set", "classes=3",
                  "--set", "aux=false", "-o", "m.keras", KERAS_BACKEND=backend)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Keras {backend}" in done.stdout and "wrote m.keras (epoch 3" in done.stdout
    assert "tensorflow module" not in done.stderr and "\x1b" not in done.stderr + done.stdout
    shown = incdsl(v, tmp_path, "predict", "m.keras", files / "three" / "dog" / "00.jpg", "--json",
                   KERAS_BACKEND=backend)
    assert shown.returncode == 0, shown.stderr
    top = json.loads(shown.stdout)[str(files / "three" / "dog" / "00.jpg")]
    assert sorted(t["class"] for t in top) == ["cat", "dog", "fox"]
    assert abs(sum(t["probability"] for t in top) - 1) < 1e-4
    built = incdsl(v, tmp_path, "compile", SPECS / "googlenet.inc", "--to", "keras", "--set", "width=0.25",
                   "--set", "size=48", "--set", "aux=false", "-o", "g.keras", KERAS_BACKEND=backend)
    assert built.returncode == 0 and "wrote g.keras" in built.stdout, built.stderr


def test_backend_rule_and_version(venv, tmp_path):
    backend, v = venv
    home = tmp_path / "home"
    # neither KERAS_BACKEND nor keras.json: the installed backend, not Keras' missing TensorFlow
    shown = incdsl(v, tmp_path, "--version", home=home)
    assert shown.returncode == 0, shown.stderr
    assert f"Keras backend: {backend} (the first installed of tensorflow, jax, torch" in shown.stdout
    assert "tensorflow not installed" in shown.stdout and "devices: cpu:0" in shown.stdout
    assert "GPUs: none" in shown.stdout
    # compile imports Keras, which writes its default keras.json (backend tensorflow) on first import:
    # that file is Keras' default, not a choice
    first = incdsl(v, tmp_path, "compile", SPECS / "googlenet.inc", "--to", "keras", "--set", "width=0.25",
                   "--set", "size=48", "--set", "aux=false", "-o", "first.keras", home=home)
    assert first.returncode == 0, first.stderr
    written = json.loads((home / ".keras" / "keras.json").read_text())
    assert written["backend"] == "tensorflow"
    again = incdsl(v, tmp_path, "--version", home=home)
    assert f"Keras backend: {backend} (the first" in again.stdout
    # a keras.json that names a backend wins, installed or not
    (home / ".keras" / "keras.json").write_text(json.dumps({**written, "backend": OTHER[backend]}))
    named = incdsl(v, tmp_path, "compile", SPECS / "googlenet.inc", "--to", "keras", "--set", "aux=false",
                   "-o", "x.keras", home=home)
    assert named.returncode == 2
    assert f'"backend": "{OTHER[backend]}" in {home}/.keras/keras.json' in named.stderr
    assert (
        f"pip install 'incdsl[{OTHER[backend]}]'" in named.stderr
        and f"KERAS_BACKEND={backend}" in named.stderr
    )
    assert not (tmp_path / "x.keras").exists()
    # KERAS_BACKEND wins over keras.json
    env_wins = incdsl(v, tmp_path, "--version", home=home, KERAS_BACKEND=backend)
    assert env_wins.returncode == 0 and f"Keras backend: {backend} (KERAS_BACKEND)" in env_wins.stdout


def test_bad_backends_and_strategies_are_usage_errors(venv, files, tmp_path):
    backend, v = venv
    train = ("train", files / "small_bn.inc", "--data", files / "three", "--set", "classes=3", "--epochs", 1,
             "--batch-size", 8, "-o", tmp_path / "out" / "m.keras")
    cases = [({"KERAS_BACKEND": "nonsense"}, (), ["KERAS_BACKEND=nonsense is not a Keras backend",
                                                   f"KERAS_BACKEND={backend}"]),
             ({"KERAS_BACKEND": OTHER[backend]}, (),
              [f"KERAS_BACKEND={OTHER[backend]} names a Keras backend that is "
                                                      f"not installed",
                                                      f"pip install 'incdsl[{OTHER[backend]}]'"])]
    if backend == "torch":  # Keras trains on one device on PyTorch
        cases.append(({"KERAS_BACKEND": backend}, ("--strategy", "mirrored"),
                      ["--strategy mirrored is not available on the torch backend",
                       "it runs on tensorflow or jax"]))
    for env, extra, says in cases:
        done = incdsl(v, tmp_path, *train, *extra, **env)
        assert done.returncode == 2, (env, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "\x1b" not in done.stderr
        assert len(done.stderr.splitlines()) <= 3, done.stderr
        for s in says:
            assert s in done.stderr, (s, done.stderr)
        assert not (tmp_path / "out").exists()  # nothing written


def test_weights_files_from_keras_and_torch(venv, weight_files, tmp_path):
    backend, v = venv
    files = weight_files
    got = {}
    for name in ("g.pth", "g.safetensors"):
        out = tmp_path / f"{name}.keras"
        done = incdsl(v, tmp_path, "compile", SPECS / "googlenet_tv.inc", "--set", "aux=false", "--to",
                      "keras",
                      "--weights", files / name, "-o", out, KERAS_BACKEND=backend)
        assert done.returncode == 0 and "the PyTorch importer" in done.stdout, done.stderr
        got[name] = keras_weights(out)
    kernel = next(
        a for k, a in got[
            "g.pth"].items() if k.startswith("layers/conv2d/") and a.ndim == 4 and a.shape[-1] == 64)
    np.testing.assert_array_equal(kernel, np.load(files / "conv1.npy").transpose(2, 3, 1, 0))  # OIHW -> HWIO
    assert got["g.pth"].keys() == got["g.safetensors"].keys()
    for k in got["g.pth"]:
        np.testing.assert_array_equal(got["g.pth"][k], got["g.safetensors"][k])
    # the written .keras as --weights (a file of the same model)
    again = incdsl(v, tmp_path, "compile", SPECS / "googlenet_tv.inc", "--set", "aux=false", "--to", "keras",
                   "--weights", "g.pth.keras", "-o", "again.keras", KERAS_BACKEND=backend)
    assert again.returncode == 0, again.stderr
    for k, a in keras_weights(tmp_path / "again.keras").items():
        np.testing.assert_array_equal(a, got["g.pth"][k])
    # keras.applications InceptionV3, Keras 3's .weights.h5 and the legacy .h5 of its downloads
    stem = np.load(files / "v3_conv.npy")
    for name in ("v3.weights.h5", "v3.h5"):
        done = incdsl(v, tmp_path, "compile", SPECS / "inception_v3.inc", "--set", "top=false", "--set",
                      "size=75",
                      "--to", "keras", "--weights", files / name, "-o", f"{name}.keras",
                      KERAS_BACKEND=backend)
        assert done.returncode == 0, done.stderr
        first = [a for k, a in keras_weights(tmp_path / f"{name}.keras").items() if a.shape == stem.shape]
        assert any(np.array_equal(a, stem) for a in first), name


def _interrupt_after_first_epoch(v, cwd, args, backend) -> subprocess.CompletedProcess:
    """Start training, send SIGINT (Ctrl-C) once the first epoch's backup is written, wait."""
    (cwd / "home").mkdir(exist_ok=True)
    p = subprocess.Popen([str(v / "bin" / "incdsl"), *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=venv_env(v, cwd / "home", KERAS_BACKEND=backend))
    meta = cwd / "r.backup" / "training_metadata.json"
    deadline = time.time() + 900
    while time.time() < deadline and p.poll() is None:
        try:
            epoch = json.loads(meta.read_text()).get("epoch", 0) if meta.exists() else 0
        except ValueError:  # caught mid-write
            epoch = 0
        if epoch >= 1:
            p.send_signal(signal.SIGINT)
            break
        time.sleep(0.5)
    out, err = p.communicate(timeout=600)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_finetune_freeze_precise_bn_resume_and_mirrored(venv, files, tmp_path):
    backend, v = venv
    spec = files / "small_bn.inc"
    common = ("--data", files / "three", "--set", "classes=3", "--batch-size", 8, "--progress", "epoch")
    init = incdsl(v, tmp_path, "compile", spec, "--set", "classes=3", "--to", "keras", "-o", "init.keras",
                  KERAS_BACKEND=backend)
    assert init.returncode == 0, init.stderr
    # --weights from a .keras, the stem and module a frozen, precise BN at the end
    tuned = incdsl(v, tmp_path, "train", spec, *common, "--epochs", 2, "--weights", "init.keras", "--freeze",
                   "a",
                   "--bn-recalibrate", 2, "-o", "f.keras", KERAS_BACKEND=backend)
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    assert "frozen" in tuned.stdout and "layers recalibrated over 2 training batches" in tuned.stdout, (
        tuned.stdout
    )
    before = keras_weights(tmp_path / "init.keras")
    # the trained file nests the network inside the model that preprocesses raw pixels
    after = {k.replace("layers/functional/", "",
                       1): a for k, a in keras_weights(tmp_path / "f.keras").items()}
    stem = [k for k in before if k.startswith("layers/conv2d/") and k.endswith("vars/0")]
    assert stem and all(np.array_equal(before[k], after[k]) for k in stem)  # frozen: unchanged
    # Ctrl-C after epoch 1, then --resume finishes epochs 2 and 3
    args = ("train", spec, *common, "--epochs", 3, "-o", "r.keras")
    stopped = _interrupt_after_first_epoch(v, tmp_path, args, backend)
    assert stopped.returncode == 130 and not (tmp_path / "r.keras").exists(), stopped.stdout + stopped.stderr
    resumed = incdsl(v, tmp_path, *args, "--resume", KERAS_BACKEND=backend)
    assert resumed.returncode == 0 and "resuming after epoch" in resumed.stdout, (
        resumed.stdout + resumed.stderr
    )
    with open(tmp_path / "r.log.csv") as f:
        assert [line.split(",")[0] for line in f.read().split()[1:]] == ["0", "1", "2"]
    if backend == "jax":  # keras.distribution.DataParallel over two CPU devices
        mirrored = incdsl(v, tmp_path, "train", spec, *common, "--epochs", 1, "--strategy", "mirrored", "-o",
                          "m.keras",
                          KERAS_BACKEND=backend, XLA_FLAGS="--xla_force_host_platform_device_count=2")
        assert mirrored.returncode == 0, mirrored.stdout + mirrored.stderr
        assert "DataParallel, 2 replicas" in mirrored.stdout


# Held-out accuracy of the small BN Inception on the digits (README, "Measured on this machine's CPU"):
# 4 epochs, batch 32, SGD lr 0.05, no flips, the tests/train/test_train_bn.py recipe.
DIGITS_ACCURACY = 0.95


def test_digits_train_to_the_readme_accuracy(venv, files, tmp_path):
    backend, v = venv
    done = incdsl(v, tmp_path, "train", files / "small_bn.inc", "--set", "channels=1", "--data",
                  files / "digits" / "train",
                  "--epochs", 4, "--batch-size", 32, "--lr", 0.05, "--no-augment", "--progress", "off", "-o",
                  "d.keras",
                  KERAS_BACKEND=backend)
    assert done.returncode == 0, done.stdout + done.stderr
    test = sorted((files / "digits" / "test").rglob("*.png"))
    assert len(test) == 360
    shown = incdsl(v, tmp_path, "predict", "d.keras", *test, "--json", "--top", 1, KERAS_BACKEND=backend)
    assert shown.returncode == 0, shown.stderr
    top = json.loads(shown.stdout)
    acc = np.mean([top[str(f)][0]["class"] == f.parent.name for f in test])
    print(f"{backend}: small BN Inception on the digits, 360 held out: {acc:.4f}")
    assert acc >= DIGITS_ACCURACY
