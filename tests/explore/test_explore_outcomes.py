"""Issue 25, how an experiment ends, without training (quick): Ray's Tuner stands in as a ResultGrid
of Ray's own `Result`s and Tune's saved experiment state. Ctrl-C just as a trial starts (a trial
with no report has a Result whose config is None) exits 130 and names `--resume`; an experiment
whose every variant failed exits 1 naming the failures, a partly failed one exits 0 and names them;
`--resume` and `--show` refuse training flags rather than ignore them; a data folder whose classes
do not match the spec is refused before Ray starts; the live table of a resumed experiment shows
its finished trials as finished."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from incdsl.explore import experiment as experiment_module  # (incdsl.explore is also the function)
from incdsl.explore import tuning

from test_explore import TINY, run_cli

# a 1x1 black PNG: the class folders hold an image, which nothing here decodes
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944"
                    "415478da636060600000000400012f2b46900000000049454e44ae426082")


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.inc"
    p.write_text(TINY)
    return p


@pytest.fixture
def data(tmp_path) -> Path:
    for c in "abc":
        (tmp_path / "data" / c).mkdir(parents=True)
        (tmp_path / "data" / c / "x.png").write_bytes(PNG)  # a class folder holds images (checked first)
    return tmp_path / "data"


class Grid(list):
    """Tune's ResultGrid as `_run` reads it: the Results, and the counts of ended trials."""

    def __init__(self, results, terminated, errors):
        super().__init__(results)
        self.num_terminated, self.num_errors = terminated, errors


def fake_ray(monkeypatch, trials: list[tuple[str, str, str, dict | None, Exception | None]]):
    """Stand in for Ray: `trials` are (trial id, variant, Tune status, last reported metrics or None
    when the trial never reported, error). Writes Tune's experiment state as Tune does and returns
    Ray's own Result objects for them."""
    from ray.air.result import Result

    def run_tuner(config, planned, root, resources, resume=False):
        (root / "ray").mkdir(parents=True, exist_ok=True)
        state = {"trial_data": [[json.dumps({"trial_id": tid, "status": status,
                                             "config": {"variant": variant}}), "{}"]
                                for tid, variant, status, _, _ in trials]}
        (root / "ray" / "experiment_state-2026-01-01.json").write_text(json.dumps(state))
        results = []
        for tid, variant, status, metrics, error in trials:
            # as Tune's Trial.last_result: a trial that never reported has only its id
            shown = {"trial_id": tid} if metrics is None else {**metrics, "trial_id": tid,
                                                               "config": {"variant": variant}}
            results.append(Result(metrics=shown, checkpoint=None, error=error, path=str(root / "ray" / tid)))
        return Grid(results, sum(t[2] == "TERMINATED" for t in trials), sum(t[2] == "ERROR" for t in trials))

    monkeypatch.setattr(tuning, "start_ray", lambda config: {"cpu": 1.0, "gpu": 0.0})
    monkeypatch.setattr(tuning, "run_tuner", run_tuner)
    monkeypatch.setattr(experiment_module, "_shutdown", lambda: None)


def write_log(exp: Path, folder: str, accuracies: list[float], best: bool = True) -> None:
    f = exp / "trials" / folder
    f.mkdir(parents=True, exist_ok=True)
    (f / "model.log.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
        f"{i},{a},1.0,{a},1.0\n" for i, a in enumerate(accuracies)))
    if best:
        (f / "model.best.keras").write_text("stand-in")


def test_ctrl_c_as_a_trial_starts_exits_130_and_names_resume(tiny, data, tmp_path, capsys, monkeypatch):
    """The gap: Ctrl-C just as one trial ended and the next started (no report yet: Ray's Result.config
    is None) ended in `internal error: TypeError: 'NoneType' object is not subscriptable`."""
    exp = tmp_path / "exp"
    fake_ray(monkeypatch, [("a1", "width=0.25", "TERMINATED", {"epoch": 2, "images_per_second": 50.0}, None),
                           ("a2", "width=0.5", "RUNNING", None, None)])
    real_run_tuner = tuning.run_tuner

    def run_tuner(config, planned, root, resources, resume=False):
        grid = real_run_tuner(config, planned, root, resources, resume)
        write_log(root, "width=0.25", [0.5, 0.6])
        (root / "trials" / "width=0.25" / "model.keras").write_text("stand-in")
        return grid
    monkeypatch.setattr(tuning, "run_tuner", run_tuner)
    code, out, err = run_cli(capsys, "explore", tiny, "--data", data, "--sweep", "width=0.25,0.5", "--epochs",
                             2, "-o", exp)
    assert code == 130, err
    assert "internal error" not in err and "Traceback" not in err
    assert f"interrupted: incdsl explore --resume {exp} continues it" in err
    assert len(err.strip().splitlines()) <= 3, err  # one screen: the note and the exit's word
    rows = {r["label"]: r for r in json.loads((exp / "results.json").read_text())["rows"]}
    assert rows["width=0.25"]["state"] == "done" and rows["width=0.25"]["accuracy"] == 0.6
    assert rows["width=0.5"]["state"] == "not finished" and rows["width=0.5"]["model"] is None
    # the table says where each trial's best model is, or that it has none
    line = next(ln for ln in out.splitlines() if ln.startswith("width=0.5 "))
    assert "none: no epoch ended" in line, out


def test_an_interrupted_trial_keeps_its_best_epoch_and_the_table_says_where(tiny, data, tmp_path, capsys,
                                                                           monkeypatch):
    exp = tmp_path / "exp"
    fake_ray(monkeypatch, [("a1", "width=0.25", "RUNNING", {"epoch": 1, "images_per_second": 50.0}, None),
                           ("a2", "width=0.5", "PENDING", None, None)])
    real_run_tuner = tuning.run_tuner

    def run_tuner(config, planned, root, resources, resume=False):
        grid = real_run_tuner(config, planned, root, resources, resume)
        write_log(root, "width=0.25", [0.5])
        return grid
    monkeypatch.setattr(tuning, "run_tuner", run_tuner)
    code, out, err = run_cli(capsys, "explore", tiny, "--data", data, "--sweep", "width=0.25,0.5", "--epochs",
                             3, "-o", exp)
    assert code == 130, err
    rows = {r["label"]: r for r in json.loads((exp / "results.json").read_text())["rows"]}
    assert rows["width=0.25"]["state"] == "not finished"
    assert rows["width=0.25"]["model"] == "trials/width=0.25/model.best.keras"
    assert "trials/width=0.25/model.best.keras" in out


def test_every_variant_failing_exits_1_naming_the_failures(tiny, data, tmp_path, capsys, monkeypatch):
    exp = tmp_path / "exp"
    boom = RuntimeError("training diverged: the loss is nan at step 3")
    fake_ray(monkeypatch, [("a1", "width=0.25", "ERROR", {"epoch": 0}, boom),
                           ("a2", "width=0.5", "ERROR", None, RuntimeError("out of memory"))])
    code, out, err = run_cli(capsys, "explore", tiny, "--data", data, "--sweep", "width=0.25,0.5", "-o", exp)
    assert code == 1, err
    assert err.startswith("error: every variant failed (2): ")
    assert "width=0.25: training diverged" in err and "width=0.5: out of memory" in err
    assert len(err.strip().splitlines()) <= 3 and "Traceback" not in err, err
    assert (exp / "results.json").is_file()  # the results are written all the same


def test_a_trial_ended_by_an_incdsl_error_is_reported_once_not_retried(tmp_path, monkeypatch):
    """A review found it: a diverged run was raised to Tune, which retried it max_failures times
    (4 runs, 371 lines of tracebacks). incdsl's own errors now end the trial with one report."""
    from ray import tune

    from incdsl.errors import DataError
    from incdsl.explore import trial
    reports = []
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune, "report", lambda metrics, **kw: reports.append(metrics))
    monkeypatch.setattr(trial, "load", lambda *a, **k: None)
    monkeypatch.setattr(trial, "report_class", lambda: lambda *a, **k: SimpleNamespace(final=None))

    def diverge(net, config):
        raise DataError("training diverged: the loss is inf at step 3 (epoch 1)\nhint: a lower --lr")
    monkeypatch.setattr(trial, "train", diverge)
    setup = {"variants": {"width=0.25": {"folder": "width=0.25", "sets": {}}}, "root": str(tmp_path),
             "spec": "t.inc", "network": None, "data": "synthetic", "metric": "val_accuracy",
             "train": {"batch_size": 8, "epochs": 2}}
    monkeypatch.setattr(trial, "_accuracy_key", lambda *a: "accuracy")
    trial.run_trial({"variant": "width=0.25"}, setup)  # returns: Tune does not retry a returned trial
    assert [r["incdsl_error"] for r in reports] == ["training diverged: the loss is inf at step 3 (epoch 1)"]

    def crash(net, config):
        raise RuntimeError("a worker process died")
    monkeypatch.setattr(trial, "train", crash)
    with pytest.raises(RuntimeError):  # anything else is Tune's to retry (FailureConfig)
        trial.run_trial({"variant": "width=0.25"}, setup)


def test_a_reported_incdsl_error_counts_as_a_failed_variant(tiny, data, tmp_path, capsys, monkeypatch):
    exp = tmp_path / "exp"
    fake_ray(monkeypatch, [("a1", "width=0.25", "TERMINATED",
                            {"epoch": 1, "incdsl_error": "training diverged: the loss is inf at step 3"},
                            None),
                           ("a2", "width=0.5", "TERMINATED",
                            {"epoch": 0, "incdsl_error": "class folder x has no images"}, None)])
    code, out, err = run_cli(capsys, "explore", tiny, "--data", data, "--sweep", "width=0.25,0.5", "-o", exp)
    assert code == 1 and err.startswith("error: every variant failed (2): "), err
    assert "width=0.25: training diverged: the loss is inf at step 3" in err


def test_a_partly_failed_experiment_exits_0_and_names_the_failed(tiny, data, tmp_path, capsys, monkeypatch):
    exp = tmp_path / "exp"
    fake_ray(monkeypatch, [("a1", "width=0.25", "TERMINATED", {"epoch": 1}, None),
                           ("a2", "width=0.5", "ERROR", None, RuntimeError("out of memory"))])
    real_run_tuner = tuning.run_tuner

    def run_tuner(config, planned, root, resources, resume=False):
        grid = real_run_tuner(config, planned, root, resources, resume)
        write_log(root, "width=0.25", [0.5])
        (root / "trials" / "width=0.25" / "model.keras").write_text("stand-in")
        return grid
    monkeypatch.setattr(tuning, "run_tuner", run_tuner)
    code, out, err = run_cli(capsys, "explore", tiny, "--data", data, "--sweep", "width=0.25,0.5", "--epochs",
                             1, "-o", exp)
    assert code == 0, err
    assert "1 of 2 variants failed (width=0.5)" in err and "error: width=0.5: out of memory" in out


@pytest.mark.parametrize("mode,flags,named", [
    ("--resume", ["--epochs", "10"], "--epochs"),  # given at its default value: still refused
    ("--resume", ["--lr", "0.1", "--no-augment", "--max-concurrent", "2"],
     "--lr, --no-augment, --max-concurrent"),
    ("--show", ["--address", "auto"], "--address"),
])
def test_resume_and_show_refuse_training_flags(tiny, tmp_path, capsys, monkeypatch, mode, flags, named):
    from incdsl.explore import ExploreConfig
    from incdsl.explore.folder import write_plan
    from incdsl.explore.plan import plan_variants
    config = ExploreConfig(spec=str(tiny), data="synthetic", output=str(tmp_path / "exp"))
    write_plan(tmp_path / "exp", config, plan_variants(config))
    monkeypatch.setattr(tuning, "start_ray", lambda config: pytest.fail("Ray started"))
    code, _, err = run_cli(capsys, "explore", mode, tmp_path / "exp", *flags)
    assert code == 2 and f"leave out {named}" in err and "explore.json" in err, err


def test_resume_takes_a_new_address(tiny, tmp_path, capsys, monkeypatch):
    from incdsl.explore import ExploreConfig
    from incdsl.explore.folder import write_plan
    from incdsl.explore.plan import plan_variants
    config = ExploreConfig(spec=str(tiny), data="synthetic", output=str(tmp_path / "exp"))
    write_plan(tmp_path / "exp", config, plan_variants(config))

    def start(config):
        assert config.address == "10.0.0.1:6379"
        raise SystemExit(7)
    monkeypatch.setattr(tuning, "start_ray", start)
    code, _, err = run_cli(capsys, "explore", "--resume", tmp_path / "exp", "--address", "10.0.0.1:6379")
    assert code == 7, err


def test_a_data_folder_whose_classes_do_not_match_is_refused_before_ray(tiny, tmp_path, capsys, monkeypatch):
    """The gap: the spec scores 3 classes, the folder has 4; each trial failed inside Ray."""
    for c in "abcd":
        (tmp_path / "four" / c).mkdir(parents=True)
    monkeypatch.setattr(tuning, "start_ray", lambda config: pytest.fail("Ray started"))
    exp = tmp_path / "exp"
    code, out, err = run_cli(capsys, "explore", tiny, "--data", tmp_path / "four", "--sweep",
                             "width=0.25,0.5",
                             "-o", exp)
    assert code == 1, err
    assert "output 'fc' scores 3 classes but the data folder" in err and "has 4 (a, b, c, d)" in err, err
    assert "hint: --set classes=4" in err and "tiny.inc:" in err and "Traceback" not in err, err
    assert len(err.splitlines()) < 12 and not exp.exists()


def test_a_class_folder_without_images_is_refused_before_ray(tiny, tmp_path, capsys, monkeypatch):
    """A review found it: three class folders, as the spec scores, one of them empty; `incdsl train`
    refuses it at once, explore started Ray and every trial failed (retried) inside it."""
    from PIL import Image
    for c in "abc":
        (tmp_path / "data" / c).mkdir(parents=True)
    for c in "ab":
        Image.new("RGB", (8, 8)).save(tmp_path / "data" / c / "x.png")
    monkeypatch.setattr(tuning, "start_ray", lambda config: pytest.fail("Ray started"))
    exp = tmp_path / "exp"
    code, out, err = run_cli(capsys, "explore", tiny, "--data", tmp_path / "data",
                             "--sweep", "width=0.25,0.5", "-o", exp)
    assert code == 1 and f"class folder {tmp_path / 'data' / 'c'} has no images" in err, err
    assert "Traceback" not in err and not exp.exists()


def test_a_value_swept_twice_is_refused(tiny, tmp_path, capsys, monkeypatch):
    """0.125 and 0.1250 are one variant: it would be trained twice (both rows on the front)."""
    monkeypatch.setattr(tuning, "start_ray", lambda config: pytest.fail("Ray started"))
    code, out, err = run_cli(capsys, "explore", tiny, "--data", "synthetic", "--sweep", "width=0.125,0.1250",
                             "-o", tmp_path / "exp")
    assert code == 2 and "--sweep width lists the same value twice (0.125 and 0.1250)" in err, err
    assert "--variant" not in err and not (tmp_path / "exp").exists()


def test_the_live_table_of_a_resumed_experiment_shows_finished_trials_as_finished(capsys):
    """The gap: Tune restores the callback pickled when the experiment started (every row waiting),
    and calls no hook for the trials that had ended: the table said "waiting" for them."""
    from ray import cloudpickle  # as Tune pickles its callbacks with the experiment

    from incdsl.explore.live import live_table_class
    table = live_table_class()({"a": (10, 20), "b": (10, 20), "c": (10, 20), "d": (10, 20)}, 3,
                               "val_accuracy")
    restored = cloudpickle.loads(cloudpickle.dumps(table))
    trials = [SimpleNamespace(config={"variant": "a"}, status="TERMINATED",
                              last_result={"epoch": 3, "val_accuracy": 0.75, "images_per_second": 100.0}),
              SimpleNamespace(config={"variant": "b"}, status="TERMINATED",
                              last_result={"epoch": 1, "val_accuracy": 0.25, "images_per_second": 90.0}),
              SimpleNamespace(config={"variant": "c"}, status="ERROR", last_result={}),
              SimpleNamespace(config={"variant": "d"}, status="PENDING", last_result={"trial_id": "x"})]
    restored.on_step_begin(0, trials)
    shown = {ln.split()[0]: ln.rstrip() for ln in capsys.readouterr().out.splitlines()[1:]}
    assert shown["a"].endswith("done") and "3/3" in shown["a"] and "0.7500" in shown["a"], shown
    assert shown["b"].endswith("stopped at epoch 1"), shown
    assert shown["c"].endswith("error") and shown["d"].endswith("waiting"), shown
