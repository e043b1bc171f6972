"""Issue 13 review: torch files as new users bring them. A DataParallel state_dict (`module.`
prefix) into torchvision googlenet with aux heads, every head against torch; a file missing a
batch-norm tensor, one with an extra tensor in a known module, a random binary named .pth and a
pickled whole model: each a one-screen error that names the module and never advises
weights_only=False."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torchvision

import incdsl
from incdsl.errors import SpecError
from incdsl.weights.torch import load_torch_weights

from conftest import SPECS
from test_torch_weights import _torch_heads, keras_heads, ours_vs_torch, randomize_bn


def _googlenet():
    torch.manual_seed(0)
    return randomize_bn(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True))


@pytest.fixture(scope="module")
def googlenet_sd():
    """torchvision's GoogLeNet (aux heads, random BN statistics), built once for the file (0.7 s)."""
    return _googlenet().state_dict()


# builds torchvision's GoogLeNet and incdsl's in Keras: ~4 s of CPU (issue 29's quick budget)
@pytest.mark.slow
def test_data_parallel_googlenet_loads_every_head_like_torch(tmp_path):
    model = _googlenet()
    path = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # what DataParallel saves
    net = incdsl.load(SPECS / "googlenet_tv.inc", size=64)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    want = _torch_heads(model, x, {"aux1": ("inception4a", "aux1"), "aux2": ("inception4d", "aux2")})
    want["fc"] = want.pop("main")
    got = keras_heads(net, path, x)
    assert set(want) <= set(got)
    diff = ours_vs_torch({k: got[k] for k in want}, want)
    assert max(diff.values()) < 1e-5, diff


def test_same_shaped_heads_that_names_cannot_tell_apart_are_refused(googlenet_sd):
    """The classifiers fc and aux1.fc2 are both 1024 -> classes: without names to pair them by
    (here torch's blocks are renamed), taking the first would swap them silently."""
    net = incdsl.load(SPECS / "googlenet_tv.inc", size=64)
    sd = {k: v.numpy() for k, v in googlenet_sd.items()}
    renamed = {re.sub(r"^(fc|aux1)\.", lambda m: {"fc": "head.", "aux1": "side."}[m.group(1)], k): v
               for k, v in sd.items()}
    from incdsl.weights.torch import torch_weights
    with pytest.raises(SpecError,
                       match=r"layer 'fc' fits 2 modules .* 'head', 'side.fc2'|layer 'fc' fits 2 modules"):
        torch_weights(net, renamed)


def _error(path) -> SpecError:
    net = incdsl.load(SPECS / "googlenet_tv.inc", size=64)
    with pytest.raises(SpecError) as e:
        load_torch_weights(net, path)
    text = str(e.value) + str(e.value.hint or "")
    assert "weights_only" not in text and "internal error" not in text
    return e.value


def test_missing_batch_norm_tensor_names_the_module(googlenet_sd, tmp_path):
    sd = dict(googlenet_sd)
    del sd["conv1.bn.running_var"]
    torch.save(sd, tmp_path / "g.pth")
    err = _error(tmp_path / "g.pth")
    assert "'conv1.bn'" in str(err) and "no running_var" in str(err), err


def test_extra_tensor_in_a_known_module_is_reported(googlenet_sd, tmp_path):
    sd = {**googlenet_sd, "inception3a.branch1.conv.extra": torch.zeros(3)}
    torch.save(sd, tmp_path / "g.pth")
    err = _error(tmp_path / "g.pth")
    assert "'inception3a.branch1.conv'" in str(err) and "'extra' (3)" in str(err), err


def test_random_binary_named_pth_is_not_a_pytorch_file(tmp_path):
    path = tmp_path / "random.pth"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert path.read_bytes()[:1] != b"\x80"  # not a pickle by chance
    err = _error(path)
    assert "is not a PyTorch file" in str(err) and "not the model" not in str(err) + err.hint, err


def test_whole_pickled_model_is_told_apart_from_a_non_torch_file(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 3), path)
    err = _error(path)
    assert "holds pickled Python objects" in str(err) and "torch.nn.modules.linear.Linear" in str(err), err
    assert "model.state_dict()" in err.hint


@pytest.mark.slow
def test_cli_bad_torch_files_are_one_screen(googlenet_sd, tmp_path):
    """Through `incdsl compile --weights`: exit 1, no traceback, a short error naming the cause."""
    import subprocess
    import sys

    from conftest import ROOT
    sd = dict(googlenet_sd)
    del sd["conv1.bn.running_var"]
    torch.save(sd, tmp_path / "missing.pth")
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).integers(0, 256, 4096,
                                                                            dtype=np.uint8).tobytes())
    for name, says in (("missing.pth", "'conv1.bn' (batch norm) has no running_var"),
                       ("random.pth", "is not a PyTorch file")):
        out = tmp_path / "g.keras"
        proc = subprocess.run([sys.executable, "-m", "incdsl", "compile", str(SPECS / "googlenet_tv.inc"),
                               "--to", "keras",
                               "--set", "size=64", "--weights", str(tmp_path / name), "-o", str(out)],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and says in proc.stderr, proc.stderr
        assert "internal error" not in proc.stderr and "weights_only" not in proc.stderr, proc.stderr
        assert len(proc.stderr.splitlines()) < 12 and not out.exists(), proc.stderr


def test_any_single_wrapper_prefix_pairs_heads_by_name(googlenet_sd):
    """A Lightning-style `model.` prefix (not a DataParallel one): the heads still pair by name."""
    from incdsl.weights.torch import torch_weights
    net = incdsl.load(SPECS / "googlenet_tv.inc", size=64)
    sd = {k: v.numpy() for k, v in googlenet_sd.items()}
    got = torch_weights(net, {f"model.{k}": v for k, v in sd.items()})
    np.testing.assert_array_equal(got["fc"]["kernel"], sd["fc.weight"].T)
    np.testing.assert_array_equal(got["aux1/fc2"]["kernel"] if "aux1/fc2" in got else
                                  next(w["kernel"] for n, w in got.items() if n.startswith("aux1/") and
                                       w["kernel"].shape == sd["aux1.fc2.weight"].T.shape),
                                  sd["aux1.fc2.weight"].T)
