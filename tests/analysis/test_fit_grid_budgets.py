"""The new-user review of `incdsl fit` (issue 18 fixes): each test runs the exact command the review
names and checks the answer against independent builds (incdsl.load), not against fit's own output."""
from __future__ import annotations

import json

import pytest

import incdsl
from incdsl.passes.memory import training_step

from conftest import SPECS

V3 = str(SPECS / "inception_v3.inc")


def test_batch_in_a_multi_parameter_grid(cli):
    argv = ["fit", V3, "--memory", "16GiB", "--vary", "batch=64,128,256", "--vary", "width=0.5,1.0"]
    code, out, err = cli(*argv, "--json")
    assert code == 0, err
    data = json.loads(out)
    fits = {}
    for w in (0.5, 1.0):
        net = incdsl.load(V3, width=w)
        for b in (64, 128, 256):
            if training_step(net, b).total <= 16 * 2**30:
                fits[(b, w)] = training_step(net, b).total
    assert data["fit"] == len(fits) == 5
    got = {(p["set"]["batch"], p["set"]["width"]): p["memory"] for p in data["pareto"]}
    assert got == {k: fits[k] for k in ((128, 1.0), (256, 0.5))}
    assert all(isinstance(v, (int, float)) for p in data["pareto"] for v in p["set"].values())  # numbers
    code, out, err = cli(*argv)
    assert code == 0 and "batch  width" in out and "12.03 GiB" in out


def test_fits_and_over_print_different_amounts(cli):
    code, out, err = cli("fit", V3, "--latency", "10ms", "--vary", "width", "--batch", "64")
    assert code == 0, err
    fits = next(l for l in out.splitlines() if l.endswith("<- fits"))
    over = next(l for l in out.splitlines() if l.endswith("<- over budget"))
    amount = lambda l: l.rsplit("latency ", 1)[1].split("  <-")[0]
    assert amount(fits) != amount(over) and amount(over) != "10 ms"
    assert float(amount(fits).split()[0]) <= 10 < float(amount(over).split()[0])
    assert "(--batch 64)" in out.splitlines()[0]  # the header echoes what the budgets assume
    code, out, err = cli("fit", V3, "--memory", "16GiB", "--vary", "width", "--batch", "32")
    over = next(l for l in out.splitlines() if l.endswith("<- over budget"))
    value = float(over.rsplit("memory ", 1)[1].split()[0])
    assert value > 16 and "16.00 GiB  <- over" not in over


def test_grid_point_that_does_not_build_does_not_fit(cli):
    code, out, err = cli("fit", V3, "--params", "10M", "--vary", "size=10,299", "--vary", "width=1")
    # size=299 gives 23.9M params: nothing fits, an answer (exit 1), saying why size=10 is out
    assert code == 1 and out == ""
    assert "nothing fits" in err and "size=10, width=1 does not build" in err and "Traceback" not in err
    code, out, err = cli("fit", V3, "--params", "30M", "--vary", "size=10,299", "--vary", "width=1")
    assert code == 0, err
    assert "does not build, so does not fit: size=10, width=1:" in out and "23,851,784" in out


def test_empty_pareto_set_and_single_vary_agree(cli):
    grid = cli("fit", V3, "--params", "1M", "--vary", "width=0.5,1.0", "--vary", "size=299")
    single = cli("fit", V3, "--params", "1k", "--vary", "width")
    for code, out, err in (grid, single):
        assert code == 1 and out == "" and err.startswith("incdsl fit: nothing fits")
    assert incdsl.load(V3, width=0.5).total().params > 1_000_000  # the grid's smallest really is over


def test_vary_usage_errors(cli):
    for argv, words in (
            (["--params", "30M", "--vary", "width=0.5", "--vary", "width=0.6"],
             "--vary width is given twice"),
            (["--params", "30M", "--vary", "width=1.2:0.5:0.1", "--vary", "size=299"],
             "--vary width=1.2:0.5:0.1"),
            (["--params", "5M", "--scale", "width=1.1", "--min", "1"], "--min and --max"),
            (["--memory", "1GiB", "--vary", "batch", "--batch", "8"], "--batch 8 and --vary batch"),
            (["--memory", "1GiB", "--vary", "batch=1,2", "--vary", "width=1", "--batch", "8"],
             "--batch 8 and --vary"),
            (["--params", "5M", "--scale", "width=0.9"], "must be above 1"),
            (["--params", "5M", "--scale", "width=1.0"], "must be above 1"),
            (["--memory", "-1GiB", "--vary", "width"], "--memory -1GiB: the budget must be positive")):
        code, out, err = cli("fit", V3, *argv)
        assert code == 2 and words in err and "--sweep" not in err and "Traceback" not in err, (argv, err)
    assert "expected at least one argument" not in err


def test_memory_and_latency_units(cli):
    code, out, err = cli("fit", V3, "--memory", "1PiB", "--vary", "batch", "--json")
    assert code == 0, err
    b = json.loads(out)["value"]
    net = incdsl.load(V3)
    assert training_step(net, b).total <= 2**50 < training_step(net, b + 1).total
    code, out, err = cli("fit", V3, "--latency", "1ns", "--vary", "width")
    assert code == 1 and "over the budget of 1 ns" in err  # accepted; nothing is that fast


@pytest.mark.slow  # ~11 s: googlenet at 1,288 px for the 2G budget
def test_compound_scaling_budget_edges(cli):
    code, out, err = cli("fit", SPECS / "googlenet.inc", "--params", "1k", "--scale", "width=1.1,size=1.15")
    assert code == 1 and "below the smallest network that builds" in err
    # 1T: since main's limit of 2^31 params a network, none that big builds: the budget cannot bind
    code, out, err = cli("fit", SPECS / "googlenet.inc", "--params", "1T", "--scale", "width=1.1,size=1.15")
    assert code == 2 and "every phi whose network builds fits" in err
    # 2G: width 3.2966 fits, 3.2969 is over (4 significant digits, 3.297, would print both the same)
    code, out, err = cli("fit", SPECS / "googlenet.inc", "--params", "2G", "--scale", "width=1.1,size=1.15")
    assert code == 0, err
    fit_w = out.split("<- fits")[0].split("width=")[1].split()[0]
    next_w = out.split("next step:")[1].split("width=")[1].split()[0]
    assert fit_w != next_w
    spec = SPECS / "inception_resnet_v2.inc"
    argv = ["fit", spec, "--params", "60M", "--scale", "depth=1.2,width=1.1", "--set", "classes=1000"]
    code, out, err = cli(*argv, "--json")
    data = json.loads(out)
    assert "value" not in data and "value" not in data["next"]
    net = incdsl.load(spec, **data["parameters"])
    calls = [b.module for b in net.graph.blocks if "/" not in b.name]
    reps = data["repeats"]
    assert (reps["block35"], reps["block17"],
            reps["block8"] + 1) == tuple(calls.count(m) for m in ("resnet_a", "resnet_b", "resnet_c"))
    # block8_10, the last call, is not the repeat
    assert reps["block8"] == round(9 * data["parameters"]["depth"])
    assert reps["block35"] == round(10 * data["parameters"]["depth"]) == 11
    code, out, err = cli(*argv)
    assert "(classes=1000)" in out.splitlines()[0]
    assert f"repeats block35 x{reps['block35']}, block17 x{reps['block17']}, block8 x{reps['block8']}" in out
