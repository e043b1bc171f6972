"""Issue 27 item 6: `summary`'s feature taps are timm's `features_only` feature_info (channels,
reduction and the module tapped) for every spec that reproduces a timm model, checked against timm
itself (feature_info only: the models are built on the meta device, no weights)."""
from __future__ import annotations

import json

import pytest

from conftest import SPECS

V4_FEATURES = (["conv_1", "conv_2", "conv_3", "mixed_3a", "mixed_4a", "mixed_5a"]
               + [f"inception_a_{i}" for i in range(1, 5)] + ["reduction_a"]
               + [f"inception_b_{i}" for i in range(1, 8)] + ["reduction_b"]
               + [f"inception_c_{i}" for i in range(1, 4)])
# timm module -> the spec's layer or module call that computes the same map
V3_TV = {"Conv2d_2b_3x3": "stem/conv_3", "Conv2d_4a_3x3": "stem", "Mixed_5d": "Mixed_5d",
         "Mixed_6e": "Mixed_6e",
         "Mixed_7c": "Mixed_7c"}
IRV2 = {"conv2d_2b": "stem/conv_3", "conv2d_4a": "stem", "repeat": "block35_10", "repeat_1": "block17_20",
        "conv2d_7b": "conv_7b"}


def timm_info(name):
    import timm
    import torch
    with torch.device("meta"):
        return timm.create_model(name, features_only=True, pretrained=False).feature_info


@pytest.mark.slow
@pytest.mark.parametrize("spec, timm_name, ours", [
    ("inception_v4", "inception_v4", lambda m: V4_FEATURES[int(m.split(".")[1])]),
    ("inception_v3_tv", "inception_v3", V3_TV.get),
    ("inception_resnet_v2", "inception_resnet_v2", IRV2.get),
])
def test_taps_are_timm_feature_info(cli, spec, timm_name, ours):
    info = timm_info(timm_name)
    taps = json.loads(cli.ok("summary", SPECS / f"{spec}.inc", "--json"))["taps"]
    assert [t["num_chs"] for t in taps] == info.channels()
    assert [t["reduction"] for t in taps] == info.reduction()
    assert [t["name"] for t in taps] == [ours(m) for m in info.module_name()]


@pytest.mark.slow
def test_inception_v4_taps_mixed_3a_at_stride_4(cli):
    # the case: timm taps Mixed3a (160 channels), not the last stride-4 map (mixed_4a, 192)
    info = timm_info("inception_v4")
    assert info.module_name()[1] == "features.3" and info.channels()[1] == 160 and info.reduction()[1] == 4
    tap = json.loads(cli.ok("summary", SPECS / "inception_v4.inc", "--json"))["taps"][1]
    assert (tap["name"], tap["layer"], tap["num_chs"], tap["reduction"]) == ("mixed_3a", "mixed_3a", 160, 4)


def test_tap_option_is_checked_like_an_argument(tmp_path, cli):
    spec = tmp_path / "t.inc"
    spec.write_text("network n() {\n  input(8, 8, 3)\n  concat(tap=3) { conv(4, 1); conv(4, 1) }\n}\n")
    code, _, err = cli("check", spec)
    assert code == 1 and "tap" in err
    spec.write_text("network n() {\n  input(8, 8, 3)\n  concat(tip=true) { conv(4, 1); conv(4, 1) }\n}\n")
    code, _, err = cli("check", spec)
    assert code == 1 and "concat has no argument 'tip'" in err
