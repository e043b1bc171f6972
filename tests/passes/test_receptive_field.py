"""Receptive field and effective stride (incdsl/passes/receptive_field.py, `summary --rf`, --json),
checked against hand computations on GoogLeNet and against the published figure for Inception v3."""
import json

import incdsl
from incdsl.cli import main as cli

from conftest import SPECS


def field(net, name):
    f = net.fields[name]
    assert f.size[0] == f.size[1] and f.stride[0] == f.stride[1]  # square kernels and strides here
    return f.size[0], f.stride[0]


def test_googlenet_stem_and_inception_3a_by_hand():
    net = incdsl.load(SPECS / "googlenet.inc")
    # r_out = r_in + (k - 1) * j_in, j_out = j_in * s (Araujo et al. 2019, Eq. 1-2); input r = 1, j = 1
    assert field(net, "conv1") == (7, 2)          # 7x7/2: 1 + 6*1 = 7, stride 2
    assert field(net, "pool1") == (11, 4)         # 3x3/2: 7 + 2*2 = 11, stride 4
    assert field(net, "norm1") == (11, 4)         # LRN: per pixel, no change
    assert field(net, "conv2_reduce") == (11, 4)  # 1x1: 11 + 0*4
    assert field(net, "conv2") == (19, 4)         # 3x3/1: 11 + 2*4 = 19
    assert field(net, "pool2") == (27, 8)         # 3x3/2: 19 + 2*4 = 27, stride 8
    # inception 3a on pool2 (r 27, j 8):
    assert field(net, "inception3a/b1/conv_1") == (27, 8)        # 1x1
    assert field(net, "inception3a/b2/conv_2") == (43, 8)        # 1x1, 3x3: 27 + 2*8 = 43
    assert field(net, "inception3a/b3/conv_2") == (59, 8)        # 1x1, 5x5: 27 + 4*8 = 59
    assert field(net, "inception3a/b4/maxpool_1") == (43, 8)     # 3x3/1 pool: 27 + 2*8 = 43
    assert field(net, "inception3a/b4/conv_1") == (43, 8)        # then 1x1
    assert field(net, "inception3a/concat_1") == (59, 8)         # the widest branch
    # 3b on 3a (r 59): the 5x5 branch again adds 4*8 = 32 -> 91; pool3 3x3/2: 91 + 2*8 = 107, stride 16
    assert field(net, "inception3b/concat_1") == (91, 8)
    assert field(net, "pool3") == (107, 16)


def test_inception_v3_matches_the_published_figure():
    # Araujo, Norris and Sim, "Computing Receptive Fields of CNNs" (Distill 2019), Table 1:
    # InceptionV3's last feature map (mixed10) has receptive field 1311 and effective stride 32
    net = incdsl.load(SPECS / "inception_v3.inc")
    assert field(net, "mixed10/concat_1") == (1311, 32)


def test_dilation_and_rectangular_kernels(spec_file):
    net = incdsl.load(spec_file("network t() {\n  input 32x32x3\n  conv(4, 3, dilation=2)\n  conv(4, 1x7)\n"
                                "  maxpool(2)\n  multiply { identity; gap -> dense(4) }\n}\n"))
    assert net.fields["conv_1"].size == (5, 5)                                  # 3x3 dilated 2 spans 5
    assert net.fields["conv_2"].size == (5, 11)                                 # 1x7: width 5 + 6
    assert net.fields["maxpool_1"].size == (6, 12) and net.fields["maxpool_1"].stride == (2, 2)
    # a squeeze-and-excitation gate (gap: one window over the 16x16 map) makes the field global:
    # 6 + 15*2 = 36 by 12 + 15*2 = 42
    assert net.fields["multiply_1"].size == (36, 42)
    assert net.fields["multiply_1"].stride == (2, 2)  # the map's, not the gate's


def test_summary_rf_and_json(capsys):
    assert cli.main(["summary", str(SPECS / "googlenet.inc"), "--rf"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[-2:] == ["RF", "stride"]
    assert next(l for l in lines if l.startswith("pool2 ")).split()[-2:] == ["27x27", "8x8"]
    assert cli.main(["summary", str(SPECS / "googlenet.inc"), "--rf", "--depth", "1"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert next(l for l in rows if l.startswith("inception3a ")).split()[-2:] == ["59x59", "8x8"]
    assert cli.main(["summary", str(SPECS / "googlenet.inc"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    layer = next(l for l in data["layers"] if l["name"] == "conv2")
    assert (layer["rf"], layer["rf_stride"]) == ([19, 19], [4, 4])
    block = next(b for b in data["blocks"] if b["name"] == "inception3a")
    assert (block["rf"], block["rf_stride"]) == ([59, 59], [8, 8])


def test_adaptive_pooling_and_a_stride_per_axis(spec_file):
    net = incdsl.load(spec_file("network t() {\n  input 16x16x3\n  a = conv(4, 3, stride=2x1)\n"
                                "  c = concat { conv(4, 1); maxpool(3, stride=1, pad=same) }\n"
                                "  adaptive_avgpool(3) -> gap\n}\n"))
    f = net.fields
    assert (f["a"].size, f["a"].stride) == ((3, 3), (2, 1))  # 3x3 at stride 2 down, 1 across: 8x16
    # the pool's branch: 3 + 2*2 = 7 down, 3 + 2*1 = 5 across; the concat keeps the strides per axis
    assert (f["c"].size, f["c"].stride) == ((7, 5), (2, 1))
    # adaptive 8x16 -> 3x3 (PyTorch's widest bin): windows ceil(8/3) = 3 by ceil(16/3) = 6 at strides
    # 8//3 = 2 by 16//3 = 5: 7 + 2*2 = 11, 5 + 5*1 = 10; strides 2*2 = 4, 1*5 = 5
    assert (f["adaptive_avgpool_1"].size, f["adaptive_avgpool_1"].stride) == ((11, 10), (4, 5))
    assert all(type(v) is int for v in f["adaptive_avgpool_1"].size + f["adaptive_avgpool_1"].stride)
    # gap over the 3x3 map: one 3x3 window at stride 3
    assert (f["gap_1"].size, f["gap_1"].stride) == ((11 + 2 * 4, 10 + 2 * 5), (12, 15))
