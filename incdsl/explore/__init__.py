"""`incdsl explore`: train a sweep of variants and compare what they learn, on Ray Tune.

The variants are planned as `incdsl compare` and `incdsl fit` plan them (a grid of `--sweep`s, or
the Pareto set of that grid under a `--params`/`--macs` budget), each trained as one Ray Tune trial
with the code of `incdsl train` (`incdsl.train.train`, in the trial's process). Ray runs locally
(started in-process) or on a cluster by address; Tune schedules (FIFO, or ASHA to stop weak
variants early), retries failed trials from their checkpoints, and restores an interrupted
experiment. Ray is the `[explore]` extra; only this package imports it, and only once an
experiment starts.

- options: ExploreConfig and its checks          - plan: the variants, built and counted
- folder: the experiment folder (explore.json)   - results: rows, Pareto fronts, table, CSV, JSON
- tuning: Ray and the Tuner (Ray)                - trial: one variant's training (Ray, Keras)
- live: the live table (Ray)                     - plot: accuracy against MACs and params (matplotlib)
- experiment: run, resume, show                  - auth: Ray's token authentication for --address
"""
from __future__ import annotations

from pathlib import Path

from .options import SCHEDULERS, ExploreConfig
from .results import ExploreRow


def explore(spec: str | Path, data: str | Path, output: str | Path | None = None, *,
            sweep: dict[str, list] | None = None, params: int | None = None, macs: int | None = None,
            network: str | None = None, address: str | None = None, stream=None,
            **settings) -> list[ExploreRow]:
    """Train every variant of `spec` on the image folder `data` and return one `ExploreRow` per variant
    (best first: its accuracy, epochs, images/s, state, Pareto marks), as `incdsl explore` does.

    `sweep` crosses values ({"width": [0.5, 1.0], "size": [96, 128]}); `params`/`macs` (counts, MACs
    per image) keep only the Pareto set of that grid under the budget, as `incdsl fit` finds it;
    `output` is the experiment folder (default: a new folder named after the spec and the time);
    `address` a Ray cluster ("auto", "HOST:PORT"; None: a local Ray). `settings` are
    `ExploreConfig`'s (the `incdsl train` settings: epochs, batch_size, lr, optimizer, precision,
    val_split, seed...; cpus_per_trial, gpus_per_trial, max_concurrent, scheduler, grace_period,
    max_failures) and spec arguments go in `sets` ({"classes": 10}). Raises `SpecError` for a
    variant that does not build, `UsageError` (`OptionError` naming the parameter) for bad
    settings, both before any training; `KeyboardInterrupt` when interrupted (the folder resumes
    with `incdsl explore --resume`). Needs the `[explore]` extra (Ray Tune) and a Keras backend.
    Example: `incdsl.explore("tiny.inc", "digits/train", sweep={"width": [0.5, 1]}, epochs=2)`."""
    from .experiment import run_experiment
    from .folder import default_output
    settings["sets"] = dict(settings.get("sets") or {})  # None: no spec arguments, as {}
    config = ExploreConfig(spec=str(spec), data=str(data), output=str(output or default_output(str(spec))),
                           sweep={k: list(v) for k, v in (sweep or {}).items()}, params=params, macs=macs,
                           network=network, address=address, **settings)
    rows, interrupted = run_experiment(config, stream)
    if interrupted:
        raise KeyboardInterrupt(
            f"interrupted: resuming {config.output} (resume={str(config.output)!r}) continues it")
    return rows


__all__ = ["explore", "ExploreConfig", "ExploreRow", "SCHEDULERS"]
