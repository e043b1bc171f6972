"""One table from the library's parameter names to the command line's flags: the library's errors
(`incdsl.errors.OptionError`) name parameters (`epochs must be at least 1`), and `incdsl.cli.main`
rewrites them with this table (`--epochs must be at least 1`) before printing; a SpecError's message,
label or hint written as an `incdsl.text.ParamText` likewise (`cli_error`)."""
from __future__ import annotations

import copy

from ...errors import DataError, OptionError, SpecError
from ...text import ParamText

FLAGS = {
    # incdsl train (TrainConfig)
    "epochs": "--epochs", "seed": "--seed", "data": "--data", "data_synthetic": "--data synthetic",
    "set_classes": "--set classes", "resume": "--resume", "batch_size": "--batch-size",
    "optimizer": "--optimizer", "precision": "--precision", "strategy": "--strategy",
    "preprocess": "--preprocess", "lr": "--lr",
    "label_smoothing": "--label-smoothing", "aux_weight": "--aux-weight", "val_split": "--val-split",
    "weight_decay": "--weight-decay", "bn_recalibrate": "--bn-recalibrate",
    "steps_per_epoch": "--steps-per-epoch",
    "steps_per_execution": "--steps-per-execution", "workers": "--workers", "image_cache_mb": "--image-cache",
    "freeze": "--freeze",
    "follow_symlinks": "--follow-symlinks",
    "progress": "--progress", "verbose": "--verbose", "deterministic": "--deterministic",
    "worker_timeout": "--worker-timeout",
    "coordinator": "--coordinator", "num_processes": "--num-processes", "process_id": "--process-id",
    # incdsl compile --to onnx (backends.onnx.export)
    "layout": "--layout", "via": "--via", "opset": "--opset", "batch": "--batch", "no_verify": "--no-verify",
    "verify": "--verify", "verify_keras": "--verify keras",
    "via_direct": "--via direct", "dynamic": "'dynamic'",
    # drawings and the page (backends.dot, backends.html)
    "depth": "--depth", "only": "--only", "to_dot": "--to dot", "fmt": "--to",
    # any spec-reading command (--network); incdsl compile --to keras; incdsl train -o (TrainConfig.output)
    "network": "--network", "inference": "--inference", "path": "-o", "keras": "--to keras", "output": "-o",
    # incdsl check's target notes (incdsl.backends.targets)
    "onnx": "--to onnx", "onnx_tf2onnx": "--to onnx --via tf2onnx",
    # incdsl fit (fitting.fit)
    "low": "--min", "high": "--max", "vary": "--vary", "memory": "--memory", "latency": "--latency",
    "set": "--set",
    "scale": "--scale",
    # incdsl compare (sweep.plan)
    "sweep": "--sweep", "variant": "--variant",
    # incdsl explore (explore.ExploreConfig)
    "params": "--params", "macs": "--macs", "cpus_per_trial": "--cpus-per-trial",
    "gpus_per_trial": "--gpus-per-trial",
    "max_concurrent": "--max-concurrent", "scheduler": "--scheduler", "grace_period": "--grace-period",
    "max_failures": "--max-failures", "address": "--address",
    # incdsl import
    "weights_out": "--weights-out", "weights": "--weights",
}


def cli_text(e: OptionError) -> str:
    """`e`'s message in the command line's words: each parameter written as its flag."""
    return e.worded(FLAGS)


def cli_error(e: SpecError | DataError) -> SpecError | DataError:
    """`e` as the command line shows it: a message, label or hint the library wrote as a
    `ParamText` (naming parameters) written with flags instead; `e` itself when there is none."""
    fields = [f for f in ("message", "hint", "label") if isinstance(getattr(e, f, None), ParamText)]
    if not fields:
        return e
    shown = copy.copy(e)
    for f in fields:
        setattr(shown, f, getattr(e, f).worded(FLAGS))
    return shown
