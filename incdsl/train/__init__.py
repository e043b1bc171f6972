"""Training a checked network on an image folder or on synthetic data (`incdsl train`, `incdsl predict`).

Importing this package stays light (no Keras, TensorFlow or PIL): the settings (config), what the
losses need from the IR (heads) and the checks of the data (folders) come first, so that mistakes
surface before Keras takes its seconds to load. The Keras work is in the modules that `train` and
`predict` import lazily:

- config: Recipe, TrainConfig, RunPaths, HeadLoss, TrainResult, Cluster (TF_CONFIG), check_config
- heads: head losses, the main head, the activation a head ends in
- folders: an image folder scanned into classes and files; predict's file checks
- scan: the folder's files without leaving it (symbolic links), each checked to decode (Pillow, threads)
- outputs: what a run may write, refused before it starts (inputs, links, folders it did not make)
- resume: the backup of an interrupted run, restored exactly or refused (Keras, h5py)
- images: an image folder's split, per-epoch order and flips (FolderPlan), Pillow reading  (numpy, Pillow)
- data: uint8 input: synthetic batches, the folder as a PyDataset (Pillow threads) or tf.data  (Keras)
- model: preprocessing inside the model, losses, optimizer   (Keras)
- placement: distribution strategies                          (Keras, tf.distribute)
- callbacks (incl. StopOnNonFinite), saving, predict   (Keras)
- loop: one run, its steps in run/ (data, export, callbacks, fit, failures, report)   (Keras)
- keras_saving_fix: a cache of Keras 3.15's saving code that never hit, filled (half of each save)
- bn: precise batch norm (fvcore's update_bn_stats in Keras); finish: it, applied to the saved
  models with validation accuracy before and after                 (Keras)
- diagnose: why validation accuracy stays far below training accuracy (no Keras)
"""
from __future__ import annotations

from ..errors import SpecError
from ..text import ParamText
from .config import (
    OPTIMIZERS,
    PRECISIONS,
    PREPROCESS,
    RECIPES,
    STRATEGIES,
    Cluster,
    HeadLoss,
    Recipe,
    RunPaths,
    TrainConfig,
    TrainResult,
    check_config,
    read_tf_config,
)
from .folders import IMAGE_SUFFIXES, check_predict_files, scan_image_folder
from .heads import check_classes, head_losses, main_head


def train(net, config: TrainConfig) -> TrainResult:
    """Train `net` (a checked `incdsl.network.Network` with one inference head) as `config` says;
    write the model, its best epoch, logs; return what happened (a `TrainResult`: epochs run,
    Keras' history, throughput in images/s, replicas, class names). The recipe follows the papers
    (see `incdsl.train.config`: GoogLeNet Section 6, Inception-v3 Section 8).

    Raises UsageError for bad settings and SpecError for a spec or data folder training cannot use,
    both before Keras loads; DataError for a run that fails while it runs (the loss diverged, the
    data vanished or does not decode, a --weights file that is not a model)."""
    check_config(config)
    from .outputs import check_run_outputs, run_inputs
    check_run_outputs(config.paths(), run_inputs(net, config.weights, config.data), config.tensorboard,
                      config.data)
    main_head(net)
    head_losses(net, config.aux_weight)  # spec problems surface before Keras loads
    folder = None
    if config.data != "synthetic":
        folder = scan_image_folder(config.data, config.follow_symlinks, config.workers)
        check_classes(net, folder[0], f"the data folder {config.data}")
    check_recalibration(config, folder)
    from . import loop
    return loop.train(net, config, folder)


def check_recalibration(config: TrainConfig, folder) -> None:
    """An explicit bn_recalibrate=N needs N training batches from one pass over the data (epochs
    cut from an endless stream, steps_per_epoch on a folder, always have them). Raises SpecError
    naming the parameters (the command line words them as flags)."""
    asked = config.bn_recalibrate
    if not isinstance(asked, int) or (folder is not None and config.steps_per_epoch):
        return
    if folder is None:
        batches, what = config.steps_per_epoch or 10, "synthetic data gives"
    else:
        total = sum(len(f) for f in folder[1])
        split = 0.1 if config.val_split is None else config.val_split
        train = total - int(total * split)  # as Keras' image_dataset_from_directory splits
        batches = -(-train // config.batch_size)
        what = f"{config.data} gives ({train} training images)"
    if asked > batches:
        raise SpecError(
            ParamText("{bn_recalibrate} {asked} needs {asked} training batches of {batch}, and {what} "
                                  "{batches}", asked=asked, batch=config.batch_size, what=what,
                                  batches=batches),
                        hint=ParamText(
                            "{bn_recalibrate} {batches} or less, a smaller {batch_size}, or more images",
                                       batches=batches))


__all__ = ["TrainConfig", "TrainResult", "RunPaths", "HeadLoss", "Recipe", "head_losses", "main_head",
           "check_classes",
           "scan_image_folder", "check_predict_files", "train", "Cluster", "read_tf_config", "check_config",
           "check_recalibration",
           "OPTIMIZERS", "PRECISIONS", "STRATEGIES", "PREPROCESS", "RECIPES", "IMAGE_SUFFIXES"]
