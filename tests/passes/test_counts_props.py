"""Property test (issue 29, item 2): parameter counts of randomly generated small specs equal
Keras' `count_params()` (total, trainable and non-trainable) on the model the Keras backend builds.

The specs are .inc texts made of conv / sepconv / dwconv / pools / bn / concat / add blocks and a
dense head, with random filters, kernels, strides, multipliers, biases and batch norms; "same"
padding keeps every size positive. A Keras model is built once per example (no weights drawn)."""
from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import incdsl

filters = st.integers(1, 5)
kernels = st.sampled_from([1, 2, 3, (1, 3), (3, 1)])
strides = st.sampled_from([1, 1, 2])
flags = st.sampled_from(["", ", bn=true", ", bias=false", ", bn=true, bias=false",
                         ", bn=true, bn_scale=false"])


def _k(k) -> str:
    return str(k) if isinstance(k, int) else f"({k[0]}, {k[1]})"


@st.composite
def layers(draw) -> str:
    """One random layer or block, as spec text (any input channel count works for each)."""
    kind = draw(st.sampled_from(["conv", "sepconv", "dwconv", "pool", "bn", "concat", "add", "grouped"]))
    f, k, s, extra = draw(filters), _k(draw(kernels)), draw(strides), draw(flags)
    if kind == "conv":
        return f"conv({f}, {k}, stride={s}{extra})"
    if kind == "grouped":  # groups must divide both channel counts: a 1x1 to 2 channels first
        return f"conv(2, 1) -> conv({2 * f}, {k}, groups=2{extra})"
    if kind == "sepconv":
        return f"sepconv({f}, {k}, stride={s}, multiplier={draw(st.integers(1, 3))}{extra})"
    if kind == "dwconv":
        return f"dwconv({k}, stride={s}, multiplier={draw(st.integers(1, 3))}{extra})"
    if kind == "pool":
        return f"{draw(st.sampled_from(['maxpool', 'avgpool']))}({k}, stride={s}, pad=same)"
    if kind == "bn":
        return f"bn(scale={draw(st.sampled_from(['true', 'false']))})"
    if kind == "concat":
        return (f"concat {{ conv({f}, 1{extra}); sepconv({draw(filters)}, {k}); "
                f"maxpool(3, stride=1, pad=same) }}")
    return f"add {{ conv({f}, 1); conv({f}, {k}{extra}); dwconv(1) -> conv({f}, 1) }}"


@st.composite
def specs(draw) -> str:
    h, w, c = draw(st.integers(3, 9)), draw(st.integers(3, 9)), draw(st.integers(1, 4))
    body = draw(st.lists(layers(), min_size=1, max_size=4))
    head = draw(st.sampled_from(["gap -> dense({n})", "flatten -> dense({n}, bias=false)",
                                 "gmp -> dense({n}, act=softmax)"])).format(n=draw(st.integers(1, 6)))
    lines = "\n  ".join(body)
    return f"network r() {{\n  input {h}x{w}x{c}\n  {lines}\n  {head}\n}}\n"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_counts_equal_keras_count_params(text):
    net = incdsl.loads(text)
    model = net.to_keras(seed=None)
    total = net.total()
    count = lambda ws: sum(math.prod(v.shape) for v in ws)  # noqa: E731
    assert (total.params, total.trainable, total.non_trainable) == (
        model.count_params(), count(model.trainable_weights), count(model.non_trainable_weights)), text


def test_counts_add_field_by_field():
    # found by tools/mutation.sh ops: nothing in the ops tests added two counts' MACs
    from incdsl.ops import Count
    total = Count(1, 2, 30) + Count(4, 5, 60)
    assert (total.trainable, total.non_trainable, total.macs, total.params) == (5, 7, 90, 12)
