"""`incdsl diff`: the issue's case, GoogLeNet as the paper draws it against torchvision's, checked
against what torchvision's googlenet.py changes (batch norm, no LRN, 3x3 for 5x5, pool4) and the
README's figures, in text, JSON and Markdown."""
from __future__ import annotations

import json

from conftest import SPECS

A, B = str(SPECS / "googlenet.inc"), str(SPECS / "googlenet_tv.inc")


def test_diff_googlenet_against_torchvision(cli):
    data = json.loads(cli.ok("diff", A, B, "--json"))
    by_b = {f["b"]: f for f in data["layers"] if f["b"]}
    removed = [f["a"] for f in data["layers"] if f["status"] == "removed"]
    assert {"norm1", "norm2"} <= set(removed)  # LRN removed
    # torchvision's BasicConv2d: conv without bias, then batch norm, on every conv
    convs = [f for f in data["layers"] if f["status"] != "removed" and f["op_b"].startswith("conv")]
    assert len(convs) == 57 + 2 and all(f["changes"].get("bn") == ["false", "true"] for f in convs)
    # the "5x5" branches convolve 3x3 (torchvision issue 906); hand count for inception3a:
    # 5*5*16*32 + 32 = 12,832 -> 3*3*16*32 + 4*32 (gamma, beta, mean, variance) = 4,736
    fives = [f for f in data["layers"] if f["changes"].get("kernel") == ["5x5", "3x3"]]
    assert len(fives) == 9 and all(f["b"].endswith("/b3/conv_2") for f in fives)
    assert by_b["inception3a/b3/conv_2"]["delta"]["params"] == 4_736 - 12_832
    # pool4 becomes torchvision's maxpool4, 2x2 instead of 3x3, same 7x7x832 output
    assert by_b["maxpool4"]["changes"]["name"] == ["pool4", "maxpool4"]
    assert by_b["maxpool4"]["changes"]["kernel"] == ["3x3",
                                                     "2x2"] and "shape" not in by_b["maxpool4"]["changes"]
    # the stem: conv2_reduce/conv2 are torchvision's conv2/conv3
    assert by_b["conv2"]["a"] == "conv2_reduce" and by_b["conv3"]["a"] == "conv2"
    # totals are the README's spec table: 6,998,552 and 6,639,464 inference params
    assert data["totals"]["inference_params"] == [6_998_552, 6_639_464]
    assert sum(f["delta"]["params"] for f in data["layers"]) == 13_019_960 - 13_378_280
    text = cli.ok("diff", A, B)
    assert "-  norm1" in text and "renamed from pool4, kernel 3x3 -> 2x2" in text
    assert "inference params: 6,998,552 -> 6,639,464  -359,088 (-5.1%)" in text
    md = cli.ok("diff", A, B, "--markdown")
    table = [l for l in md.splitlines() if l.startswith("|")]
    assert len({l.count("|") - l.count("\\|") for l in table[:60]}) == 1


def test_diff_of_a_network_with_itself_is_empty_and_set_applies_to_both(cli):
    data = json.loads(cli.ok("diff", B, B, "--set", "width=0.5", "--json"))
    assert data["counts"]["changed"] == data["counts"]["added"] == data["counts"]["removed"] == 0
    assert data["totals"]["params"][0] == data["totals"]["params"][1] < 13_019_960
