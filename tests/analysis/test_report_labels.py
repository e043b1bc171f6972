"""Issue 14, items 12-14: `depth` as the papers count it, `fit` printing the shortest decimals, and
compare's "vs first" columns saying which params they compare. Front end only."""
from __future__ import annotations

import csv
import io
import json

import incdsl

from conftest import SPECS


def test_depth_is_googlenets_22_layers(cli):
    # Szegedy et al. 2014, Section 5: "22 layers deep when counting only layers with parameters"
    data = json.loads(cli.ok("summary", SPECS / "googlenet.inc", "--json"))
    assert data["depth"] == 22


def test_fit_prints_the_shortest_decimal_that_fits_and_the_next_that_does_not(cli):
    out = cli.ok("fit", SPECS / "inception_v3.inc", "--params", "10M", "--vary", "width")
    assert "0.6343749999999999" not in out and "0.634375" not in out
    assert "  width = 0.634: 9,998,372 params" in out and out.count("<- fits") == 1
    assert "  next step: width = 0.635: 10,004,274 params" in out and "<- over budget" in out
    spec = incdsl.Spec(SPECS / "inception_v3.inc")
    fits, over = spec.build(width=0.634).total().params, spec.build(width=0.635).total().params
    assert fits <= 10_000_000 < over
    # shortest: one digit fewer gives other networks (0.63 smaller; 0.64 is past the next step)
    assert spec.build(width=0.63).total().params < fits and spec.build(width=0.64).total().params > over
    data = json.loads(cli.ok("fit", SPECS / "inception_v3.inc", "--params", "10M", "--vary", "width",
                             "--json"))
    assert (data["short"], data["next"]["short"]) == (0.634, 0.635)
    assert data["value"] < data["next"]["value"] <= 0.635  # the exact edge stays in the JSON


def test_csv_keeps_the_point_of_a_float(cli):
    out = cli.ok("compare", SPECS / "googlenet.inc", "--sweep", "width=0.5,1.0", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["label"], r["set.width"]) for r in rows] == [("width=0.5", "0.5"), ("width=1.0", "1.0")]


def test_vs_first_columns_say_which_params_they_compare(cli):
    args = ("compare", SPECS / "googlenet.inc", "--sweep", "width=0.5,1.0")
    # googlenet has training-only aux heads: the percentages compare inference params (hand: the
    # README's 6,998,552 inference params at width 1, 2,010,560 at width 0.5)
    pct = (6_998_552 - 2_010_560) * 100 / 2_010_560
    text = cli.ok(*args)
    assert "inference params vs first" in text and "inference MACs vs first" in text
    assert f"{pct:+.1f}%" in text
    md = cli.ok(*args, "--markdown")
    assert "| inference params vs first | inference MACs vs first |" in md
    rows = list(csv.DictReader(io.StringIO(cli.ok(*args, "--csv"))))
    assert abs(float(rows[1]["inference_params_vs_first_pct"]) - pct) < 1e-3
    data = json.loads(cli.ok(*args, "--json"))
    assert data["rows"][1]["vs_first"]["counts"] == "inference"
    assert abs(data["rows"][1]["vs_first"]["params_pct"] - pct) < 1e-9
    # without training-only heads the columns compare the totals and say so
    plain = ("compare", SPECS / "googlenet_tv.inc", "--set", "aux=false", "--sweep", "width=0.5,1.0")
    text = cli.ok(*plain)
    assert "params vs first" in text and "inference params vs first" not in text
    assert json.loads(cli.ok(*plain, "--json"))["rows"][1]["vs_first"]["counts"] == "total"
    assert "params_vs_first_pct" in cli.ok(*plain, "--csv").splitlines()[0]
