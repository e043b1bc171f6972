"""The experiment folder of `incdsl explore` (`-o DIR`), everything the experiment writes:

- explore.json: the settings and the planned variants (what `--resume` continues), then the results;
- ray/: Tune's experiment (RunConfig storage_path and name: its state, trials' checkpoints);
- trials/VARIANT/: each variant's `incdsl train` outputs (model.keras, model.best.keras, model.log.csv);
- results.csv, results.json, results.png: the final table and plot.

No Ray here: checking a folder and `--show` need none."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from ..errors import UsageError
from ..io import check_output, write_atomic
from ..train.config import RunPaths
from ..train.outputs import check_run_outputs
from .options import ExploreConfig
from .plan import Planned

FORMAT = "incdsl-explore/1"
PLAN = "explore.json"
RESULTS_JSON, RESULTS_CSV = "results.json", "results.csv"


def default_output(spec: str) -> Path:
    """A new folder named after the spec and the time: explore-googlenet-20250101-120000."""
    return Path(f"explore-{Path(spec).stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def check_new_experiment(root: Path, config: ExploreConfig, planned: list[Planned], inputs) -> None:
    """Refuse an experiment folder that exists (a file, a link, a folder that is not empty: `--resume`
    continues an experiment), and every trial output that `incdsl train` would refuse (an input
    such as the spec, the data folder, or a place inside the data folder). Raises `UsageError` or
    `OptionError` naming the path, before anything is written."""
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise UsageError(
            f"the experiment folder {root} is {'a symbolic link' if root.is_symlink() else 'not a folder'}; "
                         "pick another -o")
    if root.is_dir() and any(root.iterdir()):
        hint = "resuming it continues it" if is_experiment(root) else "pick a new folder"
        raise UsageError(f"the experiment folder {root} already exists and is not empty ({hint})")
    check_output(root / PLAN, inputs=inputs)
    for p in planned:
        check_run_outputs(RunPaths.beside(root / "trials" / p.folder / "model.keras"), inputs, False,
                          config.data)


def is_experiment(root: Path) -> bool:
    """Whether `root` is an experiment folder (its explore.json says so)."""
    try:
        return json.loads((root / PLAN).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def write_plan(root: Path, config: ExploreConfig, planned: list[Planned], inputs=()) -> None:
    """Create the experiment folder and write explore.json (settings and variants)."""
    root.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "config": config.to_json(),
            "variants": [asdict(p) for p in planned]}
    write_atomic(root / PLAN, json.dumps(data, indent=1) + "\n", inputs=inputs)


def read_plan(root: Path) -> tuple[ExploreConfig, list[Planned]]:
    """The settings and variants of the experiment in `root`. Raises `UsageError` when `root` is not
    an experiment folder (no explore.json of incdsl explore, or a damaged one)."""
    what = f"{root} is not an experiment folder of incdsl explore"
    if not root.is_dir():
        raise UsageError(f"{what} ({'it does not exist' if not root.exists() else 'not a folder'})")
    try:
        data = json.loads((root / PLAN).read_text())
    except FileNotFoundError:
        raise UsageError(f"{what} (it has no {PLAN})") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"{what} ({PLAN} cannot be read: {e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{what} ({PLAN} is not one it wrote)")
    try:
        return ExploreConfig.from_json(data["config"]), [Planned(**v) for v in data["variants"]]
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{what} ({PLAN} is damaged: {e})") from None
