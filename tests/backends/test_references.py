"""The reference specs against the references themselves, never against our own numbers.

- keras.applications InceptionV3, InceptionResNetV2 and Xception (weights=None, include_top=True,
  classes=1000, 299x299): total, trainable and non-trainable params; the output shape after every
  block; and the same outputs once a keras.applications weights file is imported into our model
  (incdsl/backends/keras/apps.py).
- torchvision googlenet and inception_v3 (aux_logits True and False, init_weights=False) and timm
  inception_v4: trainable params equal sum(p.numel()) of the real model, and MACs equal a count
  taken from the real model with forward hooks on every Conv2d and Linear:
      conv:   MACs = output elements (per image) * in_channels / groups * kh * kw
      linear: MACs = in_features * out_features
  once in eval mode (the inference network) and, with aux heads, once in train mode (all heads),
  on the meta device (shapes only, no arithmetic). Then the same outputs: the torch model's weights
  (random, with random batch-norm statistics) copied into our Keras model, in module order, give
  its logits to a relative 1e-5 (small inputs, to stay fast).
  All of it runs in a subprocess that imports torch before Keras: importing torch after TensorFlow
  has built a model kills the process here (segfault), and other test modules in the same pytest
  worker may have built Keras models first.
- the papers: GoogLeNet's Table 1, BN-Inception's Figure 5, Inception-ResNet-v1's figures.

Each reference is built once: one test per keras.applications model (its builder is cached by
incdsl.backends.keras.apps.reference_model), one subprocess for all the torch models.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import incdsl

# not conftest's SPECS: this file also runs as a script (--torch-figures), where tests/ is not on the path
SPECS = Path(__file__).resolve().parents[2] / "specs"


def _blocks(net) -> dict[str, tuple]:
    return {b.name: tuple(net.shapes[b.output]) for b in net.graph.blocks}


def _shape(net, name) -> tuple:
    """A block's output shape, or a layer's."""
    return _blocks(net).get(name) or tuple(net.shapes[name])


# --- keras.applications -------------------------------------------------------------------------

# our block (or layer) -> the keras layer whose output must have the same shape
KERAS_BLOCKS = {
    # keras names each block's concatenation mixed0 .. mixed10
    "inception_v3": {f"mixed{i}": f"mixed{i}" for i in range(11)},
    # keras names the stem block, the reductions and each residual block's final relu
    # (block35_1_ac ...); the last block8 has no relu, and its sum is unnamed: its up-projection
    # conv block8_10_conv has the sum's shape. conv_7b ends in conv_7b_ac.
    "inception_resnet_v2": {
        "mixed_5b": "mixed_5b", "mixed_6a": "mixed_6a", "mixed_7a": "mixed_7a",
        **{f"block35_{i}": f"block35_{i}_ac" for i in range(1, 11)},
        **{f"block17_{i}": f"block17_{i}_ac" for i in range(1, 21)},
        **{f"block8_{i}": f"block8_{i}_ac" for i in range(1, 10)},
        "block8_10": "block8_10_conv", "conv_7b": "conv_7b_ac",
    },
    # keras leaves Xception's residual sums unnamed (add, add_1, ...): each block is compared with
    # the named layer that feeds its sum, which has the sum's shape: blockN_pool in the entry and
    # exit flows, blockN_sepconv3_bn in the middle flow (our middle_1..8 are keras' block5..12).
    "xception": {
        "block1_conv1": "block1_conv1_act", "block1_conv2": "block1_conv2_act",
        "block2": "block2_pool", "block3": "block3_pool", "block4": "block4_pool",
        **{f"middle_{i}": f"block{i + 4}_sepconv3_bn" for i in range(1, 9)},
        "block13": "block13_pool", "block14_sepconv2": "block14_sepconv2_act",
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(KERAS_BLOCKS))
def test_keras_application(spec, tmp_path):
    """Params, block shapes, then outputs with keras' weights imported. One test per reference, so
    that pytest-xdist never builds a reference twice (Inception-ResNet-v2 takes seconds)."""
    import keras

    from incdsl.backends.keras.apps import load_applications_weights, reference_model
    from incdsl.backends.keras.build import build_model
    from incdsl.errors import SpecError

    net = incdsl.load(SPECS / f"{spec}.inc")
    ref = reference_model(net)  # keras.applications.X(weights=None, include_top=True, classes=1000)
    assert ref.name.lower().replace("_", "") == spec.replace("_", "")  # the right reference
    total = net.total()
    assert total.params == ref.count_params()
    assert total.trainable == sum(int(np.prod(w.shape)) for w in ref.trainable_weights)
    assert total.non_trainable == sum(int(np.prod(w.shape)) for w in ref.non_trainable_weights)
    assert net.heads[0].shape == tuple(ref.output.shape[1:])
    for ours, theirs in KERAS_BLOCKS[spec].items():
        assert _shape(net, ours) == tuple(ref.get_layer(theirs).output.shape[1:]), (ours, theirs)

    # weights: keras' fresh batch norms are the identity, so give them statistics worth copying
    rng = np.random.default_rng(0)
    for layer in ref.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.2, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape).astype("float32"))
    path = tmp_path / f"{spec}.weights.h5"
    ref.save_weights(path)
    x = rng.uniform(-1, 1, (2, *net.input_shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(ref(x, training=False))
    for w in ref.weights:  # the importer loads into this same (cached) reference: the file alone
        w.assign(np.zeros(w.shape, "float32"))  # must bring the weights back

    ours = build_model(net, inference=True)
    load_applications_weights(ours, net, path)
    got = keras.ops.convert_to_numpy(ours(x, training=False))
    # both end in softmax: compare log-probabilities, i.e. the logits up to a constant per image
    assert np.log(expected).std(axis=1).min() > 1e-3  # the logits differ between classes
    np.testing.assert_allclose(np.log(got), np.log(expected), atol=1e-5, rtol=0)

    bad = tmp_path / "bad.h5"
    bad.write_text("not weights")
    with pytest.raises(SpecError, match="cannot read"):
        load_applications_weights(ours, net, bad)


def test_keras_applications_importer_refuses_other_networks(tmp_path):
    from incdsl.backends.keras.apps import reference_model
    from incdsl.errors import SpecError

    with pytest.raises(SpecError, match="no keras.applications counterpart"):
        reference_model(incdsl.load(SPECS / "inception_v4.inc"))


# --- torchvision and timm -------------------------------------------------------------------------

# name -> (spec, overrides, torch constructor, input side)
TORCH = {
    "googlenet_aux": ("googlenet_tv", {"aux": True}, "torchvision.googlenet(aux_logits=True)", 224),
    "googlenet": ("googlenet_tv", {"aux": False}, "torchvision.googlenet(aux_logits=False)", 224),
    "inception_v3_aux": ("inception_v3_tv", {"aux": True}, "torchvision.inception_v3(aux_logits=True)", 299),
    "inception_v3": ("inception_v3_tv", {"aux": False}, "torchvision.inception_v3(aux_logits=False)", 299),
    "inception_v4": ("inception_v4", {}, "timm.inception_v4", 299),
}


def _torch_figures() -> dict:
    """{name: {params, macs_eval, macs_train}} of the real torch models (run in a subprocess)."""
    import timm
    import torch
    import torchvision

    def build(name):
        if name.startswith("googlenet"):
            return torchvision.models.googlenet(weights=None, aux_logits=name.endswith("_aux"),
                                                init_weights=False)
        if name.startswith("inception_v3"):
            return torchvision.models.inception_v3(weights=None, aux_logits=name.endswith("_aux"),
                                                   init_weights=False)
        return timm.create_model("inception_v4", pretrained=False)

    def macs(model, size, train):
        total = [0]

        def hook(m, inputs, out):
            if isinstance(m, torch.nn.Conv2d):
                kh, kw = m.kernel_size
                total[0] += out.shape[1:].numel() * (m.in_channels // m.groups) * kh * kw
            else:
                total[0] += m.in_features * m.out_features

        hooks = [m.register_forward_hook(hook) for m in model.modules()
                 if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        model.train(train)
        with torch.no_grad():
            model(torch.empty(2, 3, size, size))  # 2 images: batch norm trains on more than one value
        for h in hooks:
            h.remove()
        return total[0]

    out = {}
    with torch.device("meta"):
        for name, (_spec, _over, _what, size) in TORCH.items():
            model = build(name)
            out[name] = {"params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                         "macs_eval": macs(model, size, False), "macs_train": macs(model, size, True)}
    return {"figures": out, "outputs": _torch_outputs(build)}


# inference models whose outputs are compared with torch's: name -> input side (small, for speed)
TORCH_OUTPUTS = {"googlenet": 96, "inception_v3": 107, "inception_v4": 107}


def _torch_outputs(build) -> dict:
    """{name: (max |ours - torch| / max |torch|, std of torch's logits)} with torch's weights in ours."""
    import keras
    import torch

    from incdsl.backends.keras.build import build_model
    from incdsl.weights.arrays import weight_shapes

    torch.manual_seed(0)
    out = {}
    for name, size in TORCH_OUTPUTS.items():
        spec, overrides, _what, _size = TORCH[name]
        net = incdsl.load(SPECS / f"{spec}.inc", size=size, **overrides)
        model = build(name).eval()
        for m in model.modules():  # fresh batch norms are the identity
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        # torch registers modules in our definition order: pair them one by one
        mods = [m for m in model.modules() if isinstance(m,
                                                         (torch.nn.Conv2d, torch.nn.BatchNorm2d,
                                                          torch.nn.Linear))]
        weights, i = {}, 0
        for node, layer in net.layers.items():
            if not weight_shapes(net, node):
                continue
            m, i = mods[i], i + 1
            w = m.weight.detach().numpy()
            arrays = {"kernel": w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T}  # OIHW -> HWIO
            if m.bias is not None:
                arrays["bias"] = m.bias.detach().numpy()
            if layer.attrs.get("bn"):
                bn, i = mods[i], i + 1
                arrays.update(gamma=bn.weight.detach().numpy(), beta=bn.bias.detach().numpy(),
                              moving_mean=bn.running_mean.numpy(), moving_variance=bn.running_var.numpy())
            weights[node] = arrays
        assert i == len(mods), f"{name}: {len(mods) - i} torch layers left over"
        x = torch.rand(2, 3, size, size) * 2 - 1
        with torch.no_grad():
            ref = model(x).numpy()
        ours = build_model(net, inference=True, weights=weights)  # to_keras checks every shape
        got = keras.ops.convert_to_numpy(ours(x.permute(0, 2, 3, 1).numpy(), training=False))
        out[name] = (float(np.abs(got - ref).max() / np.abs(ref).max()), float(ref.std()))
    return out


@pytest.mark.slow
def test_torch_references_params_and_macs():
    """All of them in one test and one subprocess (importing torch takes seconds)."""
    proc = subprocess.run([sys.executable, __file__, "--torch-figures"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    figures = result["figures"]
    wrong = []
    for name, (spec, overrides, what, size) in TORCH.items():
        net = incdsl.load(SPECS / f"{spec}.inc", **overrides)
        assert net.input_shape == (size, size, 3)
        ours = {"params": net.total().trainable, "macs_eval": net.total(inference=True).macs,
                "macs_train": net.total().macs}  # macs_train: every head, aux ones included
        if ours != figures[name]:
            wrong.append(f"{spec} {overrides} vs {what}: ours {ours}, theirs {figures[name]}")
    for name, (rel_diff, std) in result["outputs"].items():
        if not (rel_diff < 1e-5 and std > 1e-3):
            wrong.append(
                f"{name}: outputs differ from torch's by {rel_diff:.2e} (relative; torch's std {std:.2e})")
    assert set(result["outputs"]) == set(TORCH_OUTPUTS)
    assert not wrong, "\n".join(wrong)


# --- GoogLeNet, Table 1 of Szegedy et al. 2014 ------------------------------------------------------

# row: (output size, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, params K, ops M)
GOOGLENET_TABLE1 = {
    "inception3a": ((28, 28, 256), 64, 96, 128, 16, 32, 32, 159, 128),
    "inception3b": ((28, 28, 480), 128, 128, 192, 32, 96, 64, 380, 304),
    "inception4a": ((14, 14, 512), 192, 96, 208, 16, 48, 64, 364, 73),
    "inception4b": ((14, 14, 512), 160, 112, 224, 24, 64, 64, 437, 88),
    "inception4c": ((14, 14, 512), 128, 128, 256, 24, 64, 64, 463, 100),
    "inception4d": ((14, 14, 528), 112, 144, 288, 32, 64, 64, 580, 119),
    "inception4e": ((14, 14, 832), 256, 160, 320, 32, 128, 128, 840, 170),
    "inception5a": ((7, 7, 832), 256, 160, 320, 32, 128, 128, 1072, 54),
    "inception5b": ((7, 7, 1024), 384, 192, 384, 48, 128, 128, 1388, 71),
}
# Rows whose params (and for 5a ops) disagree with the table's own channel columns. 4c: the
# columns give 509,440 weights, and its ops column (100M) agrees with them (x 14 x 14), not with
# 463K (91M). 5a: the columns are 4e's on an 832-deep input, 1,042,432 weights, 51M MACs; the
# table's 1072K and 54M agree with each other but not with its columns. (conv1 is googlenet.inc's
# quirk: 2.7K/34M for a 7x7x3x64 conv.)
TABLE1_PARAMS_OFF = {"inception4c", "inception5a"}
TABLE1_OPS_OFF = {"inception5a"}


def _weights_and_macs(net, prefixes):
    """Conv and dense weights without biases (Table 1 leaves biases out) and MACs."""
    weights = macs = 0
    for name, layer in net.layers.items():
        if layer.op in ("conv", "dense") and any(name == p or name.startswith(p + "/") for p in prefixes):
            out = layer.attrs["filters"] if layer.op == "conv" else layer.attrs["units"]
            weights += net.counts[name].trainable - (out if layer.attrs["bias"] else 0)
            macs += net.counts[name].macs
    return weights, macs


def _near(ours_k, table_k, rel):
    return abs(ours_k - table_k) <= rel * table_k


def test_googlenet_matches_table1():
    net = incdsl.load(SPECS / "googlenet.inc")
    blocks = _blocks(net)
    for block, (shape, c1, c3r, c3, c5r, c5, pp, params_k, ops_m) in GOOGLENET_TABLE1.items():
        assert blocks[block] == shape, block
        filters = [net.layers[f"{block}/{b}"].attrs["filters"]
                   for b in ("b1/conv_1", "b2/conv_1", "b2/conv_2", "b3/conv_1", "b3/conv_2", "b4/conv_1")]
        assert filters == [c1, c3r, c3, c5r, c5, pp], block
        weights, macs = _weights_and_macs(net, [block])
        # the table's K is 1024 (its linear row: 1024 x 1000 = 1000K; conv2: 114,688 = 112K)
        if block not in TABLE1_PARAMS_OFF:
            assert _near(weights / 1024, params_k, 0.02), (block, weights / 1024, params_k)
        else:
            assert not _near(weights / 1024, params_k, 0.02), f"{block} now matches Table 1: update the note"
        if block not in TABLE1_OPS_OFF:
            assert abs(macs / 1e6 - ops_m) < 1, (block, macs / 1e6, ops_m)
    # the other rows with figures: conv 3x3/1 (with its 1x1 reduce) and the linear layer
    weights, macs = _weights_and_macs(net, ["conv2_reduce", "conv2"])
    assert round(weights / 1024) == 112 and round(macs / 1e6) == 360
    weights, macs = _weights_and_macs(net, ["predictions"])
    assert round(weights / 1024) == 1000 and round(macs / 1e6) == 1
    assert _shape(net, "pool4") == (7, 7, 832)


# --- BN-Inception, Figure 5 of Ioffe & Szegedy 2015 -------------------------------------------------

# row: (output size, #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool, proj)
# (3c and 4e: stride 2, no 1x1 branch, "max + pass through")
BN_FIGURE5 = {
    "inception3a": ((28, 28, 256), 64, 64, 64, 64, 96, "avg", 32),
    "inception3b": ((28, 28, 320), 64, 64, 96, 64, 96, "avg", 64),
    "inception3c": ((14, 14, 576), 0, 128, 160, 64, 96, "max", None),
    "inception4a": ((14, 14, 576), 224, 64, 96, 96, 128, "avg", 128),
    "inception4b": ((14, 14, 576), 192, 96, 128, 96, 128, "avg", 128),
    "inception4c": ((14, 14, 576), 160, 128, 160, 128, 160, "avg", 128),
    "inception4d": ((14, 14, 576), 96, 128, 192, 160, 192, "avg", 128),
    "inception4e": ((7, 7, 1024), 0, 128, 192, 192, 256, "max", None),
    "inception5a": ((7, 7, 1024), 352, 192, 320, 160, 224, "avg", 128),
    "inception5b": ((7, 7, 1024), 352, 192, 320, 192, 224, "max", 128),
}


def _bn_branches(net, block):
    """(filters of the branch convs as Figure 5 lists them, the pool op) of one module."""
    f = lambda name: net.layers[f"{block}/{name}"].attrs["filters"]  # noqa: E731
    if f"{block}/b4/conv_1" in net.layers:  # the 4-branch module
        pool = net.layers[net.layers[f"{block}/b4/conv_1"].inputs[0]].op
        return (f("b1/conv_1"), f("b2/conv_1"), f("b2/conv_2"), f("b3/conv_1"), f("b3/conv_2"),
                pool[:3], f("b4/conv_1"))
    assert net.layers[f"{block}/b3/maxpool_1"].attrs["stride"] == (2, 2)
    assert net.layers[f"{block}/b1/conv_2"].attrs["stride"] == (2, 2)
    assert net.layers[f"{block}/b2/conv_3"].attrs["stride"] == (2, 2)
    return (0, f("b1/conv_1"), f("b1/conv_2"), f("b2/conv_1"), f("b2/conv_2"), "max", None)


def test_bn_inception_matches_figure5():
    spec = incdsl.Spec(SPECS / "bn_inception.inc")
    net = spec.build()  # default: the pool projections of 4c/4d are 96, every output size holds
    blocks = _blocks(net)
    for block, (shape, *columns) in BN_FIGURE5.items():
        assert blocks[block] == shape, block
        got = _bn_branches(net, block)
        if block in ("inception4c", "inception4d"):
            assert got[:-1] == tuple(columns[:-1]) and got[-1] == 96, block
        else:
            assert got == tuple(columns), block
    assert _shape(net, "conv1") == (112, 112, 64) and _shape(net, "pool2") == (28, 28, 192)
    assert net.layers["conv1"].op == "sepconv" and net.layers["conv1"].attrs["multiplier"] == 8
    # --set proj_4cd=128 follows the pool-proj column: every column holds, 4c/4d/4e outgrow the table
    literal = spec.build(proj_4cd=128)
    for block, (shape, *columns) in BN_FIGURE5.items():
        assert _bn_branches(literal, block) == tuple(columns), block
    assert _blocks(literal)["inception4d"] == (14, 14, 608)
    assert _blocks(literal)["inception4e"] == (7, 7, 1056)


# --- Inception-ResNet-v1, the figures of Szegedy et al. 2016 --------------------------------------

def test_inception_resnet_v1_matches_the_figures():
    net = incdsl.load(SPECS / "inception_resnet_v1.inc")
    blocks = _blocks(net)
    assert _shape(net, "conv_4b") == (35, 35, 256)                   # Figure 14, the stem's output
    assert [blocks[f"block35_{i}"] for i in range(1, 6)] == [(35, 35, 256)] * 5    # Figure 10
    assert blocks["reduction_a"] == (17, 17, 896)                     # Figure 7, Table 1, Figure 15
    assert [blocks[f"block17_{i}"] for i in range(1, 11)] == [(17, 17, 896)] * 10  # Figure 11
    assert blocks["reduction_b"] == (8, 8, 1792)                      # Figure 12
    assert [blocks[f"block8_{i}"] for i in range(1, 6)] == [(8, 8, 1792)] * 5      # Figure 13
    assert net.heads[0].shape == (1000,)
    # the residual branches end in a linear 1x1 conv back to the block's depth ("256 Linear" ...)
    for block, depth in (("block35_1", 256), ("block17_1", 896), ("block8_1", 1792)):
        up = [l for n, l in net.layers.items() if n.startswith(block + "/") and l.op == "conv"][-1]
        assert up.attrs["filters"] == depth and up.attrs["kernel"] == (1, 1) and up.attrs["act"] is None




# --- every reference spec, across its parameters ------------------------------------------------------

# the smallest input each architecture takes (keras.applications' min_size where it has one)
MIN_SIZE = {"googlenet": 64, "googlenet_tv": 64, "bn_inception": 64, "inception_v3": 75,
            "inception_v3_tv": 75,
            "inception_v4": 75, "inception_resnet_v1": 75, "inception_resnet_v2": 75, "xception": 71}


@pytest.mark.parametrize("spec", sorted(MIN_SIZE))
def test_reference_specs_build_across_widths_and_sizes(spec):
    """Odd widths round each branch on its own (int(c * width)); the residual blocks must still add
    up, and every spec must take its parameters classes, width and size (and aux where it has one)."""
    s = incdsl.Spec(SPECS / f"{spec}.inc")
    assert {"classes", "width", "size"} <= set(s.params)
    no_aux = {"aux": False} if "aux" in s.params else {}  # an aux head needs a larger input
    for width in (0.3, 0.55, 0.77, 1.3):
        net = s.build(width=width, size=MIN_SIZE[spec], classes=7, **no_aux)
        assert net.heads[0].shape == (7,)
    if "aux" in s.params:  # the aux heads need the default input size
        net = s.build(aux=True, width=0.3)
        assert any(h.train_only for h in net.heads) and len(net.heads) >= 2

# --- tools/spec_table.py ----------------------------------------------------------------------------

def test_spec_table_check_spots_a_stale_readme(tmp_path, capsys):
    import importlib.util
    path = SPECS.parent / "tools" / "spec_table.py"
    mod_spec = importlib.util.spec_from_file_location("spec_table", path)
    tool = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(tool)
    text = tool.table()
    assert "| `inception_v3.inc` | 299x299x3 | 23,851,784 | 23,817,352 |" in text  # keras' figures
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n" + text + "\nmore\n")
    assert tool.main(["--check", str(readme)]) == 0
    readme.write_text("# x\n\n" + text.replace("23,851,784", "23,851,785") + "\nmore\n")
    assert tool.main(["--check", str(readme)]) == 1
    readme.write_text("# no table\n")
    assert tool.main(["--check", str(readme)]) == 1
    assert "no spec table" in capsys.readouterr().err

if __name__ == "__main__" and sys.argv[1:] == ["--torch-figures"]:
    print(json.dumps(_torch_figures()))
