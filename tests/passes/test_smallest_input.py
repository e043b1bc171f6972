"""The "smallest input this network accepts" note under a window that does not fit
(passes/min_input.py): exact by scanning up to SCAN pixels, by bisection beyond (up to LIMIT), and
no note when nothing up to LIMIT fits. Hand-worked sides."""
from __future__ import annotations

import pytest

from incdsl.passes.min_input import LIMIT, SCAN


def _err(cli, spec_file, side: int, body: str) -> str:
    code, out, err = cli("check", spec_file(f"network t() {{\n  input {side}x{side}x3\n  {body}\n}}\n"))
    assert code == 1 and out == ""
    return err


def test_the_smallest_input_through_a_stride(cli, spec_file):
    # 3x3 valid conv (-2), 3x3/2 pool (floor((s - 3) / 2) + 1), 3x3 valid conv (-2): 9 -> 7 -> 3 -> 1
    # fits; 8 -> 6 -> 2 -> 0 does not
    err = _err(cli, spec_file, 6, "conv(4, 3, pad=valid) -> maxpool(3, stride=2) -> conv(4, 3, pad=valid)")
    assert "note: the smallest input this network accepts is 9x9 (this one is 6x6)" in err


@pytest.mark.parametrize("kernel", [SCAN, SCAN + 1, 600, 2 * SCAN, 2 * SCAN + 1, LIMIT])
def test_beyond_the_scan_the_side_is_bisected_exactly(cli, spec_file, kernel):
    err = _err(cli, spec_file, 300, f"conv(4, {kernel}, pad=valid) -> gap")
    assert f"note: the smallest input this network accepts is {kernel}x{kernel} (this one is 300x300)" in err


def test_no_note_when_nothing_up_to_the_limit_fits(cli, spec_file):
    err = _err(cli, spec_file, 300, f"conv(4, {LIMIT + 1}, pad=valid) -> gap")
    assert "window does not fit" in err and "smallest input" not in err
