"""Issue 27 items 1 and 3: TF-slim's own end-point shapes, from its tests (tensorflow/models,
research/slim/nets):
- inception_v3_test.py testHalfSizeImages: 150x150 with AuxLogits (slim's default) -> Mixed_7c [3, 3, 2048];
- inception_v4_test.py (commit 169dcbd0) testHalfSizeImages: 150x150 with AuxLogits -> Mixed_7d [3, 3, 1536];
  testAllEndPointsShapes at 299 (Mixed_6h 17x17x1024, AuxLogits [1000]);
- inception_resnet_v2_test.py (commit 09ff47db) testHalfSizeImages: 150x150 with AuxLogits ->
  Conv2d_7b_1x1 [3, 3, 1536]; ...WithAlignedFeatureMaps and ...WithOutputStrideEight: the end
  points up to PreAuxLogits.
slim shrinks the aux head's 5x5 conv on small maps (v3: `_reduced_kernel_size_for_small_input`,
min(5, side); v4 and IRv2: the kernel is the map, `aux.get_shape()[1:3]`): the language's
`conv(..., fit=shrink|map)`. The torch-matched spec keeps torchvision's behaviour (it fails)."""
from __future__ import annotations

import pytest

import incdsl
from incdsl.errors import SpecError

from conftest import SPECS


def load(name, **sets):
    return incdsl.load(SPECS / f"{name}.inc", **sets)


def aux_conv(net):
    return next(n for n in net.layers if "aux" in n.lower() and net.layers[n].op == "conv"
                and net.layers[n].attrs["filters"] == 768)


@pytest.mark.parametrize("name, last, shape", [
    ("inception_v3_slim", "mixed10", (3, 3, 2048)), ("inception_v3", "mixed10", (3, 3, 2048)),
    ("inception_v4", "inception_c_3", (3, 3, 1536)), ("inception_resnet_v2", "conv_7b", (3, 3, 1536)),
])
def test_half_size_images_with_aux_logits(name, last, shape):
    net = load(name, size=150, aux=True)
    ends = {b.name: b.output for b in net.graph.blocks}
    assert net.shapes[ends.get(last, last)] == shape
    assert net.outputs["aux_logits"] == (1000,)
    conv = aux_conv(net)
    # the aux head's map is 7x7 -> avgpool 5/3 -> 1x1: slim's kernel is 1x1 there
    assert net.layers[conv].attrs["kernel"] == (1, 1) and net.shapes[conv] == (1, 1, 768)
    # 128 * 768 weights + batch norm (slim's scope: no scale in v3 and IRv2; timm's v4 scales)
    bn = 4 if name == "inception_v4" else 3
    assert net.counts[conv].params == 128 * 768 + bn * 768


def test_full_size_keeps_the_5x5_aux_conv():
    for name in ("inception_v3_slim", "inception_v4", "inception_resnet_v2"):
        net = load(name, aux=True)
        assert net.layers[aux_conv(net)].attrs["kernel"] == (5, 5)
    v4 = load("inception_v4", aux=True)  # slim's testAllEndPointsShapes
    assert v4.shapes[{b.name: b.output for b in v4.graph.blocks}["inception_b_7"]] == (17, 17, 1024)


def test_summary_of_inception_v3_at_150_with_aux(cli):
    out = cli.ok("summary", "inception_v3", "--set", "size=150", "--set", "aux=true")
    assert "output aux_logits: 1000, training only" in out


def test_torchvision_matched_aux_still_needs_5x5():
    # torchvision's InceptionAux has a plain 5x5 conv1: at 150x150 its input is 1x1 and torch refuses
    with pytest.raises(SpecError, match="the 5x5 window does not fit the 1x1 input"):
        load("inception_v3_tv", size=150, aux=True)


@pytest.mark.slow
def test_torchvision_refuses_150_with_aux():
    import torch
    import torchvision
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).train()
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        model(torch.zeros(2, 3, 150, 150))


def test_fit_argument_is_checked(tmp_path, cli):
    spec = tmp_path / "f.inc"
    spec.write_text("network n() {\n  input(3, 3, 8)\n  conv(4, 5, pad=valid, fit=grow) -> gap\n}\n")
    code, _, err = cli("check", spec)
    assert code == 1 and "conv: 'fit' cannot be 'grow'" in err
    spec.write_text("network n() {\n  input(3, 2, 8)\n  conv(4, 5, pad=valid, fit=shrink) -> gap\n}\n")
    net = incdsl.load(spec)
    assert net.layers["conv_1"].attrs["kernel"] == (3, 2) and net.counts["conv_1"].params == 3 * 2 * 8 * 4 + 4


@pytest.mark.slow
def test_keras_builds_the_fitted_kernel():
    net = load("inception_v3_slim", size=150, aux=True, width=0.25)
    model = net.to_keras()  # the training model: the aux head included
    assert model.count_params() == net.total().params
    kernels = [w.shape for w in model.weights if w.shape[:2] == (1, 1) and w.shape[-1] == 192]
    assert kernels  # the aux conv (768 * 0.25 = 192 filters) is 1x1 in Keras too


# inception_resnet_v2_test.py: testBuildAndCheckAllEndPointsUptoPreAuxLogits, ...WithAlignedFeatureMaps,
# ...WithOutputStrideEight (299x299; the batch left out)
SLIM_IRV2 = {
    (16, False): {"Conv2d_1a_3x3": (149, 149, 32), "Conv2d_2a_3x3": (147, 147, 32),
                  "Conv2d_2b_3x3": (147, 147, 64),
                  "MaxPool_3a_3x3": (73, 73, 64), "Conv2d_3b_1x1": (73, 73, 80),
                  "Conv2d_4a_3x3": (71, 71, 192),
                  "MaxPool_5a_3x3": (35, 35, 192), "Mixed_5b": (35, 35, 320), "Mixed_6a": (17, 17, 1088),
                  "PreAuxLogits": (17, 17, 1088)},
    (16, True): {"Conv2d_1a_3x3": (150, 150, 32), "Conv2d_2a_3x3": (150, 150, 32),
                 "Conv2d_2b_3x3": (150, 150, 64),
                 "MaxPool_3a_3x3": (75, 75, 64), "Conv2d_3b_1x1": (75, 75, 80),
                 "Conv2d_4a_3x3": (75, 75, 192),
                 "MaxPool_5a_3x3": (38, 38, 192), "Mixed_5b": (38, 38, 320), "Mixed_6a": (19, 19, 1088),
                 "PreAuxLogits": (19, 19, 1088)},
    (8, False): {"Conv2d_1a_3x3": (149, 149, 32), "Conv2d_2a_3x3": (147, 147, 32),
                 "Conv2d_2b_3x3": (147, 147, 64),
                 "MaxPool_3a_3x3": (73, 73, 64), "Conv2d_3b_1x1": (73, 73, 80),
                 "Conv2d_4a_3x3": (71, 71, 192),
                 "MaxPool_5a_3x3": (35, 35, 192), "Mixed_5b": (35, 35, 320), "Mixed_6a": (33, 33, 1088),
                 "PreAuxLogits": (33, 33, 1088)},
}
OURS = {"Conv2d_1a_3x3": "stem/conv_1", "Conv2d_2a_3x3": "stem/conv_2", "Conv2d_2b_3x3": "stem/conv_3",
        "MaxPool_3a_3x3": "stem/maxpool_1", "Conv2d_3b_1x1": "stem/conv_4", "Conv2d_4a_3x3": "stem/conv_5",
        "MaxPool_5a_3x3": "maxpool_1", "Mixed_5b": "mixed_5b", "Mixed_6a": "mixed_6a",
        "PreAuxLogits": "block17_20"}


@pytest.mark.parametrize("output_stride, align", sorted(SLIM_IRV2))
def test_irv2_end_points_as_slim(output_stride, align):
    net = load("inception_resnet_v2", output_stride=output_stride, align_feature_maps=align)
    ends = {b.name: b.output for b in net.graph.blocks}
    got = {k: net.shapes[ends.get(v, v)] for k, v in OURS.items()}
    assert got == SLIM_IRV2[(output_stride, align)]
    dil = {net.layers[n].attrs["dilation"] for n in net.layers if n.startswith("block17_")
           and net.layers[n].op == "conv" and net.layers[n].attrs["kernel"] != (1, 1)}
    assert dil == ({(2, 2)} if output_stride == 8 else {(1, 1)})  # slim: arg_scope rate=2 if use_atrous
    if output_stride == 8:  # slim builds nothing past PreAuxLogits at output stride 8
        assert net.outputs == {"features": (33, 33, 1088)} and "conv_7b" not in net.layers
    else:
        assert net.outputs == {"predictions": (1000,)}


def test_irv2_defaults_stay_keras():
    assert load("inception_resnet_v2").total().params == 55_873_736  # keras.applications.InceptionResNetV2
