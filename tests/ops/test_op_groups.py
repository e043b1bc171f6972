"""The op groups of incdsl/ops/groups.py hold what they promise, checked against the op table
(issue 26, item 2): a new op that belongs to a group, or an op whose arguments change, fails here
instead of being treated as an outsider in the one place that forgot it."""

from incdsl.ops import DEFAULTS, OPS, apply, groups, normalize

# a value for every required argument, so each op's rule can run on a sample input
REQUIRED = {"filters": 6, "units": 6, "rate": 0.1, "fn": "relu", "factor": 0.5, "groups": 2, "size": 2,
            "kernel": 3, "pad": 1}
MAP = (8, 8, 4)


def _attrs(op: str) -> dict:
    needs = {k: v for k, v in REQUIRED.items() if k in DEFAULTS[op] and not _has_default(op, k)}
    if "multiplier" in DEFAULTS[op]:  # a depthwise conv of multiplier 1 would seem to keep channels
        needs["multiplier"] = 2
    return normalize(OPS[op], needs)


def _has_default(op: str, arg: str) -> bool:
    from incdsl.ops import REQUIRED as MISSING
    return DEFAULTS[op][arg] is not MISSING


def test_every_member_is_an_op():
    for name in ("CONVS", "WEIGHTED", "POOLS", "WINDOWED", "KEEPS_CHANNELS"):
        group = getattr(groups, name)
        assert isinstance(group, frozenset) and group and group <= set(OPS), name


def test_the_convolutions_are_the_ops_with_a_kernel_and_a_conv_tail():
    tail = {"kernel", "stride", "pad", "dilation", "bias", "bn", "bn_eps", "act", "weight_decay"}
    assert groups.CONVS == {op for op in OPS if tail <= set(DEFAULTS[op])} == {"conv", "dwconv", "sepconv"}


def test_weighted_ops_are_the_ones_with_a_kernel_weight():
    with_kernel = set()
    for op in OPS:
        if op == "input":
            continue
        rule = apply(OPS[op], _attrs(op), [(4 * 4 * 4,)] if op == "dense" else [MAP] * (OPS[op].inputs or 2))
        if any(k.endswith("kernel") for k in rule.weights):
            with_kernel.add(op)
    assert groups.WEIGHTED == with_kernel


def test_windowed_ops_are_the_ones_with_kernel_stride_and_pad():
    assert groups.WINDOWED == {op for op in OPS if {"kernel", "stride", "pad"} <= set(DEFAULTS[op])}
    assert groups.POOLS == groups.WINDOWED - groups.CONVS


def _follows_input_channels(op: str) -> bool:
    """Run with two widths of input: does the output's channel count follow the input's?"""
    outs = []
    for c in (4, 8):
        shape = (8, 8, c)
        ins = [shape] * (OPS[op].inputs or 2)
        if op == "dense":
            ins = [(c,)]
        elif op == "multiply":
            ins = [shape, (c,)]
        outs.append(apply(OPS[op], _attrs(op), ins).out[-1])
    return outs == [4, 8]


def test_keeps_channels_is_the_ops_whose_output_has_their_inputs_channels():
    """Shape errors walk up through these to the layer that set a branch's channels. Left out:
    global pooling (a vector: the walk stops at the map's end), and normalize and affine, which
    have never been in the set (adding them would move a caret in an error message)."""
    follows = {op for op in OPS if op != "input" and _follows_input_channels(op)}
    assert groups.KEEPS_CHANNELS <= follows
    assert follows - groups.KEEPS_CHANNELS == {"gap", "gmp", "normalize", "affine"}
