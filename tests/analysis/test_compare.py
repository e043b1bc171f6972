"""`incdsl compare` and `incdsl fit`: counts and deltas against hand-worked numbers, grids, the fit
boundary, every output format, plots, and exit codes. Front end only (matplotlib for the plots)."""
from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET

import pytest

import incdsl
from incdsl.analysis import compare_out
from incdsl.analysis import sweep as cmp
from incdsl.cli.commands.flag_values import parse_budget, parse_sweep
from incdsl.errors import UsageError

from conftest import SPECS

# A network small enough to count by hand. Input 8x8x3; blk(c) is concat{conv(c, 1); conv(c, 3)}
# with 'same' padding and biases, so its output is 8x8x(2c):
#   blk(c) on 3 channels:  params (3c + c) + (27c + c) = 32c;   MACs 64 * (3c + 27c) = 1920c
#   blk(2c) on 2c channels: params (2c*2c + 2c) + (18c*2c + 2c) = 40c^2 + 4c;   MACs 64 * 40c^2 = 2560c^2
#   dense(10) on C channels: params 10C + 10;  MACs 10C
TINY = """
module blk(c) {
  concat { conv(c, 1); conv(c, 3) }
}
network t(c=8, deep=false, width=1.0, classes=10) {
  variant small(c=4)
  variant wide(width=2.0, deep=true)
  input 8x8x3
  a = blk(int(c * width))
  if deep { b = blk(int(2 * c * width)) }
  gap -> dense(classes)
}
"""
# (c, deep) -> (params, MACs, depth), from the formulas above; depth counts the dense layer too
HAND = {
    (4, False): (128 + 90, 7680 + 80, 2),                 # 218, 7,760
    (4, True): (128 + 656 + 170, 7680 + 40960 + 160, 3),  # 954, 48,800
    (8, False): (256 + 170, 15360 + 160, 2),              # 426, 15,520
    (8, True): (256 + 2592 + 330, 15360 + 163840 + 320, 3),  # 3,178, 179,520
}


@pytest.fixture
def tiny(spec_file):
    return spec_file(TINY)


def as_json(cli, *argv):
    return json.loads(cli.ok(*argv, "--json"))


# --- counts, grids, deltas ------------------------------------------------------------------

def test_grid_is_cartesian_and_matches_hand_counts(tiny, cli):
    data = as_json(cli, "compare", tiny, "--sweep", "c=4,8", "--sweep", "deep=false,true")
    rows = data["rows"]
    assert [r["label"] for r in rows] == ["c=4 deep=false", "c=4 deep=true", "c=8 deep=false",
                                          "c=8 deep=true"]
    for r in rows:
        key = (r["set"]["c"], r["set"]["deep"])
        params, macs, depth = HAND[key]
        assert r["params"] == {"total": params, "trainable": params, "non_trainable": 0}
        assert r["macs"] == macs and r["depth"] == depth
        assert r["inference"] == {"params": r["params"], "macs": macs}  # no training-only heads
        assert r["outputs"] == {"dense_1": [10]}
        assert r["spec"] == str(tiny)


def test_block_deltas_and_absent_blocks(tiny, cli):
    data = as_json(cli, "compare", tiny, "--variant", "deep:deep=true", "--variant", "flat:deep=false")
    blocks = {b["name"]: b for b in data["blocks"]}
    assert list(blocks) == ["a", "b", cmp.REST]
    a_deep, a_flat = blocks["a"]["variants"]
    assert a_deep["params"]["total"] == a_flat["params"]["total"] == 256
    assert a_flat["delta"] == {"params": 0, "macs": 0}
    b_deep, b_flat = blocks["b"]["variants"]
    assert b_deep["present"] and b_deep["params"]["total"] == 2592 and b_deep["macs"] == 163840
    assert not b_flat["present"] and b_flat["params"] is None and b_flat["macs"] is None
    assert b_flat["delta"] == {"params": -2592, "macs": -163840}
    rest_flat = blocks[cmp.REST]["variants"][1]
    # the rest is the dense layer: 32 -> 10 (330 params, 320 MACs) against 16 -> 10 (170, 160)
    assert rest_flat["params"]["total"] == 170 and rest_flat["delta"] == {"params": -160, "macs": -160}
    # the blocks add up to the totals
    for i, row in enumerate(data["rows"]):
        cells = [b["variants"][i] for b in data["blocks"] if b["variants"][i]["present"]]
        assert sum(c["params"]["total"] for c in cells) == row["params"]["total"]
        assert sum(c["macs"] for c in cells) == row["macs"]


def test_blocks_align_by_name_across_specs(spec_file, cli):
    one = spec_file("module m(c) { conv(c, 1) }\nnetwork one { input 4x4x2\n a = m(2)\n b = m(3) }",
                    "one.inc")
    two = spec_file(
        "module m(c) { conv(c, 1) }\nnetwork two { input 4x4x2\n a = m(2)\n x = m(5)\n b = m(3) }", "two.inc")
    data = as_json(cli, "compare", one, two)
    assert [r["label"] for r in data["rows"]] == ["one", "two"]
    assert [b["name"] for b in data["blocks"]] == ["a", "x", "b", cmp.REST]
    x = data["blocks"][1]["variants"]
    assert not x[0]["present"] and x[1]["present"]
    assert x[1]["params"]["total"] == 2 * 5 + 5 and x[1]["delta"]["params"] == 15  # absent counts as 0
    b = data["blocks"][2]["variants"]  # 2->3 in one; 5->3 in two
    assert b[0]["params"]["total"] == 9 and b[1]["params"]["total"] == 18 and b[1]["delta"]["params"] == 9


def test_blocks_align_by_position(spec_file, cli):
    one = spec_file("module m(c) { conv(c, 1) }\nnetwork one { input 4x4x2\n a = m(2)\n b = m(3) }",
                    "one.inc")
    two = spec_file(
        "module m(c) { conv(c, 1) }\nnetwork two { input 4x4x2\n p = m(2)\n q = m(4)\n r = m(1) }", "two.inc")
    data = as_json(cli, "compare", one, two, "--align", "position")
    assert [b["name"] for b in data["blocks"]] == ["a / p", "b / q", "r", cmp.REST]
    q = data["blocks"][1]["variants"]
    assert [c["block"] for c in q] == ["b", "q"]
    assert q[1]["delta"]["params"] == (2 * 4 + 4) - (2 * 3 + 3)  # m(4) on 2 channels vs m(3) on 2 channels
    r = data["blocks"][2]["variants"]
    assert not r[0]["present"] and r[1]["params"]["total"] == 4 * 1 + 1  # m(1) on q's 4 channels


def test_depth_shows_nested_blocks_after_their_parent(spec_file, cli):
    spec = spec_file("module inner(c) { conv(c, 1) }\nmodule outer(c) {\n inner(c)\n x = inner(c)\n}\n"
                     "network n {\n input 2x2x1\n o = outer(2)\n flatten -> dense(3)\n}")
    top = as_json(cli, "compare", spec)["blocks"]
    assert [(b["name"], b["variants"][0]["params"]["total"]) for b in top] == [("o", 4 + 6),
                                                                               (cmp.REST, 8 * 3 + 3)]
    nested = as_json(cli, "compare", spec, "--depth", "2")["blocks"]
    assert [(b["name"], b["variants"][0]["params"]["total"]) for b in nested] == [
        ("o", 10), ("o/inner_1", 1 * 2 + 2), ("o/x", 2 * 2 + 2), (cmp.REST, 27)]


def test_non_trainable_and_training_only_heads(spec_file, cli):
    spec = spec_file("""
network h(aux=true) {
  input 4x4x3
  f = conv(4, 1, bn=true, bias=false)      # 12 kernel + 8 gamma/beta trainable, 8 moving stats
  output main = gap -> dense(2)            # 4*2 + 2 = 10
  if aux { train_output side(loss_weight=0.5) = f -> flatten -> dense(3) }   # 64*3 + 3 = 195
}""")
    r = as_json(cli, "compare", spec)["rows"][0]
    assert r["params"] == {"total": 28 + 10 + 195, "trainable": 20 + 10 + 195, "non_trainable": 8}
    assert r["inference"]["params"] == {"total": 38, "trainable": 30, "non_trainable": 8}
    assert r["macs"] == 16 * 12 + 8 + 192 and r["inference"]["macs"] == 16 * 12 + 8
    assert r["train_only"] == ["side"]


def test_declared_variants(tiny, cli):
    assert incdsl.Spec(tiny).variants == {"small": {"c": 4}, "wide": {"width": 2.0, "deep": True}}
    rows = as_json(cli, "compare", tiny, "--variants")["rows"]
    assert [r["label"] for r in rows] == ["defaults", "small", "wide"]
    assert rows[1]["params"]["total"] == HAND[(4, False)][0]
    # wide = width 2, deep: by the formulas with c = 16: blk(16), blk(32), dense on 64 channels
    assert rows[2]["params"]["total"] == 32 * 16 + (40 * 16 * 16 + 4 * 16) + 10 * 64 + 10
    rows = as_json(cli, "compare", tiny, "--variant", "small", "--sweep", "classes=10,20")["rows"]
    assert [r["label"] for r in rows] == ["small classes=10", "small classes=20"]
    assert rows[1]["params"]["total"] == 128 + 8 * 20 + 20


def test_sweep_range_and_set(tiny, cli):
    rows = as_json(cli, "compare", tiny, "--sweep", "c=2:8:2", "--set", "deep=true")["rows"]
    assert [r["set"]["c"] for r in rows] == [2, 4, 6, 8]
    assert rows[1]["params"]["total"] == HAND[(4, True)][0] and rows[3]["macs"] == HAND[(8, True)][1]
    assert parse_sweep("width=0.1:0.3:0.1") == ("width", ["0.1", "0.2", "0.3"])


def test_pareto_front(tiny):
    spec = incdsl.Spec(tiny)
    rows = cmp.measure_all(cmp.plan([spec], {}, [("c", ["4", "8"]), ("deep", ["false", "true"])]))
    assert cmp.pareto(rows) == [0]  # c=4, deep=false has fewer params and MACs than all the others
    assert [r["pareto"] for r in compare_out.to_json(rows, cmp.align_blocks(rows))["rows"]] == [True, False,
                                                                                                False, False]
    # two variants that trade params for MACs are both on the front
    a = cmp.row_of(spec.build(c=8), "a", {})
    b = cmp.row_of(spec.build(c=4, classes=100), "b", {})  # 128 + 900 params > 426, but 8,480 MACs < 15,520
    assert b.total.params > a.total.params and b.total.macs < a.total.macs
    assert cmp.pareto([a, b]) == [0, 1]


def test_progress_bar_only_when_asked_or_a_tty(tiny, capsys):
    spec = incdsl.Spec(tiny)
    plan = cmp.plan([spec], {}, [("c", [str(i) for i in range(1, 41)])])
    cmp.measure_all(plan)  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""
    cmp.measure_all(plan, progress=True)
    assert "40/40" in capsys.readouterr().err


# --- output formats -------------------------------------------------------------------------

def test_csv_rows_and_blocks_parse(tiny, cli):
    code, out, _ = cli("compare", tiny, "--sweep", "c=4,8", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(int(r["set.c"]), int(r["params_total"]), int(r["macs"])) for r in rows] == [
        (4, HAND[(4, False)][0], HAND[(4, False)][1]), (8, HAND[(8, False)][0], HAND[(8, False)][1])]
    code, out, _ = cli("compare", tiny, "--sweep", "deep=true,false", "--csv", "--blocks")
    assert code == 0
    lines = list(csv.DictReader(io.StringIO(out)))
    b = [r for r in lines if r["block"] == "b"]
    assert [(r["label"], r["present"], r["params_total"], r["delta_params"]) for r in b] == [
        ("deep=true", "1", "2592", "0"), ("deep=false", "0", "", "-2592")]


def test_markdown_and_text_tables(tiny, cli):
    code, out, _ = cli("compare", tiny, "--sweep", "deep=true,false", "--markdown")
    assert code == 0
    tables = [t for t in out.split("\n\n") if t.lstrip().startswith("|")]
    assert len(tables) == 3  # variants, per-block params, per-block MACs
    for t in tables:
        lines = t.strip().splitlines()
        cells = {line.count("|") - line.count("\\|") for line in lines}
        assert len(cells) == 1, t  # every line has the same number of columns
        assert set(lines[1]) <= set("|:-")
    assert "| deep=false | 426 | 426 | 15,520 | 2 | -86.6% | -91.4% |" in out
    code, out, _ = cli("compare", tiny, "--sweep", "deep=true,false")
    assert code == 0
    assert any(line.split()[:4] == ["b", "blk", "2,592", "—"] for line in out.splitlines())


def test_json_is_the_documented_shape(tiny, cli):
    data = as_json(cli, "compare", tiny)
    assert set(data) == {"rows", "blocks"}
    row = data["rows"][0]
    assert {"label", "spec", "set", "params", "macs", "inference", "outputs", "depth"} <= set(row)
    assert row["label"] == "t" and row["set"] == {}


# --- plots ----------------------------------------------------------------------------------

def test_plot_png_and_svg(tiny, tmp_path, cli):
    import matplotlib.image

    png = tmp_path / "two.png"
    assert cli("compare", tiny, "--sweep", "deep=true,false", "--plot", png)[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    h, w, _ = matplotlib.image.imread(png).shape
    assert w > 1000 and h > 500  # three panels side by side
    svg = tmp_path / "grid.svg"
    assert cli("compare", tiny, "--sweep", "c=2:12:2", "--plot", svg)[0] == 0
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "c=12" in svg.read_text()  # the points are labelled
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


# --- fit ------------------------------------------------------------------------------------
# With deep=false and classes=10, params = 32c + 20c + 10 = 52c + 10 for c channels per branch.

def test_fit_int_boundary(tiny, cli):
    data = as_json(cli, "fit", tiny, "--params", "500", "--vary", "c")
    assert data["name"] == "c" and data["value"] == 9 and data["params"]["total"] == 52 * 9 + 10  # 478
    assert data["next"]["value"] == 10 and data["next"]["params"]["total"] == 530 > 500
    # exactly on the budget still fits
    assert as_json(cli, "fit", tiny, "--params", "478", "--vary", "c")["value"] == 9
    assert as_json(cli, "fit", tiny, "--params", "477", "--vary", "c")["value"] == 8


def test_fit_float_boundary(tiny, cli):
    # channels int(8 * width): 9 channels (478 params) fit 500, 10 (530) do not; 8 * width reaches
    # 10 at width = 1.25 exactly, so the answer is the float just below it
    data = as_json(cli, "fit", tiny, "--params", "0.5K", "--vary", "width")
    assert data["value"] == math.nextafter(1.25, 0) and data["params"]["total"] == 478
    assert data["next"]["value"] == 1.25 and data["next"]["params"]["total"] == 530
    assert data["short"] == 1.2  # the shortest decimal giving the same 9-channel network
    assert data["monotonic"] is True
    spec = incdsl.Spec(tiny)
    assert spec.build(
        width=data["value"]).total().params <= 500 < spec.build(width=data["next"]["value"]).total().params


def test_fit_macs_with_min_max(tiny, cli):
    # MACs = 1920c + 20c = 1940c with deep=false; budget 10,000 -> c = 5 (9,700)
    data = as_json(cli, "fit", tiny, "--macs", "10K", "--vary", "c", "--min", "1", "--max", "7")
    assert (data["value"], data["macs"], data["next"]["macs"]) == (5, 9700, 11640)
    data = as_json(cli, "fit", tiny, "--macs", "10K", "--vary", "c", "--max", "4")
    assert data["value"] == 4 and data["next"] is None  # the whole range fits


def test_fit_googlenet_width_5M(cli):
    spec = SPECS / "googlenet.inc"
    data = as_json(cli, "fit", spec, "--params", "5M", "--vary", "width")
    fits, over = incdsl.load(spec, width=data["value"]), incdsl.load(spec, width=data["next"]["value"])
    assert fits.total().params == data["params"]["total"] <= 5_000_000 < over.total().params
    assert data["next"]["value"] == math.nextafter(data["value"], 2)  # adjacent floats: nothing in between


def test_fit_inference_and_trainable(spec_file, cli):
    spec = spec_file("""
network h(c=4) {
  input 4x4x3
  f = conv(c, 1, bn=true, bias=false)      # 3c kernel + 2c gamma/beta trainable, 2c moving stats
  output main = gap -> dense(2)            # 2c + 2
  train_output side = f -> flatten -> dense(3)   # 48c + 3
}""")
    # total 57c + 5, inference 9c + 2, trainable 55c + 5
    assert as_json(cli, "fit", spec, "--params", "300", "--vary", "c")["value"] == 5            # 290
    assert as_json(cli, "fit", spec, "--params", "300", "--vary", "c", "--inference")["value"] == 33  # 299
    # 280 (6: 335)
    assert as_json(cli, "fit", spec, "--params", "300", "--vary", "c", "--trainable")["value"] == 5


def test_fit_reports_non_monotonic(spec_file, cli):
    # channels go 1, 2, 3, 4, 1, 2, ... as n counts up (2 params each): the bisection probes see a drop
    spec = spec_file("network s(n=8) {\n input 2x2x1\n conv(n % 4 + 1, 1)\n}")
    code, out, err = cli("fit", spec, "--params", "5", "--vary", "n", "--min", "0", "--max", "39")
    assert code == 0
    assert "warning" in err and "do not grow" in err


def test_parse_budget():
    assert parse_budget("10M", "--params") == 10_000_000
    assert parse_budget("2G", "--macs") == 2_000_000_000
    assert parse_budget("1.5k", "--params") == 1500
    assert parse_budget("2.5e6", "--params") == 2_500_000
    assert parse_budget("999.9", "--params") == 999
    for bad in ("10X", "", "-1M", "0"):
        with pytest.raises(UsageError):
            parse_budget(bad, "--params")


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--sweep", "c"], "--sweep expects"),
    (["--sweep", "cc=1,2"], "no parameter 'cc'; did you mean 'c'"),
    (["--sweep", "c=1,,2"], "empty value"),
    (["--sweep", "c=1,2", "--sweep", "c=3"], "given twice"),
    (["--sweep", "c=4,4.0"], "--sweep c lists the same value twice (4 and 4.0)"),
    (["--sweep", "c=1,2", "--set", "c=3"], "both swept and fixed"),
    (["--variant", ":c=1"], "--variant expects"),
    (["--variant", "a:c"], "expected NAME=VALUE"),
    (["--variant", "huge"], "declares no variant 'huge'"),
    (["--variant", "a:c=1", "--variant", "a:c=2"], "used twice"),
    (["--variant", "a:zz=1"], "variant 'a'"),
    (["--sweep", "c=x,2"], "variant 'c=x'"),
    (["--plot", "out.pdf"], ".png or .svg"),
    (["--depth", "0"], "--depth"),
])
def test_compare_usage_errors(tiny, cli, args, words):
    code, out, err = cli("compare", tiny, *args)
    assert code == 2, err
    assert words in err and "Traceback" not in err and out == ""


def test_compare_spec_error_names_the_variant(tiny, cli):
    code, out, err = cli("compare", tiny, "--sweep", "c=4,0")
    assert code == 1
    assert "error:" in err and "variant 'c=0'" in err and out == ""


def test_plot_failure_leaves_no_file(tiny, tmp_path, cli):
    out = tmp_path / "plots"
    code, _, _ = cli("compare", tiny, "--sweep", "c=4,0", "--plot", out / "bad.png")
    assert code == 1 and not (out.exists() and list(out.iterdir()))


@pytest.mark.parametrize("args, words", [
    (["--params", "10X", "--vary", "c"], "--params 10X"),
    (["--params", "1M", "--vary", "deep"], "numeric parameter"),
    (["--params", "1M", "--vary", "cc"], "no parameter 'cc'"),
    (["--params", "1M", "--vary", "c", "--min", "1.5"], "'c' is an integer"),
    (["--params", "1M", "--vary", "c", "--min", "5", "--max", "5"], "must be below"),
    (["--params", "1M", "--vary", "c", "--set", "c=3"], "do not also --set"),
])
def test_fit_usage_errors(tiny, cli, args, words):
    code, out, err = cli("fit", tiny, *args)
    assert code == 2, err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize("args", [
    ["--params", "50", "--vary", "c"],  # c=1 gives 62; c=0 does not build
    ["--params", "10", "--vary", "width", "--min", "1"],
])
def test_fit_nothing_fits_is_an_answer_exit_1(tiny, cli, args):
    code, out, err = cli("fit", tiny, *args)
    assert code == 1 and out == ""
    assert err.startswith("incdsl fit: nothing fits") and "Traceback" not in err


def test_fit_needs_a_budget_and_a_name(tiny, cli):
    code, _, err = cli("fit", tiny, "--vary", "c")
    assert code == 2 and "give a budget" in err
    code, _, err = cli("fit", tiny, "--params", "1M")
    assert code == 2 and "give one --vary NAME" in err
    # two budgets at once: both must hold; params 52c + 10 <= 1M binds (c = 19,230), MACs 1940c do not
    assert as_json(cli, "fit", tiny, "--params", "1M", "--macs", "1G", "--vary", "c")["value"] == 19_230
    # MACs 1940c <= 10,000 binds first: c = 5
    assert as_json(cli, "fit", tiny, "--params", "<=", "1M", "--macs", "<=", "10K", "--vary",
                   "c")["value"] == 5


def test_front_end_imports_no_plotting_or_backends():
    import subprocess
    import sys
    code = ("import sys, incdsl.cli.main, incdsl.analysis.sweep, incdsl.cli.commands.compare, "
            "incdsl.cli.commands.fit, incdsl.analysis.plot; "
            "bad = [m for m in ('matplotlib', 'keras', 'tensorflow', 'onnx', 'torch') if m in sys.modules]; "
            "print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
