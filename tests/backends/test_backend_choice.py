"""Issue 23, item 3 and its bad input, in-process and quick: the backend rule (KERAS_BACKEND, then a
keras.json that names one, then the first installed of tensorflow, jax, torch), its errors, the
bfloat16 check on GPUs, Keras' ANSI codes stripped from relayed messages, and PyTorch .pth files
read without torch against torch.load itself. The same in real venvs without TensorFlow:
tests/backends/test_backends_without_tf.py."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from incdsl.backends.keras import backend as kb
from incdsl.backends.keras.devices import Device, bf16_unable, check_precision
from incdsl.errors import OptionError, SpecError, clip, shorten, strip_ansi
from incdsl.text import first_line
from incdsl.weights.torch_zip import read_torch_zip


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No KERAS_BACKEND, an empty KERAS_HOME, Keras not yet imported (as far as choose() sees),
    and installed backends as the test says."""
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    have = set()
    monkeypatch.setattr(kb, "installed", lambda name: name in have or name == "numpy")
    return have, tmp_path / "keras.json"


def test_first_installed_backend_when_nothing_names_one(fresh):
    have, _ = fresh
    have.update({"jax", "torch"})
    assert kb.choose() == kb.BackendChoice("jax", "installed")
    have.add("tensorflow")
    assert kb.choose().name == "tensorflow"  # Keras' own default comes first
    have.clear()
    have.add("torch")
    assert kb.choose().name == "torch"


def test_keras_json_keras_wrote_itself_is_not_a_choice(fresh):
    have, path = fresh
    have.add("jax")
    path.write_text(json.dumps(kb.KERAS_DEFAULT_JSON))
    assert kb.choose() == kb.BackendChoice("jax", "installed")
    path.write_text(json.dumps({**kb.KERAS_DEFAULT_JSON, "backend": "jax", "floatx": "float32"}))
    assert kb.choose() == kb.BackendChoice("jax", str(path))
    path.write_text("{not json")
    assert kb.choose().source == "installed"


def test_keras_backend_wins_over_keras_json(fresh, monkeypatch):
    have, path = fresh
    have.update({"jax", "torch"})
    path.write_text(json.dumps({**kb.KERAS_DEFAULT_JSON, "backend": "jax"}))
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert kb.choose() == kb.BackendChoice("torch", "KERAS_BACKEND")


def test_bad_and_missing_backends_name_what_to_do(fresh, monkeypatch):
    have, path = fresh
    have.add("jax")
    monkeypatch.setenv("KERAS_BACKEND", "nonsense")
    with pytest.raises(kb.BackendError,
                       match=r"KERAS_BACKEND=nonsense is not a Keras backend.*set KERAS_BACKEND=jax"):
        kb.choose()
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(kb.BackendError,
                       match=r"not installed \(no module torch\): pip install 'incdsl\[torch\]', "
                                              r"or set KERAS_BACKEND=jax"):
        kb.choose()
    monkeypatch.delenv("KERAS_BACKEND")
    path.write_text(json.dumps({"backend": "tensorflow"}))  # a user's own file: a choice
    with pytest.raises(kb.BackendError,
                       match=r"\"backend\": \"tensorflow\" in .*keras.json names a Keras backend "
                                              r"that is not installed .*pip install 'incdsl\[tf\]'"):
        kb.choose()
    path.unlink()
    have.clear()
    with pytest.raises(kb.BackendError, match=r"no Keras backend is installed .*incdsl\[jax\]"):
        kb.choose()


def test_apply_sets_keras_backend_for_keras_to_read(fresh, monkeypatch):
    have, _ = fresh
    have.add("torch")
    assert kb.apply().name == "torch"
    import os
    assert os.environ["KERAS_BACKEND"] == "torch"


def test_mixed_bfloat16_needs_compute_capability_8():
    gpus = [Device("cpu", 0, "CPU"), Device("gpu", 0, "Tesla V100-SXM2-16GB", 16 * 2**30, (7, 0)),
            Device("gpu", 1, "NVIDIA A100", 40 * 2**30, (8, 0))]
    assert bf16_unable(gpus) == [gpus[1]]
    assert "16.0 GiB, compute capability 7.0" in gpus[1].describe()
    import incdsl.backends.keras.devices as kd
    original = kd.devices
    try:
        kd.devices = lambda backend: gpus
        with pytest.raises(OptionError) as e:
            check_precision("mixed_bfloat16", "jax")
        assert "precision mixed_bfloat16 needs a GPU of compute capability 8.0" in str(e.value)
        assert "Tesla V100" in str(e.value) and "mixed_float16" in str(e.value)
        check_precision("mixed_float16", "jax")  # float16 is what such a GPU offers
        kd.devices = lambda backend: [gpus[0], gpus[2]]
        check_precision("mixed_bfloat16", "jax")
    finally:
        kd.devices = original


def test_keras_ansi_codes_never_reach_the_user():
    keras_says = (
        "This requires the \x1b[1mtensorflow\x1b[0m module. You can install it via `pip install tensorflow`"
    )
    for out in (strip_ansi(keras_says), shorten(keras_says), clip(keras_says),
                first_line(ImportError(keras_says))):
        assert "\x1b" not in out and "␛" not in out and "the tensorflow module" in out


@pytest.mark.slow  # imports torch
def test_pth_read_without_torch_equals_torch_load(tmp_path):
    import torch  # the dev venv has it: a missing torch fails the test
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {"t": base.t(), "view": base[1:, 2:], "bf16": torch.randn(3, 5).bfloat16(),
             "half": torch.randn(2).half(),
             "long": torch.tensor([1, 2]), "bool": torch.tensor([True, False]),
             "double": torch.randn(2, 2).double(),
             "param": torch.nn.Parameter(torch.randn(2, 3)), "scalar": torch.tensor(3.5)}
    torch.save(state, tmp_path / "s.pth")
    got = read_torch_zip(tmp_path / "s.pth")
    assert list(got) == list(state)
    for k, v in state.items():
        want = v.detach().float().numpy() if v.is_floating_point() else v.numpy()
        assert got[k].dtype == want.dtype and got[k].shape == want.shape, k
        np.testing.assert_array_equal(got[k], want)


@pytest.mark.slow  # imports torch
def test_pth_holding_a_pickled_module_is_refused_without_running_it(tmp_path):
    import torch
    torch.save(torch.nn.Linear(2, 3), tmp_path / "whole.pth")
    with pytest.raises(SpecError,
                       match=r"holds pickled Python objects, not only tensors \(it holds a torch.nn"):
        read_torch_zip(tmp_path / "whole.pth")
    (tmp_path / "junk.pth").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(SpecError, match="not a torch.save zip archive"):
        read_torch_zip(tmp_path / "junk.pth")
