"""Where a residual `add` whose branches end with other channel counts points, and what its first
note says branch 1 is (passes/shapes.py): the block's input itself ("identity") or a branch of the
merge's own, wherever the merge sits (top level, named, inside a module call, inside a call inside
a call), with the calls it sits in, innermost first."""
from __future__ import annotations

import pytest

RES = "module res(c) { add { identity; conv(c, 1) -> conv(c, 1) } }\n"
TWO = "module two(c) { add { conv(c, 1); conv(c + 2, 1) } }\n"


def _err(cli, spec_file, text: str) -> str:
    code, out, err = cli("check", spec_file(text))
    assert code == 1 and out == ""
    return err


@pytest.mark.parametrize("text, first", [
    # the block's input is branch 1: its channels are set before the block
    (RES + "network t() {\n  input 8x8x4\n  conv(8, 1)\n  res(6)\n}\n",
     "branch 1 gives 8 channels: the block's input (identity), whose channels are set by 'conv_1' here"),
    # two branches of the merge's own: at the top level, named, in a call, in a call in a call
    ("network t() {\n  input 8x8x4\n  add { conv(8, 1); conv(6, 1) }\n}\n",
     "branch 1 gives 8 channels: 8x8x8, whose channels are set by 'b1/conv_1' here"),
    ("network t() {\n  input 8x8x4\n  r = add { conv(8, 1); conv(6, 1) }\n}\n",
     "branch 1 gives 8 channels: 8x8x8, whose channels are set by 'r/b1/conv_1' here"),
    (TWO + "network t() {\n  input 8x8x4\n  two(6)\n}\n",
     "branch 1 gives 6 channels: 8x8x6, whose channels are set by 'two_1/b1/conv_1' here"),
    (TWO + "module wrap(c) { two(c) }\nnetwork t() {\n  input 8x8x4\n  wrap(6)\n}\n",
     "branch 1 gives 6 channels: 8x8x6, whose channels are set by 'wrap_1/two_1/b1/conv_1' here"),
])
def test_branch_one_is_named_for_what_it_is(cli, spec_file, text, first):
    assert f"note: {first}" in _err(cli, spec_file, text)


def test_the_calls_around_the_merge_innermost_first(cli, spec_file):
    err = _err(cli, spec_file,
               TWO + "module wrap(c) { two(c) }\nnetwork t() {\n  input 8x8x4\n  wrap(6)\n}\n")
    lines = err.splitlines()
    assert lines[0].endswith("t.inc:1:35: error: add inputs disagree on channels: 6 vs 8")
    notes = [line for line in lines if line.startswith("note: in module")]
    assert [n.split(" (")[0] for n in notes] == ["note: in module two, called as 'wrap_1/two_1'",
                                                  "note: in module wrap, called as 'wrap_1'"]
    assert notes[0].endswith("t.inc:2:18)") and notes[1].endswith("t.inc:5:3)")
