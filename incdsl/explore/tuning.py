"""Ray and Tune for `incdsl explore`: connect to Ray (a local one started in-process, or a cluster
by address), check that it has the resources asked for, and run the variants as Tune trials
(`Tuner.fit`), or continue an experiment (`Tuner.restore`). Everything distributed is Tune's:
scheduling (FIFO or ASHAScheduler), retries (FailureConfig), checkpoints (tune.report with a
Checkpoint, CheckpointConfig) and restore; Tune's state lives in the experiment folder (its
RunConfig storage_path), Ray's session files under Ray's temp folder (/tmp/ray)."""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from ..errors import OptionError, UsageError
from .options import ExploreConfig, local_cpus
from .plan import Planned

TUNE_NAME = "ray"  # Tune's experiment folder inside the experiment folder
# s: a HOST:PORT that does not answer within this is unreachable (Ray itself retries for minutes)
CONNECT_TIMEOUT = 5.0

# Ray's output reduced to what the user needs: the experiment's own table (live.py) and errors.
QUIET = {"RAY_DEDUP_LOGS": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0",
         "RAY_CHDIR_TO_TRIAL_DIR": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1e9",
         "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_USAGE_STATS_ENABLED": "0",
         # Ray lowers its workers' priority (niceness 15) by default: a trial would train slower than
         # `incdsl train` beside any other work on the machine
         "RAY_worker_niceness": "0"}


def worker_env() -> dict:
    """The environment a trial's process needs from the driver: the Keras backend the driver settled,
    quiet TensorFlow, and the driver's PYTHONPATH (so that a checkout's incdsl is the one imported)."""
    keep = ("KERAS_BACKEND", "PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "INCDSL_VERBOSE")
    env = {k: os.environ[k] for k in keep if os.environ.get(k)}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return {**env, **{k: v for k, v in QUIET.items() if k.startswith("TUNE_") or k.startswith("RAY_CHDIR")}}


def check_reachable(address: str) -> None:
    """Refuse a HOST:PORT nothing answers on within CONNECT_TIMEOUT seconds (`ray.init` would retry
    for minutes). Raises `UsageError` naming the address."""
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://"):
        host, sep, port = address[len("ray://"):].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(
            f"address {address}: expected 'auto' or HOST:PORT of a Ray cluster's head (Ray prints it "
                         "when the head node starts), e.g. 127.0.0.1:6379")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as e:
        raise UsageError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); start its head node with Ray's "
                         "own `ray start`, or leave out the address for a local Ray") from None


def start_ray(config: ExploreConfig):
    """Connect to Ray as `config.address` says: None starts a local Ray in this process with this
    machine's CPUs (and the GPUs Ray detects); "auto" or HOST:PORT joins a running cluster. Returns
    the resources per trial ({"cpu": n, "gpu": m}). A HOST:PORT is joined with this machine's Ray
    token where it has one (auth.py). Raises `UsageError` for an unreachable address, a cluster
    that refuses the token (or its absence, naming the fix), or a cluster without the CPUs or GPUs a
    trial asks for (Ray is shut down again)."""
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    import ray
    if config.address not in (None, "auto"):
        check_reachable(config.address)
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                   runtime_env={"env_vars": worker_env()})
    try:
        if config.address is None:
            # "local": a new Ray of our own, even where another runs on this machine (ray.init() would join
            # it)
            ray.init(address="local", num_cpus=local_cpus(), **options)
        elif config.address == "auto":  # Ray sends the token of this machine itself
            ray.init(address=config.address, **options)
        else:
            from .auth import TokenRefused, joining, send_token_if_here
            try:
                with joining(config.address):
                    ray.init(address=config.address, **options)
            except TokenRefused:
                # a cluster with token auth: again with this machine's token, where it has one (a
                # cluster without auth would refuse a driver that asks for tokens itself)
                if not send_token_if_here():
                    raise
                with joining(config.address):
                    ray.init(address=config.address, **options)
    except ConnectionError as e:
        raise UsageError(f"cannot connect to Ray at {config.address}: {str(e).splitlines()[0]}") from None
    try:
        return trial_resources(config, ray.nodes())
    except UsageError:
        ray.shutdown()
        raise


def trial_resources(config: ExploreConfig, nodes: list[dict]) -> dict:
    """The resources of one trial on a cluster of `nodes` (ray.nodes(): "Alive", "Resources"):
    `cpus_per_trial` (default 1), `gpus_per_trial` (default 1 where the cluster has a GPU, else 0).
    Raises `OptionError` (naming the parameter) when no live node has that many CPUs or GPUs."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
    cpus = max((r.get("CPU", 0) for r in alive), default=0)
    gpus = max((r.get("GPU", 0) for r in alive), default=0)
    want_cpu = 1.0 if config.cpus_per_trial is None else config.cpus_per_trial
    want_gpu = (1.0 if gpus else 0.0) if config.gpus_per_trial is None else config.gpus_per_trial
    where = "this machine" if config.address is None else f"the cluster at {config.address}"
    if want_gpu > gpus:
        raise OptionError("a trial asks for {n} GPU{s} ({gpus_per_trial}) and no node of {where} has {has}",
                          n=f"{want_gpu:g}", s="s" * (want_gpu != 1), where=where,
                          has="any" if not gpus else f"more than {gpus:g}")
    if want_cpu > cpus:
        raise OptionError(
            "a trial asks for {n} CPUs ({cpus_per_trial}) and the largest node of {where} has {has}",
                          n=f"{want_cpu:g}", where=where, has=f"{cpus:g}")
    return {"cpu": want_cpu, "gpu": want_gpu}


def metric_name(config: ExploreConfig) -> str:
    """What ranks the variants: validation accuracy, or training accuracy without validation data
    (val_split 0, or synthetic data without a val_split)."""
    none = config.val_split == 0 or (config.data == "synthetic" and not config.val_split)
    return "accuracy" if none else "val_accuracy"


def run_tuner(config: ExploreConfig, planned: list[Planned], root: Path, resources: dict,
              resume: bool = False):
    """Train every variant as one Tune trial (`trial.run_trial`) and return Tune's ResultGrid. With
    `resume`, continue the experiment in `root` (Tuner.restore: finished and failed trials are not
    rerun, unfinished ones continue from their last checkpoint)."""
    from ray import tune

    from .live import live_table_class
    from .trial import run_trial

    root = root.resolve()  # Tune's storage_path is a URI or an absolute path
    setup = {"spec": str(Path(config.spec).resolve()) if Path(config.spec).exists() else config.spec,
             "network": config.network, "data": str(Path(config.data).resolve()) if config.data != "synthetic"
             else "synthetic", "train": config.train_settings(), "root": str(root), "cpus": resources["cpu"],
             "variants": {p.label: {"sets": p.sets, "folder": p.folder} for p in planned}}
    trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup), resources)
    path = root / TUNE_NAME
    if resume:
        return tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=False,
                                  restart_errored=False).fit()
    metric = metric_name(config)
    scheduler = None
    if config.scheduler == "asha":
        scheduler = tune.schedulers.ASHAScheduler(time_attr="epoch", max_t=config.epochs,
                                                  grace_period=config.grace_period, reduction_factor=2)
    live = live_table_class()({p.label: (p.params, p.macs) for p in planned}, config.epochs, metric)
    tuner = tune.Tuner(
        trainable, param_space={"variant": tune.grid_search([p.label for p in planned])},
        # reuse_actors: a trial's process trains the next trial once it ends (FunctionTrainable's
        # reset_config), rather than a new process importing Keras and its backend again: the main
        # overhead of explore against `incdsl train` runs in sequence (tools/bench_explore.py)
        tune_config=tune.TuneConfig(metric=metric, mode="max", scheduler=scheduler,
                                    max_concurrent_trials=config.max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(name=TUNE_NAME, storage_path=str(root), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=config.max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  callbacks=[live]))
    return tuner.fit()


def saved_trials(root: Path) -> dict[str, tuple[str, str]]:
    """Each trial as Tune last saved it in the experiment folder: trial id -> (variant, status:
    TERMINATED, ERROR, RUNNING, PENDING, PAUSED). Tune writes its state before it stops the trials
    of an interrupted experiment, after which its in-memory trials all read TERMINATED. Empty when
    the state cannot be read (the caller falls back on the ResultGrid's counts)."""
    import json
    # the newest by the time in its name: Tune rewrites the files of earlier sessions at the end too
    files = sorted((root / TUNE_NAME).glob("experiment_state-*.json"), key=lambda f: f.name)
    if not files:
        return {}
    try:
        out = {}
        for entry in json.loads(files[-1].read_text())["trial_data"]:
            trial = entry[0] if isinstance(entry, list) else entry
            trial = json.loads(trial) if isinstance(trial, str) else trial
            config = trial.get("config")
            config = json.loads(config) if isinstance(config, str) else config
            out[str(trial.get("trial_id"))] = (config["variant"], trial["status"])
        return out
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}


def can_resume(root: Path) -> bool:
    """Whether `root` holds a Tune experiment that Tuner.restore can continue."""
    from ray import tune
    return tune.Tuner.can_restore(str(root.resolve() / TUNE_NAME))
