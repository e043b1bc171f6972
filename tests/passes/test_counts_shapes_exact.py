"""Counts and shapes users see, against hand-worked figures and torch's arithmetic, with inputs
strong enough that the wrong rule gives a different answer: a separable conv with a depth
multiplier, BN-Inception's total MACs, floor of a negative number, ceil mode with uneven padding
(written to catch faults that once passed the whole suite, injected one at a time)."""
from __future__ import annotations

import torch

import incdsl

from conftest import ROOT


def test_separable_macs_with_a_depth_multiplier():
    # sepconv(16, 3, multiplier=2) on 6x6x5, pad=same: depthwise 6*6*(5*2)*3*3, then pointwise
    # from 5*2 = 10 channels: 6*6*10*16. Params 3*3*10 + 10*16 (no bias).
    net = incdsl.loads("network n() {\n  input 6x6x5\n  sepconv(16, 3, multiplier=2, bias=false)\n}\n")
    (c,) = [net.counts[n] for n in net.layers if net.layers[n].op == "sepconv"]
    assert c.macs == 6 * 6 * 10 * 9 + 6 * 6 * 10 * 16 == 9000
    assert c.trainable == 90 + 160


def test_bn_inception_total_macs_exact():
    # BN-Inception's separable stem conv has multiplier 8 (Figure 5's "depth 8"): the total, as the
    # README's table rounds it (1.93 G), depends on counting its pointwise part from cin * 8.
    assert incdsl.load(ROOT / "specs" / "bn_inception.inc").macs == 1_934_857_216


def test_floor_rounds_toward_minus_infinity():
    net = incdsl.loads("network n() {\n  input 4x4x1\n  conv(int(10 + floor(-1.5)), 1)\n}\n")
    assert net.shapes["conv_1"] == (4, 4, 8)  # floor(-1.5) = -2, not -1


def test_ceil_mode_reads_the_leading_padding():
    # 6 rows, 3x3 window, stride 2, 2 rows of padding on top and none below, ceil mode:
    # ceil((6 + 2 - 3) / 2) + 1 = 4 windows; the last starts at padded row 6, inside the input
    # (which spans padded rows 2..7), so all 4 stay. Reading the bottom padding (0) instead would
    # drop the last window (6 >= 6 + 0) and give 3.
    net = incdsl.loads(
        "network n() {\n  input 6x6x1\n  maxpool(3, stride=2, pad=(2, 0, 0, 0), ceil=true)\n}\n")
    assert net.shapes["maxpool_1"] == (4, 3, 1)
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    padded = torch.nn.functional.pad(x, (0, 0, 2, 0), value=float("-inf"))
    want = torch.nn.functional.max_pool2d(padded, 3, 2, ceil_mode=True)
    assert tuple(want.shape[2:]) == (4, 3)
