"""Issue 27 item 2: any input size (`--set size=350x400`, HxW) and channel count (`--set channels=1`)
on the reference specs, against keras.applications (its applications_test builds InceptionV3,
InceptionResNetV2 and Xception with 1 and 4 channels) and TF-slim's tests (inception_v4_test.py
testGlobalPool: 350x400 -> Mixed_7d 9x11x1536; inception_resnet_v2_test.py testGlobalPool: 400x600
-> Conv2d_7b_1x1 11x17x1536, both with AuxLogits, slim's default)."""
from __future__ import annotations

import pytest

import incdsl
from incdsl.cli.main import main

from conftest import SPECS


def load(name, **sets):
    return incdsl.load(SPECS / f"{name}.inc", **sets)


def test_v3_one_channel_without_top_is_keras_count():
    # keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(299, 299,
    # 1)).count_params()
    assert load("inception_v3", top=False, channels=1).total().params == 21_802_208


def test_slim_global_pool_sizes(capsys):
    assert main(["summary", str(SPECS / "inception_v4.inc"), "--set", "size=350x400", "--set", "aux=true",
                 "--json"]) == 0
    v4 = load("inception_v4", size=(350, 400), aux=True)
    ends = {b.name: b.output for b in v4.graph.blocks}
    assert v4.shapes["input"] == (350, 400, 3) and v4.shapes[ends["inception_c_3"]] == (9, 11, 1536)
    irv2 = load("inception_resnet_v2", size=(400, 600), aux=True)
    assert irv2.shapes["conv_7b"] == (11, 17, 1536) and irv2.outputs["aux_logits"] == (1000,)


def test_hxw_from_the_command_line(capsys):
    assert main(["expand", "inception_v4", "--set", "size=350x400", "--set", "channels=4"]) == 0
    assert "input(350, 400, 4)" in capsys.readouterr().out
    assert main(["expand", "inception_v4", "--set", "size=350x400x3"]) == 2
    assert "size is an integer or HxW (its default is 299)" in capsys.readouterr().err


def test_hxw_into_a_three_argument_input_says_where_it_goes(tmp_path, capsys):
    spec = tmp_path / "s.inc"
    spec.write_text("network n(size=32) {\n  input(size, size, 3)\n  conv(4, 3) -> gap\n}\n")
    assert main(["check", str(spec), "--set", "size=30x40"]) == 1
    err = capsys.readouterr().err
    assert "input height must be an integer" in err and "input(size, channels)" in err


@pytest.mark.slow
@pytest.mark.parametrize("name, app",
                         [("inception_v3", "InceptionV3"), ("inception_resnet_v2", "InceptionResNetV2"),
                                       ("xception", "Xception")])
@pytest.mark.parametrize("channels", [1, 4])
def test_channels_against_keras_applications(name, app, channels):
    import keras
    model = getattr(keras.applications, app)(include_top=False, weights=None,
                                             input_shape=(299, 299, channels))
    net = load(name, top=False, channels=channels)
    assert net.total().params == model.count_params()
    assert net.outputs["features"] == tuple(model.output.shape[1:])
