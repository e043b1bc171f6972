"""Issue 25: `incdsl explore`, the parts that need neither Ray nor training (quick): the variants
planned as `compare` and `fit` plan them, the bad input refused before anything is written (a
variant that does not build, an empty sweep, an unreachable --address, --resume on a folder that is
not an experiment, an experiment folder that exists or lies in the data folder), the resources a
trial asks for checked against the cluster's nodes, and the results: sorted by accuracy, Pareto
fronts of accuracy against MACs and params, CSV, JSON and `--show`. Training on Ray is in
test_explore_ray.py (slow)."""
from __future__ import annotations

import csv
import io
import json
import socket
from pathlib import Path

import pytest

from incdsl.cli.main import main
from incdsl.errors import OptionError, UsageError
from incdsl.explore import ExploreConfig, ExploreRow
from incdsl.explore.folder import read_plan, write_plan
from incdsl.explore.plan import plan_variants
from incdsl.explore.results import from_json, to_csv, to_json, with_fronts, write_results
from incdsl.explore.tuning import trial_resources

# a 1x1 black PNG: the class folders hold an image, which nothing here decodes
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944"
                    "415478da636060600000000400012f2b46900000000049454e44ae426082")

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"

TINY = f"""use "{SPECS / 'googlenet.inc'}"

network tiny(classes=3, size=16, width=0.25, gain=1.0) {{
  defaults conv(bias=false, bn=true, bn_momentum=0.9, act=relu)
  input(size, size, 1)
  conv(8, 3, stride=2, pad=valid)
  a = inception(64, 96, 128, 16, 32, 32, width)
  output fc = gap -> scale(gain) -> dense(classes)
}}
"""


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.inc"
    p.write_text(TINY)
    return p


@pytest.fixture
def data(tmp_path) -> Path:
    """A folder that looks like an image folder (three class folders); nothing here reads the images."""
    for c in "abc":
        (tmp_path / "data" / c).mkdir(parents=True)
        (tmp_path / "data" / c / "x.png").write_bytes(PNG)  # a class folder holds images (checked first)
    return tmp_path / "data"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


# --- the variants ------------------------------------------------------------------------------

def test_the_variants_are_compares_grid_with_their_counts(tiny):
    config = ExploreConfig(spec=str(tiny), data="d", output="o",
                           sweep={"width": ["0.25", "0.5"], "size": [16, 24]})
    planned = plan_variants(config)
    assert [p.label for p in planned] == ["width=0.25 size=16", "width=0.25 size=24", "width=0.5 size=16",
                                          "width=0.5 size=24"]
    import incdsl
    rows = incdsl.compare(tiny, sweep={"width": ["0.25", "0.5"], "size": [16, 24]})
    assert [(p.params, p.macs) for p in planned] == [(r.total.params, r.total.macs) for r in rows]
    assert planned[0].folder == "width=0.25_size=16" and planned[0].acc_key == "accuracy"


def test_a_params_budget_keeps_the_pareto_set_that_fit_finds(tiny, capsys):
    widths = "0.25,0.5,0.75,1.0"
    code, out, _ = run_cli(capsys, "fit", tiny, "--params", "40K", "--vary", f"width={widths}", "--vary",
                           "size=16,24",
                           "--json")
    assert code == 0
    front = {(p["set"]["width"], p["set"]["size"]) for p in json.loads(out)["pareto"]}
    config = ExploreConfig(spec=str(tiny), data="d", output="o", params=40_000,
                           sweep={"width": widths.split(","), "size": ["16", "24"]})
    planned = plan_variants(config)
    assert {(float(p.sets["width"]), int(p.sets["size"])) for p in planned} == front
    assert 0 < len(planned) < 8 and all(p.params <= 40_000 for p in planned)


def test_a_budget_needs_a_grid_and_the_train_settings_are_checked_as_train_checks_them(tiny):
    with pytest.raises(OptionError, match="params or macs budget picks the Pareto set of a grid"):
        ExploreConfig(spec=str(tiny), data="d", output="o", params=10)
    with pytest.raises(OptionError, match="^epochs must be at least 1"):
        ExploreConfig(spec=str(tiny), data="d", output="o", epochs=0)
    with pytest.raises(OptionError, match="grace_period 3 is longer than the epochs 2"):
        ExploreConfig(spec=str(tiny), data="d", output="o", epochs=2, scheduler="asha", grace_period=3)
    with pytest.raises(OptionError, match="sweep width has no values"):
        ExploreConfig(spec=str(tiny), data="d", output="o", sweep={"width": []})


# --- bad input: one screen, exit 1 or 2, nothing written ----------------------------------------

def test_a_variant_that_does_not_build_is_named_before_any_training(tiny, data, tmp_path, capsys):
    out = tmp_path / "exp"
    code, _, err = run_cli(capsys, "explore", tiny, "--data", data, "--sweep", "size=16,2", "-o", out)
    assert code == 1
    assert "variant 'size=2'" in err and "Traceback" not in err and len(err.splitlines()) < 25
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--sweep", "width="], "--sweep expects NAME=V1,V2"),
    (["--sweep", "width=0.25,"], "empty value in the list"),
    (["--sweep", "widht=0.25"], "has no parameter 'widht'"),
    (["--params", "10M"],
     "--params or --macs budget picks the Pareto set of a grid: give the grid with --sweep"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--max-concurrent", "0"], "--max-concurrent must be at least 1"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial must be above 0"),
])
def test_bad_settings_are_usage_errors(tiny, data, tmp_path, capsys, argv, message):
    out = tmp_path / "exp"
    code, _, err = run_cli(capsys, "explore", tiny, "--data", data, "-o", out, *argv)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not out.exists()


def test_an_unreachable_address_is_refused_quickly_and_nothing_is_written(tiny, data, tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "exp"
    code, _, err = run_cli(capsys, "explore", tiny, "--data", data, "-o", out, "--address",
                           f"127.0.0.1:{port}")
    assert code == 2 and f"no Ray cluster answers at 127.0.0.1:{port}" in err, err
    assert not out.exists()
    code, _, err = run_cli(capsys, "explore", tiny, "--data", data, "-o", out, "--address", "nowhere")
    assert code == 2 and "expected 'auto' or HOST:PORT" in err


def test_resume_and_show_refuse_a_folder_that_is_not_an_experiment(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("mine")
    for flag in ("--resume", "--show"):
        code, _, err = run_cli(capsys, "explore", flag, tmp_path / "plain")
        assert (
            code == 2 and "is not an experiment folder of incdsl explore (it has no explore.json)" in err
        ), err
        code, _, err = run_cli(capsys, "explore", flag, tmp_path / "missing")
        assert code == 2 and "(it does not exist)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]
    assert [p.name for p in (tmp_path / "plain").iterdir()] == ["notes.txt"]


def test_the_experiment_folder_is_new_and_outside_the_data(tiny, data, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("x")
    code, _, err = run_cli(capsys, "explore", tiny, "--data", data, "-o", taken)
    assert code == 2 and "already exists and is not empty (pick a new folder)" in err
    code, _, err = run_cli(capsys, "explore", tiny, "--data", data, "-o", data / "exp")
    assert code == 2 and "data folder" in err, err
    assert not (data / "exp").exists()
    code, _, err = run_cli(capsys, "explore", tiny, "--data", data, "-o", tiny)
    assert code == 2, err
    assert tiny.read_text() == TINY


def test_a_trial_asks_for_resources_some_node_has():
    nodes = [{"Alive": True, "Resources": {"CPU": 2.0}},
             {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 1.0}}]
    config = ExploreConfig(spec="s", data="d", output="o", gpus_per_trial=1, address="10.0.0.1:6379")
    with pytest.raises(UsageError, match=r"a trial asks for 1 GPU \(gpus_per_trial\) and no node of the "
                                         r"cluster at 10.0.0.1:6379 has any"):
        trial_resources(config, nodes)
    with pytest.raises(
        UsageError, match=r"asks for 4 CPUs \(cpus_per_trial\) and the largest node of this machine has 2"
    ):
        trial_resources(ExploreConfig(spec="s", data="d", output="o", cpus_per_trial=4), nodes)
    assert trial_resources(ExploreConfig(spec="s", data="d", output="o"), nodes) == {"cpu": 1.0, "gpu": 0.0}
    assert trial_resources(ExploreConfig(spec="s", data="d", output="o"),
                           nodes + [{"Alive": True, "Resources": {"CPU": 4.0, "GPU": 2.0}}]) == {"cpu": 1.0,
                                                                                                 "gpu": 1.0}


# --- results ------------------------------------------------------------------------------------

def row(label, params, macs, acc, state="done", error=None) -> ExploreRow:
    return ExploreRow(label, {"width": label}, params, macs, 2, acc, 2 if acc is not None else None, 100.0,
                      state,
                      error, None)


def test_the_table_is_sorted_by_accuracy_with_both_pareto_fronts_marked():
    rows = with_fronts([row("a", 100, 1000, 0.80), row("b", 200, 500, 0.90), row("c", 300, 2000, 0.85),
                        row("d", 50, 3000, 0.70), row("e", 10, 10, None, "error", "training diverged")])
    assert [r.label for r in rows] == ["b", "c", "a", "d", "e"]
    marks = {r.label: (r.pareto_macs, r.pareto_params) for r in rows}
    # MACs: b (0.90 at 500) beats a and c and d; params: d (50), a (100), b (200) each trade; c is beaten by b
    assert marks == {"b": (True, True), "c": (False, False), "a": (False, True), "d": (False, True),
                     "e": (False, False)}


def test_results_round_trip_through_json_csv_and_show(tiny, tmp_path, capsys):
    config = ExploreConfig(spec=str(tiny), data="d", output=str(tmp_path / "exp"),
                           sweep={"width": ["0.25", "0.5"]})
    planned = plan_variants(config)
    write_plan(tmp_path / "exp", config, planned)
    assert read_plan(tmp_path / "exp") == (config, planned)
    rows = with_fronts([row("width=0.25", 10, 10, 0.5), row("width=0.5", 20, 20, None, "error", "diverged")])
    write_results(tmp_path / "exp", rows, "val_accuracy", str(tiny))
    assert from_json(json.loads((tmp_path / "exp" / "results.json").read_text())) == (rows, "val_accuracy")
    lines = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert lines[
        0]["variant"] == "width=0.25" and lines[0]["accuracy"] == "0.5" and lines[0]["pareto_macs"] == "1"
    assert lines[1]["state"] == "error" and lines[1]["error"] == "diverged"
    assert to_json(rows, "val_accuracy", "s")["rows"][1]["error"] == "diverged"
    code, out, err = run_cli(capsys, "explore", "--show", tmp_path / "exp")
    assert code == 0, err
    head, first, second = out.splitlines()[:3]
    assert head.split()[:6] == ["variant", "params", "MACs", "epochs", "best", "val"]
    assert first.split()[:6] == ["width=0.25", "10", "10", "2", "0.5000", "100"]
    assert "error: width=0.5: diverged" in out


def test_show_says_when_an_experiment_has_no_results_yet(tiny, tmp_path, capsys):
    config = ExploreConfig(spec=str(tiny), data="d", output=str(tmp_path / "exp"))
    write_plan(tmp_path / "exp", config, plan_variants(config))
    code, _, err = run_cli(capsys, "explore", "--show", tmp_path / "exp")
    assert code == 2 and "has no results yet" in err and "resum" in err


def test_a_rows_state_comes_from_its_run_and_tunes_end(tiny, tmp_path):
    from incdsl.explore.plan import Planned
    from incdsl.explore.results import trial_row
    p = Planned("width=0.5", {"width": "0.5"}, 10, 20, "width=0.5")
    folder = tmp_path / "trials" / "width=0.5"
    folder.mkdir(parents=True)
    (folder / "model.log.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.0,0.6,0.9\n"
                                          "1,0.7,0.8,0.55,0.95\n")
    (folder / "model.best.keras").write_text("stand-in")
    stopped = trial_row(tmp_path, p, "val_accuracy", "accuracy", 3, {"images_per_second": 12.5}, None, True)
    assert (stopped.state, stopped.epochs, stopped.accuracy, stopped.best_epoch) == ("stopped at epoch 2", 2,
                                                                                     0.6, 1)
    assert stopped.model == "trials/width=0.5/model.best.keras" and stopped.images_per_second == 12.5
    assert trial_row(tmp_path, p, "val_accuracy", "accuracy", 3, None, None, False).state == "not finished"
    assert trial_row(tmp_path, p, "accuracy", "accuracy", 3, None, "boom", True).state == "error"
    (folder / "model.keras").write_text("stand-in")
    assert trial_row(tmp_path, p, "accuracy", "accuracy", 2, None, None, True).accuracy == 0.7


def test_incdsl_explore_is_the_function_and_the_package_still_imports():
    import incdsl
    import incdsl.explore.results  # noqa: F401  (a submodule import leaves the name alone)
    assert callable(incdsl.explore) and incdsl.explore.__module__ == "incdsl.explore"


def test_a_missing_data_folder_is_refused_before_ray_starts(cli, tmp_path, monkeypatch):
    """The review's case: `--data` naming nothing ran Ray and ended with exit 0 and a failed trial."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.inc").write_text((ROOT / "docs/examples/small_bn.inc").read_text())
    code, out, err = cli("explore", "t.inc", "--data", "nonexist", "--sweep", "width=0.125", "-o", "o9")
    assert code == 1 and "nonexist" in err and "data folder" in err, err
    assert "Traceback" not in err and not (tmp_path / "o9").exists() and "ray" not in out.lower()


def test_the_plan_keeps_absolute_paths_so_resume_works_from_anywhere(tmp_path, monkeypatch):
    """explore.json names the spec, the data folder and the experiment folder absolutely (the
    review's `cd /tmp && incdsl explore --resume /tmp/r25/exp2` looked for /tmp/digits/train)."""
    from incdsl.explore.experiment import run_experiment
    from incdsl.explore.options import ExploreConfig

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.inc").write_text((ROOT / "docs/examples/small_bn.inc").read_text())
    for digit in range(10):  # the class folders the spec's 10 outputs need (checked before Ray starts)
        (tmp_path / "digits" / str(digit)).mkdir(parents=True)
        (tmp_path / "digits" / str(digit) / "x.png").write_bytes(PNG)
    seen = {}

    def stop(config):  # stands in for Ray: records the config the experiment would run
        seen["config"] = config
        raise SystemExit(0)
    from incdsl.explore import tuning  # (incdsl.explore is also the function: no dotted string here)
    monkeypatch.setattr(tuning, "start_ray", stop)
    with pytest.raises(SystemExit):
        run_experiment(ExploreConfig(spec="t.inc", data="digits", output="exp", sweep={"width": [0.125]}))
    c = seen["config"]
    assert (c.spec, c.data, c.output) == (str(tmp_path / "t.inc"), str(tmp_path / "digits"),
                                          str(tmp_path / "exp"))


def test_sets_none_means_no_spec_arguments(tmp_path, monkeypatch):
    """`incdsl.explore(..., sets=None)` raised AttributeError (the review of issue 25)."""
    import incdsl
    from incdsl.explore import tuning

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.inc").write_text((ROOT / "docs/examples/small_bn.inc").read_text())
    for digit in range(10):  # the class folders the spec's 10 outputs need (checked before Ray starts)
        (tmp_path / "digits" / str(digit)).mkdir(parents=True)
        (tmp_path / "digits" / str(digit) / "x.png").write_bytes(PNG)

    def stop(config):
        raise SystemExit(0)
    monkeypatch.setattr(tuning, "start_ray", stop)
    with pytest.raises(SystemExit):
        incdsl.explore("t.inc", "digits", "exp", sweep={"width": [0.125]}, sets=None)
