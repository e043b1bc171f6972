"""Memory and count sums worked by hand on small networks (passes/memory.py, passes/count.py): what
backward keeps for every kind of op the table knows (the module docstring's list, as PyTorch's
autograd saves), the forward peak with a training-only head computed early, the units `fmt_bytes`
prints at their exact boundaries, and the per-module sums `summary --depth` shows. The figures
are derived in the comments; tests/analysis/test_summary_extras.py checks a conv + pool network
and the agreement with autograd on torchvision's GoogLeNet."""
from __future__ import annotations

import pytest

import incdsl
from incdsl.ops import Count
from incdsl.passes.count import count, total
from incdsl.passes.memory import (
    fmt_bytes,
    forward_peak,
    layer_memory,
    param_bytes_by_dtype,
    training_step,
)

# One layer of every kind the memory table treats differently, on an 8x8x2 input.
EVERY_OP = """
network m() {
  input 8x8x2
  nz = normalize(0.5, 2.0)
  s = sepconv(4, 3, multiplier=3, bn=true, act=relu)
  l = lrn(3)
  r = relu
  ap = avgpool(2)
  ad = adaptive_avgpool(2)
  d = dropout(0.5)
  z = zeropad(1)
  sc = scale(2.0)
  dw = dwconv(3, pad=valid, bn=true)
  c = concat { identity; identity }
  gmp -> dense(3, act=softmax)
}
"""

# A training-only head that ends before the trunk's largest tensor: the forward peak keeps its
# output alive (an output is never freed), and leaves it out with the inference layers.
EARLY_HEAD = """
network p() {
  input 4x4x1
  a = conv(8, 1)
  train_output side = a -> gap -> dense(2)
  m = a -> maxpool(2)
  conv(16, 1) -> gap -> dense(2)
}
"""


def test_what_backward_keeps_for_each_kind_of_op(spec_file):
    net = incdsl.load(spec_file(EVERY_OP))
    mem = layer_memory(net)
    kept = {n: m.kept // 4 for n, m in mem.items()}  # float32: values, not bytes
    # normalize is not in the table: it is assumed to keep its output (8x8x2 = 128 values);
    # the input itself is read by normalize alone, which keeps no input
    assert kept["input"] == 0 and kept["nz"] == 128
    # sepconv (bn, relu): the pre-BN output (8x8x4 = 256), the depthwise output it feeds the pointwise
    # conv (8x8 x 2 channels x multiplier 3 = 384) and its relu output (256), read in place by lrn
    assert kept["s"] == 256 + 384 + 256 and mem["s"].outputs == 2 * 4 * 256
    # lrn and relu keep their outputs (256 each); avgpool keeps its input (relu's, already kept)
    assert kept["l"] == 256 and kept["r"] == 256
    # adaptive_avgpool keeps its input: avgpool's 4x4x4 = 64
    assert kept["ap"] == 64 and kept["ad"] == 0
    # dropout: a one-byte mask per value of its 2x2x4 output, its output itself not kept
    assert mem["d"].kept == 16
    # zeropad and scale keep nothing; dwconv keeps its input (scale's 4x4x4 = 64) and its pre-BN output
    # (2x2x4 = 16); concat keeps nothing, gmp its input (2x2x8 = 32); dense its input and softmax output
    assert kept["z"] == 0 and kept["sc"] == 64 and kept["dw"] == 16 and mem["dw"].outputs == 2 * 4 * 16
    assert kept["c"] == 32 and kept["gmp_1"] == 8 and mem["dense_1"].kept == 4 * 3
    assert all(mem[n].params == 4 * net.counts[n].params for n in net.layers)
    half = layer_memory(net, "bfloat16")  # 2 bytes a value and a variable
    assert half["s"].kept == 2 * (256 + 384 + 256) and half["s"].params == 2 * net.counts["s"].params
    assert half["d"].kept == 16 and type(half["d"].kept) is int  # the mask stays one byte
    # forward peak, bytes: input 512, normalize 512 (the input freed after it), then sepconv's 1,024
    # with its pre-BN copy (1,024) while normalize's output is alive; everything after is smaller
    assert forward_peak(net) == 512 + 2 * 1024
    assert forward_peak(net, "bfloat16") == (512 + 2 * 1024) // 2


# Each op after one that keeps nothing of its own, so that what it keeps shows alone.
ALONE = """
network k() {
  input 4x4x2
  a = conv(2, 1)
  r = relu
  u = affine(2.0, 1.0)
  s = scale(2.0)
  l = lrn(3)
  t = scale(0.5)
  b = bn
  p = avgpool(2)
  gap -> dense(2)
}
"""


def test_what_each_op_keeps_on_its_own(spec_file):
    mem = layer_memory(incdsl.load(spec_file(ALONE)))
    kept = {n: m.kept // 4 for n, m in mem.items()}
    # (values; every map is 4x4x2 = 32 until the pool): the conv keeps its input, not its output (no
    # activation, no batch norm: one output, not two); relu its output only; affine (not in the
    # table) its output; lrn its output and its input; a standalone bn its input; avgpool its input;
    # gap its input (2x2x2 = 8); dense its input (2) and, without an activation, not its output
    assert kept == {"input": 32, "a": 0, "r": 32, "u": 32, "s": 32, "l": 32, "t": 32, "b": 32, "p": 8,
                    "gap_1": 2, "dense_1": 0}
    assert mem["a"].outputs == 4 * 32 and mem["b"].outputs == 4 * 32
    assert all(type(m.kept) is int and type(m.outputs) is int for m in mem.values())


def test_the_forward_peak_keeps_outputs_and_frees_the_rest(spec_file):
    net = incdsl.load(spec_file(EARLY_HEAD))
    # bytes: input 64, a 512, gap 32, side 8 (an output: stays), m 128, conv_1 256, gap 64, dense 8.
    # a is read last by m, so it is alive until then: the peak is at m, 512 + 8 + 128 (input and
    # gap_1 freed after their last readers)
    assert forward_peak(net) == 512 + 8 + 128
    # the inference layers alone: no head, a freed after m
    assert forward_peak(net, names=net.inference) == 512 + 128


def test_a_training_step_by_hand(spec_file):
    net = incdsl.load(spec_file(EVERY_OP))
    t = net.total()  # 181 params, 165 of them trainable
    assert (t.params, t.trainable) == (181, 165)
    kept = sum(m.kept for m in layer_memory(net).values())
    step = training_step(net)  # batch 1, float32, SGD with momentum (one slot)
    assert (step.batch, step.params, step.gradients, step.optimizer, step.activations) == (
        1, 4 * 181, 4 * 165, 4 * 165, kept)
    step = training_step(net, batch=3, precision="bfloat16", optimizer="sgd")
    half = sum(m.kept for m in layer_memory(net, "bfloat16").values())
    assert (step.batch, step.params, step.gradients, step.optimizer, step.activations) == (
        3, 2 * 181, 2 * 165, 0, 3 * half)
    assert step.total == 2 * 181 + 2 * 165 + 3 * half


@pytest.mark.parametrize("precision, stored", [
    (None, {"float32": 4 * 181}), ("mixed_float16", {"float32": 4 * 181}),
    ("bfloat16", {"bfloat16": 2 * 181}), ("float16", {"float16": 2 * 181})])
def test_param_bytes_by_the_dtype_the_precision_stores(spec_file, precision, stored):
    net = incdsl.load(spec_file(EVERY_OP))
    args = () if precision is None else (precision,)
    assert param_bytes_by_dtype(net, *args) == stored


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.00 KiB"), (1536, "1.50 KiB"), ((1 << 20) - 1, "1024.00 KiB"),
    (1 << 20, "1.00 MiB"), (1 << 30, "1.00 GiB"), (3 << 39, "1.50 TiB"), (1 << 40, "1.00 TiB"),
    (1 << 50, "1.00 PiB"), (5 << 50, "5.00 PiB"), (-2048, "-2.00 KiB")])
def test_bytes_print_in_binary_units_from_their_exact_boundary(n, text):
    assert fmt_bytes(n) == text


def test_fmt_bytes_digits():
    assert fmt_bytes(1536, 1) == "1.5 KiB" and fmt_bytes(1 << 20, 0) == "1 MiB"


def test_module_sums_per_prefix_and_depth():
    layer = {"a/b/x": Count(1, 2, 3), "a/y": Count(10, 20, 30), "a/b/w": Count(100, 200, 300),
             "z": Count(1000, 2000, 3000)}
    # every prefix of a layer's name (the layer itself not repeated), summed field by field
    assert count(layer) == {"a": Count(111, 222, 333), "a/b": Count(101, 202, 303)}
    assert count(layer, depth=1) == {"a": Count(111, 222, 333)}
    assert count(layer, depth=2) == count(layer)
    assert total(layer) == Count(1111, 2222, 3333)
    assert total(layer, names={"a/y", "z"}) == Count(1010, 2020, 3030)


def test_summary_depth_shows_the_module_sums(spec_file, cli):
    """The same sums as the user sees them: `summary --json` blocks of nested module calls."""
    import json
    net = incdsl.load(spec_file(NESTED))
    data = json.loads(cli.ok("summary", spec_file(NESTED), "--json"))
    blocks = {b["name"]: b for b in data["blocks"]}
    inner = [c.params for n, c in net.counts.items() if n.startswith("outer_1/inner_1/")]
    both = [c.params for n, c in net.counts.items() if n.startswith("outer_1/")]
    assert blocks["outer_1/inner_1"]["params"]["total"] == sum(inner) == (3 * 4 + 4)
    assert blocks["outer_1"]["params"]["total"] == sum(both) == (3 * 4 + 4) + (4 * 4 + 4)
    rows = {r.split()[0]: r.split() for r in cli.ok("summary", spec_file(NESTED), "--depth", "1").splitlines()
            if r.startswith("outer_1")}
    assert list(rows) == ["outer_1"] and rows["outer_1"][1:4] == ["outer", "4x4x4", "36"]


NESTED = """
module inner(c) { conv(c, 1) }
module outer(c) { inner(c) -> inner(c) }
network n() {
  input 4x4x3
  outer(4) -> gap -> dense(2)
}
"""
