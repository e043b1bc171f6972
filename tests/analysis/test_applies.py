"""Issue 27 item 8: `expand` shows, and `diff` compares, only the options that apply to a layer: a
conv's batch-norm options mean nothing without its batch norm (`bn=false`)."""
from __future__ import annotations

import json

from conftest import SPECS


def test_expand_shows_no_bn_option_on_irv2_up_projection(cli):
    # keras' inception_resnet_block: the 1x1 up-projection is conv2d_bn(..., activation=None,
    # use_bias=True), which skips the batch norm; the spec inherits bn_scale=false from defaults
    lines = cli.ok("expand", str(SPECS / "inception_resnet_v2.inc")).splitlines()
    up = next(l for l in lines if l.startswith("block35_1/b2/conv_1 "))
    assert "conv(320) <-" in up and "bn_" not in up
    ups = [
        l for l in lines if l.startswith(
            "block") and l.split()[0].endswith("/b2/conv_1") and l.split()[0].count("/") == 2]
    assert len(ups) == 10 + 20 + 9 + 1 and all(" = conv(" + c + ") <-" in l for l, c in zip(
        ups, ["320"] * 10 + ["1088"] * 20 + ["2080"] * 10))
    # a conv with its batch norm keeps showing the option
    assert (
        "= conv(32, kernel=3x3, stride=2x2, pad=valid, bias=false, bn=true, bn_scale=false, act=relu) <-"
        in lines[2]
    )


def test_diff_googlenet_reports_no_bn_momentum_of_convs_without_bn(cli):
    a, b = str(SPECS / "googlenet.inc"), str(SPECS / "googlenet_tv.inc")
    text = cli.ok("diff", a, b)
    assert "bn_momentum" not in text and "bn false -> true" in text
    data = json.loads(cli.ok("diff", a, b, "--json"))
    assert not any("bn_momentum" in f["changes"] for f in data["layers"])


def test_diff_still_reports_a_bn_option_where_both_sides_have_bn(cli, tmp_path):
    a, b = tmp_path / "a.inc", tmp_path / "b.inc"
    a.write_text("network n() {\n  input(8, 8, 3)\n  conv(4, 3, bn=true, bn_momentum=0.99) -> gap\n}\n")
    b.write_text("network n() {\n  input(8, 8, 3)\n  conv(4, 3, bn=true, bn_momentum=0.9) -> gap\n}\n")
    assert "bn_momentum 0.99 -> 0.9" in cli.ok("diff", str(a), str(b))
