"""Every argument kind (incdsl/ops/kinds.py) at its edges: the normalized value a spec's argument
becomes, or the message `incdsl check` prints after "argument 'x' of conv" when it is wrong.
Edges are the documented limits: a count of at least 1 and at most MAX_DIM, sizes of 0 where
`size0` allows them, a rate below 1, an epsilon above 0 down to POSITIVE_MIN, a slope and a decay
of 0 or more (Keras' LeakyReLU and regularizers refuse a negative one), a finite decay."""
from __future__ import annotations

import numpy as np
import pytest

from incdsl.ops.kinds import KINDS, MAX_DIM, POSITIVE_MIN, SPEC_STRING, Symbol, show_value

W = Symbol  # a bare word of the spec (`same`, `relu`)
ACTS = ("relu, relu6, sigmoid, hard_sigmoid, tanh, softmax, log_softmax, silu, gelu, elu, leaky_relu, "
        "swish")
INITS = ("glorot_uniform, glorot_normal, he_normal, he_uniform, lecun_normal, lecun_uniform, zeros, ones, "
         "truncated_normal, random_normal, random_uniform")


@pytest.mark.parametrize("kind, value, normalized", [
    ("count", 3, 3), ("count", MAX_DIM, MAX_DIM),
    ("size", 3, (3, 3)), ("size", (3, 5), (3, 5)),
    ("size0", 0, (0, 0)), ("size0", (0, 2), (0, 2)), ("size0", (2, 0), (2, 0)),
    ("pad", W("same"), "same"), ("pad", "valid", "valid"), ("pad", 0, (0, 0, 0, 0)), ("pad", 2, (2, 2, 2, 2)),
    ("pad", (1, 2), (1, 1, 2, 2)), ("pad", (1, 2, 3, 4), (1, 2, 3, 4)), ("pad", (0, 0), (0, 0, 0, 0)),
    ("act", None, None), ("act", W("none"), None), ("act", W("linear"), None), ("act", W("relu"), "relu"),
    ("act", W("swish"), "silu"),
    ("fit", None, None), ("fit", W("none"), None), ("fit", W("shrink"), "shrink"), ("fit", "map", "map"),
    ("bool", True, True), ("bool", False, False),
    ("positive", 1e-3, 1e-3), ("positive", POSITIVE_MIN, POSITIVE_MIN),
    ("rate", 0, 0.0), ("rate", 0.999999, 0.999999),
    ("any_float", -3, -3.0), ("slope", 0, 0.0), ("slope", 1.5, 1.5),
    ("decay", 0, 0.0), ("decay", 1e-4, 1e-4),
    ("floats", 0.5, (0.5,)), ("floats", (0.5, -1), (0.5, -1.0)), ("positives", (0.5, 2), (0.5, 2.0)),
    ("init", W("he_normal"), "he_normal"), ("init", "truncated_normal(0.1)", "truncated_normal(0.1)"),
])
def test_a_good_value_normalizes(kind, value, normalized):
    out = KINDS[kind](value)
    assert out == normalized and type(out) is type(normalized)
    assert not isinstance(out, Symbol)  # a plain str: JSON and reports show it as a word


@pytest.mark.parametrize("kind, value, message", [
    ("count", 0, "must be at least 1, got 0"),
    ("count", True, "must be an integer, got true"),
    ("count", 2.0, "must be an integer, got 2.0"),
    ("count", 2.5, "must be an integer, got 2.5"),
    ("count", "3", 'must be an integer, got "3"'),
    ("count", W("n"), "must be an integer, got the word 'n'"),
    ("count", np.float64(2.5), "must be an integer, got np.float64(2.5)"),  # from Python: its repr
    ("count", (1, "a"), 'must be an integer, got (1, "a")'),
    ("count", MAX_DIM + 1, "1,048,577 is absurdly large (the limit is 1,048,576)"),
    ("size", (3, 5, 7), "must be one size or two (HxW), got 3"),
    ("size", (0, 5), "must be at least 1, got 0"), ("size", (5, 0), "must be at least 1, got 0"),
    ("size", 0, "must be at least 1, got 0"), ("size0", -1, "must be at least 0, got -1"),
    ("size0", (0, -1), "must be at least 0, got -1"), ("size0", (-1, 0), "must be at least 0, got -1"),
    ("pad", W("full"), "must be same, valid, a number or a tuple, got full"),
    ("pad", "full", "must be same, valid, a number or a tuple, got full"),
    ("pad", -1, "must be at least 0, got -1"), ("pad", (0, -1), "must be at least 0, got -1"),
    ("pad", (1, 2, 3), "a padding tuple is (h, w) or (top, bottom, left, right)"),
    ("act", W("rel"), f"must be none or one of {ACTS}, got the word 'rel'"),
    ("act", 3, f"must be none or one of {ACTS}, got 3"),
    ("fit", W("grow"), "must be none, shrink or map, got the word 'grow'"),
    ("fit", 1, "must be none, shrink or map, got 1"),
    ("bool", 1, "must be true or false, got 1"),
    ("positive", 0, "must be greater than 0, got 0"), ("positive", -1.0, "must be greater than 0, got -1"),
    ("rate", 1.0, "must be between 0 and 0.999999, got 1"),
    ("rate", -0.1, "must be between 0 and 0.999999, got -0.1"),
    ("any_float", "x", 'must be a number, got "x"'), ("any_float", True, "must be a number, got true"),
    ("slope", -0.1, "must be at least 0 (Keras' LeakyReLU refuses a negative slope), got -0.1"),
    ("decay", -1e-4, "must be a finite number, 0 or more, got -0.0001"),
    ("decay", float("inf"), "must be a finite number, 0 or more, got inf"),
    ("decay", float("nan"), "must be a finite number, 0 or more, got nan"),
    ("decay", "x", 'must be a number, got "x"'),
    ("positives", (0.5, 0), "must be greater than 0, got 0"),
    ("positives", -1, "must be greater than 0, got -1"),
    ("init", W("he_norm"), f"unknown initializer 'he_norm' (known: {INITS})"),
    ("init", W("truncated_normal"), "truncated_normal needs its stddev: e.g. truncated_normal(0.1)"),
    ("init", 3, f"must be an initializer ({INITS}), got 3"),
])
def test_a_bad_value_says_what_is_wrong(kind, value, message):
    with pytest.raises(ValueError) as e:
        KINDS[kind](value)
    assert str(e.value) == message


def test_show_value_writes_values_in_the_languages_words():
    assert show_value((3, 5)) == "3x5"  # a tuple is a size by default
    # not as sizes: each item in the same style, strings as the caller writes them, floats by `floats`
    assert show_value((1, "a", (0.1 + 0.2, W("b"))), sizes=False, strings=SPEC_STRING, floats="g") == \
        '(1, "a", (0.3, the word \'b\'))'
    assert show_value((np.int64(3), 0.5), sizes=False, other=repr) == "(np.int64(3), 0.5)"
    assert show_value(0.1 + 0.2) == "0.30000000000000004" and show_value(0.1 + 0.2, floats="g") == "0.3"
    assert show_value(np.float64(2.5), other=repr) == "np.float64(2.5)"
    assert (show_value(None), show_value(False), show_value("he")) == ("none", "false", "'he'")
