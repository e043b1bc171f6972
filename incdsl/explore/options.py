"""The settings of one `incdsl explore` run (`ExploreConfig`) and their checks, made before Ray or
Keras loads. No Ray here: the plan, the checks and `--show` work without the `[explore]` extra."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields

from ..errors import OptionError

SCHEDULERS = ("fifo", "asha")
# the `incdsl train` settings a trial passes on to its TrainConfig (the rest are the trial's own)
TRAIN_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "label_smoothing", "weight_decay", "precision",
                "val_split", "preprocess", "augment", "seed", "bn_recalibrate")


@dataclass(frozen=True)
class ExploreConfig:
    """Every setting of one experiment. The variants are `sweep` (a grid: name -> values, as
    `incdsl compare --sweep`) on top of `sets`; with `params` and/or `macs` (counts per image) only
    the Pareto set that `incdsl fit` finds in that grid under the budgets is trained. The training
    settings are `incdsl train`'s (TrainConfig: `batch_size` global, in images; `lr` None takes the
    optimizer's recipe). Where it runs: `address` None starts a local Ray in-process with this
    machine's CPUs and GPUs; "auto" or "HOST:PORT" joins a running cluster. `cpus_per_trial`,
    `gpus_per_trial` are Ray resources per trial (None: 1 CPU, and 1 GPU where Ray sees any);
    `max_concurrent` bounds the trials run side by side (None: as resources allow). `scheduler`
    "asha" stops weak variants early (Tune's ASHAScheduler, `grace_period` in epochs); `max_failures`
    retries a trial whose process or node died, from its last checkpoint (Tune's FailureConfig)."""
    spec: str
    data: str
    output: str
    # name -> list of values (strings from the command line, or numbers)
    sweep: dict = field(default_factory=dict)
    sets: dict = field(default_factory=dict)  # name -> value, for every variant
    network: str | None = None
    params: int | None = None  # budget on the total params (count)
    macs: int | None = None  # budget on MACs per image
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float | None = None
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    precision: str = "float32"
    val_split: float | None = None
    preprocess: str = "inception"
    augment: bool = True
    seed: int = 0
    bn_recalibrate: int | str = "auto"
    address: str | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    max_concurrent: int | None = None
    scheduler: str = "fifo"
    grace_period: int = 1  # epochs every variant trains before ASHA may stop it
    max_failures: int = 3

    def __post_init__(self) -> None:
        check_explore(self)

    def train_settings(self) -> dict:
        """The `incdsl.train.TrainConfig` keywords every trial shares."""
        return {k: getattr(self, k) for k in TRAIN_FIELDS}

    def to_json(self) -> dict:
        """The settings as plain JSON values (the experiment folder's explore.json keeps them for
        `--resume`)."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> "ExploreConfig":
        """The settings an experiment folder's explore.json kept (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def check_explore(c: ExploreConfig) -> None:
    """Raise `OptionError` naming the parameter for a value out of range: a sweep with no values,
    a budget not above 0, resources below 0 (CPUs must be above 0), max_concurrent or grace_period
    below 1, an unknown scheduler, a grace period longer than the epochs; the training settings
    are checked as `incdsl train` checks them (`TrainConfig`)."""
    from ..train.config import TrainConfig
    for name, values in c.sweep.items():
        if not list(values):
            raise OptionError("{sweep} {name} has no values", name=name)
    for budget in ("params", "macs"):
        v = getattr(c, budget)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
            raise OptionError("{%s} must be a positive count, got {value}" % budget, value=v)
    if (c.params is not None or c.macs is not None) and not c.sweep:
        raise OptionError(
            "a {params} or {macs} budget picks the Pareto set of a grid: give the grid with {sweep} "
                          "NAME=V1,V2,...")
    if c.cpus_per_trial is not None and not c.cpus_per_trial > 0:
        raise OptionError("{cpus_per_trial} must be above 0")
    if c.gpus_per_trial is not None and not c.gpus_per_trial >= 0:
        raise OptionError("{gpus_per_trial} must be 0 or more")
    if c.max_concurrent is not None and c.max_concurrent < 1:
        raise OptionError("{max_concurrent} must be at least 1")
    if c.scheduler not in SCHEDULERS:
        raise OptionError("{scheduler} must be one of {names}", names=", ".join(SCHEDULERS))
    if c.grace_period < 1:
        raise OptionError("{grace_period} must be at least 1 epoch")
    if c.max_failures < 0:
        raise OptionError("{max_failures} must be 0 or more")
    # refuses what `incdsl train` refuses (epochs < 1, an unknown optimizer...)
    TrainConfig(**c.train_settings())
    if c.scheduler == "asha" and c.grace_period > c.epochs:
        raise OptionError("{grace_period} {grace} is longer than the {epochs} {n}: ASHA could stop nothing",
                          grace=c.grace_period, n=c.epochs)


def local_cpus() -> int:
    """The CPUs a local Ray gets: this machine's cores (os.cpu_count)."""
    return os.cpu_count() or 1
