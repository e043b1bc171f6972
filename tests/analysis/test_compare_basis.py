"""`compare`'s "vs first" basis (issue 29, item 1): which counts the percentages against the first
variant compare when only some, all or none of the variants have training-only heads, and that
every output (text, Markdown, CSV, JSON) says which. README: "vs first" compares inference figures
when some variant has training-only heads, totals otherwise. Front end only."""
from __future__ import annotations

import csv
import io
import json

import pytest

# Counted by hand. Input 4x4x3, f = conv(c, 1) with bias: 3c + c = 4c params, 16 * 3c = 48c MACs.
#   main head gap -> dense(2):          2c + 2 params, 2c MACs     -> inference 6c + 2 params, 50c MACs
#   aux head flatten -> dense(3):       48c + 3 params, 48c MACs   -> total 54c + 5 params, 98c MACs
SPEC = """
network h(c=4, aux=true) {
  input 4x4x3
  f = conv(c, 1)
  output main = f -> gap -> dense(2)
  if aux { train_output side(loss_weight=0.5) = f -> flatten -> dense(3) }
}
"""


def counts(c: int, aux: bool) -> dict:
    """Hand counts of SPEC: total and inference params and MACs."""
    inf = (6 * c + 2, 50 * c)
    return {"total": (54 * c + 5, 98 * c) if aux else inf, "inference": inf}


def pct(new: int, base: int) -> float:
    return (new - base) * 100 / base


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "h.inc"
    p.write_text(SPEC)
    return p


# (case, compare arguments, the variants in order as (c, aux), the basis README promises)
CASES = [
    # mixed: the first variant has the aux head, the second does not (and the other way round);
    # on totals the aux head alone would read as -88.2% / +750%
    ("mixed, aux first", ("--sweep", "aux=true,false"), [(4, True), (4, False)], "inference"),
    ("mixed, aux second", ("--sweep", "aux=false,true"), [(4, False), (4, True)], "inference"),
    ("mixed, wider", ("--sweep", "aux=false,true", "--sweep", "c=4,8"),
     [(4, False), (8, False), (4, True), (8, True)], "inference"),
    # all with aux heads: still inference (the heads are not what a deployed network carries)
    ("all aux", ("--set", "aux=true", "--sweep", "c=4,8"), [(4, True), (8, True)], "inference"),
    # none: totals (which equal the inference counts here)
    ("no aux", ("--set", "aux=false", "--sweep", "c=4,8"), [(4, False), (8, False)], "total"),
]


@pytest.mark.parametrize("case,args,variants,basis", CASES, ids=[c[0] for c in CASES])
def test_json_states_the_basis_and_compares_those_counts(spec, cli, case, args, variants, basis):
    rows = json.loads(cli.ok("compare", spec, *args, "--json"))["rows"]
    first = counts(*variants[0])[basis]
    for r, (c, aux) in zip(rows, variants, strict=True):
        want = counts(c, aux)
        assert r[
            "params"][
                "total"] == want["total"][0] and r["inference"]["params"]["total"] == want["inference"][0]
        assert r["train_only"] == (["side"] if aux else [])
        assert r["vs_first"]["counts"] == basis
        mine = want[basis]
        assert r["vs_first"]["params_pct"] == pytest.approx(pct(mine[0], first[0]))
        assert r["vs_first"]["macs_pct"] == pytest.approx(pct(mine[1], first[1]))


@pytest.mark.parametrize("case,args,variants,basis", CASES, ids=[c[0] for c in CASES])
def test_csv_names_the_basis_in_its_columns(spec, cli, case, args, variants, basis):
    rows = list(csv.DictReader(io.StringIO(cli.ok("compare", spec, *args, "--csv"))))
    pre = "inference_" if basis == "inference" else ""
    other = "" if pre else "inference_"
    first = counts(*variants[0])[basis]
    for r, v in zip(rows, variants, strict=True):
        assert f"{other}params_vs_first_pct" not in r and f"{other}macs_vs_first_pct" not in r
        mine = counts(*v)[basis]
        assert float(r[f"{pre}params_vs_first_pct"]) == pytest.approx(pct(mine[0], first[0]))
        assert float(r[f"{pre}macs_vs_first_pct"]) == pytest.approx(pct(mine[1], first[1]))


@pytest.mark.parametrize("fmt", ["text", "markdown"])
@pytest.mark.parametrize("case,args,variants,basis", CASES, ids=[c[0] for c in CASES])
def test_tables_label_the_basis_and_print_its_percentages(spec, cli, case, args, variants, basis, fmt):
    out = cli.ok("compare", spec, *args, *(["--markdown"] if fmt == "markdown" else []))
    table = out.split("\n\n")[0] if fmt == "markdown" else out.split("per-block")[0]
    header = next(line for line in table.splitlines() if "vs first" in line)
    label = "inference params vs first" if basis == "inference" else "params vs first"
    assert label in header
    if basis == "inference":
        assert "inference MACs vs first" in header
    else:
        assert "inference params vs first" not in header and "inference MACs vs first" not in header
        assert "MACs vs first" in header
    first = counts(*variants[0])[basis]
    lines = [line for line in table.splitlines() if line.strip().strip("|").strip().startswith(("aux=",
                                                                                                "c="))]
    assert len(lines) == len(variants)
    for line, v in zip(lines, variants):
        mine = counts(*v)[basis]
        for new, base in zip(mine, first):
            p = pct(new, base)
            want = "=" if new == base else f"{p:+.1f}%"
            assert want in line.replace("|", " ").split(), (line, want)
