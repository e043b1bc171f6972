"""An experiment from start to end: plan and check the variants, connect to Ray, train them as Tune
trials, and write and print the results (`run_experiment`); continue one (`resume_experiment`); read
one back (`show_experiment`). Ray is imported by tuning.py when an experiment starts."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from ..errors import DataError, SpecError, UsageError, missing_file
from ..network import Spec
from .folder import RESULTS_JSON, check_new_experiment, is_experiment, read_plan, write_plan
from .options import ExploreConfig
from .plan import Planned, plan_variants
from .results import ERROR_KEY, ExploreRow, from_json, table_text, trial_row, with_fronts, write_results

PLOT = "results.png"


def _anchored(config: ExploreConfig) -> ExploreConfig:
    """`config` with its files as absolute paths (explore.json keeps them, so `--resume` works from
    any directory, and the trials' processes do not depend on where Ray starts them), after
    checking that the data folder is there: a missing one is refused before Ray starts."""
    data = config.data
    if data != "synthetic":
        folder = Path(data)
        if not folder.exists():
            raise missing_file("data folder", data)
        if not folder.is_dir():
            raise UsageError(f"the data folder {data} is not a folder")
        data = str(folder.resolve())
    spec = str(Path(config.spec).resolve()) if Path(config.spec).is_file() else config.spec
    return dataclasses.replace(config, spec=spec, data=data, output=str(Path(config.output).absolute()))


def run_experiment(config: ExploreConfig, stream=None) -> tuple[list[ExploreRow], bool]:
    """Plan `config`'s variants (every one built and checked first), check the experiment folder
    `config.output`, connect to Ray, train each variant as one Tune trial, write results.json,
    results.csv and results.png, print the table to `stream` (default stdout). Returns (rows, whether
    the experiment was interrupted before every trial ended: `resume_experiment` continues it).
    Raises `SpecError` naming a variant that does not build or whose outputs do not match the data
    folder's classes, and `UsageError` for an experiment folder that exists or an unreachable Ray,
    all before anything is written; `DataError` naming the failures when every variant failed
    (the results are written first)."""
    config = _anchored(config)
    classes = data_classes(config.data)
    planned = plan_variants(config, classes)
    check_class_images(config.data, classes)
    root = Path(config.output)
    inputs = list(Spec(config.spec, config.network).program.files)
    if config.data != "synthetic":
        inputs.append(config.data)
    check_new_experiment(root, config, planned, inputs)
    from .tuning import start_ray
    resources = start_ray(config)
    try:
        write_plan(root, config, planned, inputs)
        return _run(config, planned, root, resources, False, stream or sys.stdout)
    finally:
        _shutdown()


def resume_experiment(root: str | Path, address: str | None = None, stream=None) -> tuple[list[ExploreRow],
                                                                                          bool]:
    """Continue the experiment in `root` with Tune's restore: finished and failed trials are kept,
    the others continue from their last checkpoint. `address` None uses the one the experiment was
    started with. Returns what `run_experiment` returns. Raises `UsageError` when `root` is not an
    experiment folder or holds no experiment state Tune can restore."""
    root = Path(root)
    config, planned = read_plan(root)
    if address is not None:
        config = ExploreConfig(**{**config.to_json(), "address": address})
    from .tuning import can_resume, start_ray
    resources = start_ray(config)
    try:
        if not can_resume(root):
            raise UsageError(
                f"{root} holds no experiment state that Ray Tune can restore (its ray/ folder is missing "
                             "or incomplete)")
        return _run(config, planned, root, resources, True, stream or sys.stdout)
    finally:
        _shutdown()


def show_experiment(root: str | Path, stream=None) -> list[ExploreRow]:
    """Print the results table of the experiment in `root` again; returns its rows. Raises
    `UsageError` when `root` is not an experiment folder or has no results yet."""
    root = Path(root)
    read_plan(root)
    try:
        rows, metric = from_json(json.loads((root / RESULTS_JSON).read_text()))
    except FileNotFoundError:
        raise UsageError(f"{root} has no results yet: the experiment has not ended (resuming it, "
                         f"resume={str(root)!r}, finishes it)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{root / RESULTS_JSON} cannot be read: {e}") from None
    print(table_text(rows, metric), file=stream or sys.stdout)
    return rows


def _run(config: ExploreConfig, planned: list[Planned], root: Path, resources: dict, resume: bool, stream):
    from .tuning import metric_name, run_tuner, saved_trials
    where = "a local Ray" if config.address is None else f"the Ray cluster at {config.address}"
    print(f"{'resuming' if resume else 'exploring'} {len(planned)} variant{'s' * (len(planned) != 1)} of "
          f"{config.spec} on {config.data} ({config.epochs} epoch{'s' * (config.epochs != 1)} each) on "
          f"{where}, "
          f"{resources['cpu']:g} CPU and {resources['gpu']:g} GPU per trial; experiment folder {root}",
          file=stream)
    stream.flush()
    grid = run_tuner(config, planned, root, resources, resume)
    rows, interrupted = grid_rows(grid, saved_trials(root), planned, root, config)
    metric = metric_name(config)
    write_results(root, rows, metric, config.spec)
    if any(r.accuracy is not None for r in rows):
        try:
            from .plot import plot_results
            plot_results(rows, metric, root / PLOT)
        except ModuleNotFoundError as e:  # matplotlib is the [plot] extra
            print(f"note: no plot ({e.name} is not installed: pip install 'incdsl[plot]')", file=sys.stderr)
    print(table_text(rows, metric), file=stream)
    print(f"wrote {root / RESULTS_JSON}, {root / 'results.csv'}"
          + (f", {root / PLOT}" if (root / PLOT).exists() else ""), file=stream)
    if interrupted:
        print(f"interrupted: incdsl explore --resume {root} continues it", file=sys.stderr)
    else:
        check_failures(rows)
    return rows, interrupted


def grid_rows(grid, trials: dict[str, tuple[str, str]], planned: list[Planned], root: Path,
              config: ExploreConfig) -> tuple[list[ExploreRow], bool]:
    """The rows of Tune's ResultGrid `grid` (one per planned variant, sorted, Pareto fronts marked)
    and whether the experiment was interrupted. `trials` is `tuning.saved_trials` (trial id ->
    (variant, status)): a trial interrupted before its first report has a Result without a config
    (Ray's Result.config is None then), known by its trial id; one unknown either way is a row
    "not finished" from the plan."""
    from .tuning import metric_name
    states = dict(trials.values())
    if states:
        ended = {label for label, status in states.items() if status in ("TERMINATED", "ERROR")}
        interrupted = len(ended) < len(planned)
    else:
        ended = None
        interrupted = grid.num_terminated + grid.num_errors < len(grid)
    metric = metric_name(config)
    by_label = {p.label: p for p in planned}
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        label = (result.config or {}).get("variant") or trials.get(metrics.get("trial_id"), ("",))[0]
        p = by_label.get(label)
        if p is None or any(r.label == label for r in rows):
            continue
        error = _error_text(result.error) or metrics.get(ERROR_KEY)
        rows.append(trial_row(root, p, metric, p.acc_key, config.epochs, metrics, error,
                              p.label in ended if ended is not None else not interrupted))
    done = {r.label for r in rows}
    rows += [trial_row(root, p, metric, p.acc_key, config.epochs, None, None, False) for p in planned
             if p.label not in done]
    return with_fronts(rows), interrupted


MAX_NAMED = 8  # failed variants named in the one-screen error; the table lists every one


def check_failures(rows: list[ExploreRow]) -> None:
    """Raise `DataError` naming the failed variants and their errors when every variant failed
    (nothing was learnt: exit 1); where only some failed, say which on stderr and go on (the others'
    results stand: exit 0, as the README says)."""
    failed = [r for r in rows if r.state == "error"]
    if not failed:
        return
    named = "; ".join(f"{r.label}: {r.error}" for r in failed[:MAX_NAMED])
    more = f"; ... and {len(failed) - MAX_NAMED} more" if len(failed) > MAX_NAMED else ""
    if len(failed) == len(rows):
        raise DataError(f"every variant failed ({len(failed)}): {named}{more}",
                        hint="each trial's error is in the table above and in results.json")
    print(f"note: {len(failed)} of {len(rows)} variants failed ({', '.join(r.label for r in failed)}); "
          "the others' results stand", file=sys.stderr)


def data_classes(data: str) -> list[str] | None:
    """The class names of the image folder `data` (its sub-folders, sorted, as `incdsl train` reads
    them); None for synthetic data. Raises `SpecError` for a missing folder or one with fewer than
    two class folders (as `incdsl.train.scan_image_folder` refuses it)."""
    if data == "synthetic":
        return None
    from ..train.scan import class_folders
    root = Path(data)
    if not root.is_dir():
        raise missing_file("data folder", data)
    classes = class_folders(root, False)
    if len(classes) < 2:
        found = f"only '{classes[0]}'" if classes else "none"
        raise SpecError(f"{root} must have one sub-folder of images per class, at least two; found {found}")
    return classes


def check_class_images(data: str, classes: list[str] | None) -> None:
    """Raise `SpecError` for a class folder of `data` without images, as `incdsl train` refuses
    it, before Ray starts (each trial checks the files themselves)."""
    if classes is None:
        return
    from ..train.folders import IMAGE_SUFFIXES
    from ..train.scan import image_files
    root = Path(data)
    for name in classes:
        if not image_files(root, root / name, IMAGE_SUFFIXES, False):
            raise SpecError(f"class folder {root / name} has no images ({', '.join(IMAGE_SUFFIXES)})")


def _error_text(error) -> str | None:
    """A trial's error in one line: the incdsl error's message (Ray wraps it in RayTaskError)."""
    if error is None:
        return None
    cause = getattr(error, "cause", None) or error
    text = getattr(cause, "message", None) or str(cause)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[0] if lines else type(cause).__name__)[:300]


def _shutdown() -> None:
    import ray
    ray.shutdown()


def is_experiment_folder(root: str | Path) -> bool:
    """Whether `root` holds an experiment of incdsl explore."""
    return is_experiment(Path(root))
