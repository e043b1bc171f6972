"""Issue 13, item 3: PyTorch weights (.pth, .pt, .safetensors) into our specs, against torch itself.

The small cases (fast) cover the layouts: conv OIHW -> HWIO with batch norm, a depthwise conv, a
linear after a flatten (torch flattens C,H,W, we H,W,C), heads registered in another order than
ours, safetensors read with torch blocked, and the bad inputs. The full-size cases (slow) are the
issue's: torchvision googlenet (aux heads, transform_input) and inception_v3 (aux), timm
inception_v4, random weights and random batch-norm statistics, batch 1, every head to 1e-5.
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import incdsl
from incdsl.backends.keras.build import build_model, load_weights_file
from incdsl.errors import SpecError

from conftest import ROOT, SPECS

SMALL = """network small(classes=3) {
  defaults conv(bias=false, bn=true, act=relu)
  input(8, 8, 3)
  stem = conv(4, 3, stride=2, pad=1)
  dw = dwconv(3, multiplier=2, pad=1, bias=true)
  output out = flatten -> dropout(0.5) -> dense(classes)
  train_output side(loss_weight=0.3) = stem -> gap -> dense(2)
}
"""


class Small(nn.Module):
    """SMALL in torch; `side` registered before `out`, unlike the spec."""

    def __init__(self, classes=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4, eps=1e-3))
        self.dw = nn.Conv2d(4, 8, 3, 1, 1, groups=4)
        self.side = nn.Linear(4, 2)
        self.out = nn.Linear(128, classes)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        return self.out(torch.flatten(self.dw(x), 1)), self.side(x.mean((2, 3)))


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random gamma, beta, running mean and variance: fresh batch norms are the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
    return model.eval()


def ours_vs_torch(ours: dict, theirs: dict) -> dict[str, float]:
    """max |ours - torch| / max |torch| per head."""
    return {k: float(np.abs(ours[k] - theirs[k]).max() / np.abs(theirs[k]).max()) for k in theirs}


def keras_heads(net, path, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
    model = build_model(net)
    load_weights_file(model, net, path)  # what `incdsl compile --weights` does
    out = model(x_nchw.transpose(0, 2, 3, 1), training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return {h.name: np.asarray(o, np.float64) for h, o in zip(net.heads, out)}


@pytest.fixture
def small(spec_file, tmp_path):
    torch.manual_seed(0)
    model = randomize_bn(Small())
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        out, side = model(x)
    pth = tmp_path / "small.pth"
    torch.save(model.state_dict(), pth)
    return incdsl.load(spec_file(SMALL)), model, pth, x.numpy(), {"out": out.numpy(), "side": side.numpy()}


def test_small_pth_matches_torch_every_head(small):
    net, _model, pth, x, want = small
    diff = ours_vs_torch(keras_heads(net, pth, x), want)
    assert max(diff.values()) < 1e-5, diff


def test_safetensors_read_without_torch(small, tmp_path):
    from safetensors.torch import save_file
    net, model, _pth, x, want = small
    st = tmp_path / "small.safetensors"
    save_file(model.state_dict(), str(st))
    code = ("import sys; sys.modules['torch'] = None\n"  # importing torch now fails
            "import numpy as np, incdsl\nfrom incdsl.weights.torch import load_torch_weights\n"
            "w = load_torch_weights(incdsl.load(sys.argv[1]), sys.argv[2])\n"
            "np.savez(sys.argv[3], **{f'{k}|{p}': a for k, ps in w.items() for p, a in ps.items()})\n")
    spec = tmp_path / "s.inc"
    spec.write_text(SMALL)
    proc = subprocess.run([sys.executable, "-c", code, str(spec), str(st),
                           str(tmp_path / "w.npz")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    flat = np.load(tmp_path / "w.npz")
    weights = {}
    for k in flat.files:
        node, p = k.split("|")
        weights.setdefault(node, {})[p] = flat[k]
    out = build_model(net, weights=weights)(x.transpose(0, 2, 3, 1), training=False)
    diff = ours_vs_torch({"out": np.asarray(out[0]), "side": np.asarray(out[1])}, want)
    assert max(diff.values()) < 1e-5, diff


def test_torch_files_that_do_not_fit_name_the_first_mismatch(small, tmp_path):
    net, model, _pth, _x, _want = small
    sd = model.state_dict()
    cases = {
        "missing": ({k: v for k, v in sd.items() if not k.startswith("side.")},
                    "fits layer 'side' (dense: kernel 4x2, bias 2, Keras layout); the file has nothing left "
                    "for it"),
        "extra": ({**sd, "extra.weight": torch.zeros(5, 5)}, "network small has no layer for: extra"),
        "other classes": ({**sd, "out.weight": torch.zeros(7, 128), "out.bias": torch.zeros(7)},
                          "fits layer 'out' (dense: kernel 128x3, bias 3, Keras layout); the next unused is "
                          "'out' (weight 7x128, bias 7)"),
    }
    for what, (state, message) in cases.items():
        path = tmp_path / f"{what}.pth"
        torch.save(state, path)
        with pytest.raises(SpecError, match=re.escape(message)) as e:
            load_weights_file(build_model(net), net, path)
        assert e.value.span is not None or what == "extra", what
    torch.save(model, tmp_path / "pickled.pt")  # a whole module: weights_only refuses to unpickle it
    with pytest.raises(SpecError, match="holds pickled Python objects, not only tensors"):
        load_weights_file(build_model(net), net, tmp_path / "pickled.pt")


@pytest.mark.slow
def test_cli_torch_weights_wrong_spec_is_one_screen(small, tmp_path):
    _net, _model, pth, _x, _want = small
    out = tmp_path / "g.keras"
    proc = subprocess.run([sys.executable, "-m", "incdsl", "compile", str(SPECS / "googlenet_tv.inc"), "--to",
                           "keras",
                           "--weights", str(pth), "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "googlenet_tv.inc:" in proc.stderr and "error:" in proc.stderr and not out.exists()
    assert len(proc.stderr.splitlines()) < 12, proc.stderr


# --- the references at full size ---------------------------------------------------------------

def _torch_heads(model, x, aux: dict[str, tuple[str, str]]) -> dict[str, np.ndarray]:
    """Every head of a torch model in eval mode: the main output, and each aux head (which torch
    runs in training only) applied in eval mode to the block output a hook caught."""
    caught = {}
    hooks = [getattr(model, block).register_forward_hook(lambda m, i, o, b=block: caught.__setitem__(b, o))
             for block, _ in aux.values()]
    with torch.no_grad():
        out = model(torch.from_numpy(x))
        heads = {"main": out.numpy()}
        for name, (block, module) in aux.items():
            heads[name] = getattr(model, module)(caught[block]).numpy()
    for h in hooks:
        h.remove()
    return heads


# name: (spec, overrides, builder, file suffix, {aux head: (block it reads, module)}, main head)
REFERENCES = {
    "googlenet": ("googlenet_tv", {"aux": True, "transform_input": True},
                  lambda: __import__("torchvision").models.googlenet(weights=None, aux_logits=True,
                                                                     transform_input=True,
                                                                     init_weights=False),
                  ".pth", {"aux1": ("inception4a", "aux1"), "aux2": ("inception4d", "aux2")}, "fc"),
    "inception_v3": ("inception_v3_tv", {"aux": True},
                     lambda: __import__("torchvision").models.inception_v3(weights=None, aux_logits=True,
                                                                           init_weights=False),
                     ".safetensors", {"AuxLogits": ("Mixed_6e", "AuxLogits")}, "fc"),
    "inception_v4": ("inception_v4", {},
                     lambda: __import__("timm").create_model("inception_v4", pretrained=False),
                     ".pt", {}, None),
}


def _save(model, path):
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_full_size_torch_weights_give_torch_outputs_on_every_head(name, tmp_path):
    spec, overrides, build, suffix, aux, main = REFERENCES[name]
    torch.manual_seed(0)
    model = randomize_bn(build())
    net = incdsl.load(SPECS / f"{spec}.inc", **overrides)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, *net.input_shape[:2])).astype(np.float32)
    want = _torch_heads(model, x, aux)
    main = main or net.heads[0].name
    want[main] = want.pop("main")
    path = tmp_path / f"{name}{suffix}"
    _save(model, path)
    del model
    got = keras_heads(net, path, x)
    assert set(got) == set(want)
    diff = ours_vs_torch(got, want)
    assert max(diff.values()) < 1e-5, diff
    assert min(float(np.std(v)) for v in want.values()) > 1e-3  # not a degenerate comparison


@pytest.mark.slow
def test_googlenet_tv_with_aux_runs_at_32_to_56_like_torchvision(tmp_path):
    """Item 8's consequence: the aux heads pool 2x2 .. 4x4 maps up to 4x4, as torchvision does."""
    import torchvision
    torch.manual_seed(0)
    model = randomize_bn(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False))
    path = tmp_path / "g.pth"
    torch.save(model.state_dict(), path)
    for size in (32, 56):
        x = np.random.default_rng(size).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        want = _torch_heads(model, x, {"aux1": ("inception4a", "aux1"), "aux2": ("inception4d", "aux2")})
        want["fc"] = want.pop("main")
        diff = ours_vs_torch(keras_heads(incdsl.load(SPECS / "googlenet_tv.inc", size=size), path, x), want)
        assert max(diff.values()) < 1e-5, (size, diff)
