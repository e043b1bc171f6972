"""Channel rounding (incdsl/elaborate/rounding.py, the language's depth() and make_divisible()) against the
code it follows, and the Inception v3 spec's TF-slim min_depth at the widths the issue names."""
import subprocess
import sys

import pytest

import incdsl
from incdsl.elaborate.rounding import make_divisible, slim_depth

from conftest import ROOT, SPECS


def test_slim_depth_is_tf_slims_formula():
    # TF-slim inception_v3.py: depth = lambda d: max(int(d * depth_multiplier), min_depth)
    assert slim_depth(32, 0.3, 16) == 16      # int(9.6) = 9, raised to 16
    assert slim_depth(64, 0.3, 16) == 19      # int(19.2) = 19: above the minimum, truncated
    assert slim_depth(192, 0.75, 16) == 144
    assert slim_depth(32, 0.3, 1) == 9        # min_depth 1: plain truncation


def test_make_divisible_matches_torchvision():
    from torchvision.models._utils import _make_divisible  # MobileNetV2's rounding, as torchvision has it
    for v in [1, 3, 7.5, 8, 12, 15.9, 16.1, 24 * 0.35, 32 * 0.75, 37.5, 96 * 1.4, 100, 1280 * 0.5, 1001.3]:
        for divisor in (1, 4, 8, 16):
            assert make_divisible(v, divisor) == _make_divisible(v, divisor), (v, divisor)
    assert make_divisible(10, 8, min_value=16) == _make_divisible(10, 8, 16) == 16


def test_functions_in_the_language(spec_file):
    path = spec_file("network t(width=0.35) {\n  input 8x8x3\n"
                     "  conv(make_divisible(32 * width, 8), 3)\n  conv(depth(64, width, 16), 1)\n"
                     "  conv(depth(16, width), 1)\n  conv(depth(16, width, 1), 1)\n}\n")
    net = incdsl.load(path)
    # 32 * 0.35 = 11.2 -> 16 (nearest multiple of 8 is 8, 29% below 11.2, so one more step);
    # int(64 * 0.35) = 22; int(16 * 0.35) = 5 is raised to TF-slim's default min_depth 16, and
    # stays 5 with min_depth 1
    assert [net.shapes[n][-1] for n in ("conv_1", "conv_2", "conv_3", "conv_4")] == [16, 22, 16, 5]


def test_inception_v3_counts_tf_slims_params_at_width_0_3():
    # TF-slim's inception_v3(depth_multiplier=0.3) with its default min_depth=16: 2,571,900
    # (plain truncation, min_depth=1, gives 2,564,664)
    spec = incdsl.Spec(SPECS / "inception_v3.inc")
    assert spec.params["min_depth"] == 16
    assert spec.build(width=0.3).total(inference=True).params == 2_571_900
    assert spec.build(width=0.3, min_depth=1).total(inference=True).params == 2_564_664
    # width 1.0 is keras.applications' InceptionV3 still; the minimum bites below 0.5 only
    assert spec.build().total().params == 23_851_784
    assert spec.build(width=0.5).total().params == spec.build(width=0.5, min_depth=1).total().params
    assert spec.build(width=0.49).total().params != spec.build(width=0.49, min_depth=1).total().params


def test_readme_spec_table_is_unchanged():
    out = subprocess.run([sys.executable, "tools/spec_table.py", "--check", "README.md"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_functions_take_keyword_arguments_as_documented(spec_file):
    # the review's exact calls: specs/README.md writes depth(d, multiplier, min_depth=16) and
    # make_divisible(v, divisor=8, min_value=divisor); both once failed with "unexpected '='"
    from torchvision.models._utils import _make_divisible
    path = spec_file("network t {\n  input 8x8x3\n  conv(depth(64, 0.5, min_depth=8), 1)\n"
                     "  conv(make_divisible(v=10), 1)\n  conv(depth(d=8, multiplier=0.5, min_depth=8), 1)\n"
                     "  conv(make_divisible(37.5, min_value=48, divisor=16), 1)\n}\n")
    net = incdsl.load(path)
    assert [net.shapes[n][-1] for n in ("conv_1", "conv_2", "conv_3", "conv_4")] == [
        slim_depth(64, 0.5, 8), _make_divisible(10, 8), 8, _make_divisible(37.5, 16, 48)] == [32, 16, 8, 48]


@pytest.mark.parametrize("call", ["depth(64, -1)", "depth(64, 0)", "make_divisible(-5)",
                                  "make_divisible(10, 2.5)", "make_divisible(10, 0)"])
def test_rounding_functions_refuse_values_outside_their_domain(spec_file, call):
    # depth(64, -1) once gave 16, make_divisible(-5) gave 8, make_divisible(10, 2.5) gave 10
    path = spec_file(f"network t {{\n  input 8x8x3\n  conv({call}, 1)\n}}\n")
    with pytest.raises(incdsl.SpecError, match=r"must be (greater than zero|a positive)"):
        incdsl.load(path)


def test_initializers_take_their_keyword(spec_file):
    # TF-slim writes trunc_normal(stddev=0.01); the keyword names the one parameter
    net = incdsl.load(
        spec_file("network t {\n  input 8x8x3\n  conv(8, 1, init=truncated_normal(stddev=0.01))\n"
                                "  conv(8, 1, init=truncated_normal(0.01))\n}\n"))
    assert net.layers["conv_1"].attrs["init"] == net.layers["conv_2"].attrs["init"]
    with pytest.raises(incdsl.SpecError, match="takes one argument, stddev"):
        incdsl.load(
            spec_file("network t {\n  input 8x8x3\n  conv(8, 1, init=truncated_normal(std=0.01))\n}\n"))
