"""One copy of each helper (issue 19 item 7): the value, shape and exception texts and TF's SAME
split each live in one place, and the differences between the messages that use them are
parameters, each pinned here by the message text it keeps."""
from __future__ import annotations

import numpy as np
import pytest

import incdsl
from incdsl.errors import SpecError
from incdsl.ir import window
from incdsl.ops import Symbol, show_value
from incdsl.text import SCALAR, first_line, shape_text


def test_show_value_modes_keep_each_message():
    assert [show_value(v) for v in (True, None, Symbol("avg"), (3, 3), "it's", 0.5, 7)] == [
        "true", "none", "the word 'avg'", "3x3", '"it\'s"', "0.5", "7"]  # elaboration's messages
    from incdsl.ops.kinds import _show  # the argument checks: tuples and strings as a spec writes them
    assert [_show(v) for v in ((1, 1), "x", np.int64(3))] == ["(1, 1)", '"x"', "np.int64(3)"]
    # depth(), make_divisible()
    assert [show_value(v, floats="g") for v in (1e-5, 2.0, 3)] == ["1e-05", "2", "3"]


def test_messages_that_use_them_read_as_before():
    with pytest.raises(SpecError, match=r"got \(1, 1\)"):
        incdsl.loads("network t() {\n  input 8x8x3\n  conv(4, 3, act=(1, 1))\n}\n")
    with pytest.raises(SpecError) as e:
        incdsl.loads("network t() {\n  input 8x8x3\n  conv(depth(32, -0.5), 3)\n}\n")
    assert e.value.message == "depth(): multiplier must be greater than zero, got -0.5"


def test_shape_text_and_first_line():
    assert (shape_text((35, 35, 288)), shape_text(()), shape_text((), SCALAR)) == ("35x35x288", "",
                                                                                   "a scalar")
    assert first_line(ValueError("\n  bad thing\nmore pages")) == "bad thing"
    assert (first_line(ValueError()), first_line(ValueError(), "?")) == ("ValueError", "?")


def test_same_split_is_tf_same_padding():
    # TF's rule written out (tf.nn.convolution, padding='SAME'): out = ceil(n / s), the total pad
    # that gives it, the odd pixel after; the ONNX importer recognises auto pads with it
    for n in range(1, 40):
        for k in (1, 2, 3, 5, 7):
            for s in (1, 2, 3):
                for d in (1, 2):
                    out = -(-n // s)
                    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
                    assert window.same_split(n, k, s, d, out) == (total // 2, total - total // 2)
