"""Budgets beyond one knob (issue 18, items 1, 3 and 4 of `fit`): compound scaling, several budgets
with the Pareto set of a grid, repeat counts of the Inception-ResNet specs, training-step memory and
the roofline latency bound as budgets. Checked against hand computations and independent builds."""
from __future__ import annotations

import json
import math

import incdsl
from incdsl.cli.main import main
from incdsl.passes.memory import training_step

from conftest import SPECS


def test_compound_scaling_googlenet_5M(cli):
    """The issue's case: the largest phi with width = 1.1^phi and size = 224 * 1.15^phi (rounded)."""
    argv = ("fit", SPECS / "googlenet.inc", "--params", "5M", "--scale", "width=1.1,size=1.15")
    data = json.loads(cli.ok(*argv, "--json"))
    spec = incdsl.Spec(SPECS / "googlenet.inc")
    build = lambda phi: spec.build(width=1.0 * 1.1 ** phi, size=round(224 * 1.15 ** phi)).total().params
    assert build(data["phi"]) == data["params"]["total"] <= 5_000_000 < build(data["next"]["phi"])
    assert data["next"]["phi"] == math.nextafter(data["phi"], 0)  # adjacent floats: exact under rounding
    # the short phi builds the same network as the exact edge, the next short one the next network
    assert build(
        data["short"]) == build(data["phi"]) and build(data["next"]["short"]) == build(data["next"]["phi"])
    assert data["parameters"]["size"] == round(224 * 1.15 ** data["short"]) == 126
    text = cli.ok(*argv)
    assert f"phi = {data['short']!r}: width=0.6772 size=126: 4,976,037 params" in text and "<- fits" in text
    assert f"next step: phi = {data['next']['short']!r}: width=0.6773 size=127: 5,333,625 params" in text


def test_inception_resnet_repeat_counts_and_depth_scaling(cli):
    spec = incdsl.Spec(SPECS / "inception_resnet_v2.inc")
    full = spec.build().total().params
    # one Inception-ResNet-A block of v2 by hand (BN without scale: beta trainable, 2 statistics):
    # 1x1 320->32 (10,240 + 96) three times, 3x3 32->32 (9,216 + 96), 3x3 32->48 (13,824 + 144),
    # 3x3 48->64 (27,648 + 192), linear 1x1 128->320 with bias (40,960 + 320) = 123,408
    block_a = 3 * (10_240 + 96) + 9_216 + 96 + 13_824 + 144 + 27_648 + 192 + 40_960 + 320
    assert full - spec.build(n35=3).total().params == 7 * block_a
    net = spec.build(depth=0.5)  # round(10/2), round(20/2), round(9/2) = 5, 10, 4 (halves to even)
    calls = [b.module for b in net.graph.blocks if b.name.count("/") == 0]
    assert (calls.count("resnet_a"), calls.count("resnet_b"), calls.count("resnet_c")) == (5, 10, 4 + 1)
    data = json.loads(cli.ok("fit", SPECS / "inception_resnet_v2.inc", "--params", "30M", "--inference",
                          "--scale", "depth=1.2,width=1.1", "--json"))
    phi = data["short"]
    net = spec.build(depth=1.2 ** phi, width=1.1 ** phi)
    assert net.total(inference=True).params == data["params"]["total"] <= 30_000_000
    assert spec.build(depth=1.2 ** data["next"]["short"], width=1.1 ** data["next"]["short"]).total(
        inference=True).params > 30_000_000


def test_several_budgets_give_the_pareto_set(cli):
    argv = ("fit", SPECS / "inception_v3.inc", "--params", "<=", "10M", "--macs", "<=", "2G",
            "--vary", "width=0.5:1.2:0.1", "--vary", "size=160:320:32")
    data = json.loads(cli.ok(*argv, "--json"))
    assert data["tried"] == 8 * 6
    spec = incdsl.Spec(SPECS / "inception_v3.inc")
    fits = {}
    for w in ("0.5", "0.6", "0.7", "0.8", "0.9", "1.0", "1.1", "1.2"):
        for s in range(160, 321, 32):
            t = spec.build(width=float(w), size=s).total()
            if t.params <= 10_000_000 and t.macs <= 2_000_000_000:
                fits[(float(w), s)] = t
    front = {(float(w), s) for w, s in fits if not any(a >= float(w) and b >= s and (a, b) != (float(w), s)
                                                       for a, b in fits)}
    got = {(float(p["set"]["width"]), int(p["set"]["size"])) for p in data["pareto"]}
    assert got == front == {(0.5, 320), (0.6, 288)}
    assert data["fit"] == len(fits)
    text = cli.ok(*argv)
    assert "Pareto set (2:" in text and "6,488,824" in text


def test_memory_budget_batch_size_width(cli):
    spec = SPECS / "inception_v3.inc"
    net = incdsl.load(spec)
    data = json.loads(cli.ok("fit", spec, "--memory", "16GiB", "--vary", "batch", "--json"))
    b = data["value"]
    assert training_step(net, b).total <= 16 * 2**30 < training_step(net, b + 1).total
    assert data["next"]["value"] == b + 1 and data["memory"] == training_step(net, b).total
    # the step by hand: params + gradients + one momentum slot, 4 bytes each, plus b x kept per image
    per_image = training_step(net, 1).activations
    assert data["memory"] == 4 * (23_851_784 + 2 * 23_817_352) + b * per_image
    for name, value in (("size", int), ("width", float)):
        d = json.loads(cli.ok("fit", spec, "--memory", "16GiB", "--vary", name, "--batch", "32", "--json"))
        fit_net = incdsl.load(spec, **{name: d["value"]})
        over = incdsl.load(spec, **{name: d["next"]["value"]})
        assert training_step(fit_net, 32).total <= 16 * 2**30 < training_step(over, 32).total
    assert "memory 15.99 GiB  <- fits" in cli.ok("fit", spec, "--memory", "16GiB", "--vary", "batch")


def test_latency_budget_and_device_profiles(cli):
    # a conv by hand: 8x8x3 -> conv(16, 3, bias=false) on 8x8: 8*8*16*27 = 27,648 MACs, 432 weights
    from incdsl.cli.commands.flag_values import parse_device
    dev = parse_device("1T,1G")  # 1e12 FLOP/s, 1e9 B/s: memory bound
    assert (dev.flops, dev.bandwidth) == (1e12, 1e9)
    assert parse_device("h200").bandwidth == 4.8e12
    data = json.loads(cli.ok("fit", SPECS / "inception_v3.inc", "--latency", "10ms", "--vary", "batch",
                          "--device", "h200", "--precision", "mixed_bfloat16", "--json"))
    from incdsl.analysis.roofline import DEVICES, network_bound
    net = incdsl.load(SPECS / "inception_v3.inc")
    b = data["value"]
    t = lambda n: network_bound(net, DEVICES["h200"], n, "mixed_bfloat16")
    assert t(b) <= 0.010 < t(b + 1) and data["latency"] == t(b)
    # Inception v3 is compute bound on an H200: the bound is near 2 x MACs x batch / peak
    assert t(b) >= 2 * 5_713_216_096 * b / 989e12


def test_budget_usage_errors(capsys):
    spec = str(SPECS / "googlenet.inc")
    for argv, words in ((["--memory", "16", "--vary", "batch"], "a number and a unit"),
                        (["--params", "5M", "--vary", "batch"], "--vary batch needs a --memory or --latency"),
                        (["--params", "5M", "--scale", "width=1"], "must be above 1"),
                        (["--params", "5M", "--scale", "widht=1.1"], "has no parameter 'widht'"),
                        (["--latency", "5ms", "--vary", "batch", "--device", "fast"], "give a profile"),
                        (["--params", "<=", "5M", "6M", "--vary", "width"], "expects one limit")):
        assert main(["fit", spec] + argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (argv, err)
    assert main(["fit", spec, "--memory", "1KiB", "--vary", "batch"]) == 1  # an answer, not bad usage
    assert "nothing fits: batch=1 gives 190.11 MiB" in capsys.readouterr().err
