"""`incdsl train SPEC --data DIR|synthetic -o model.keras`: train a spec with Keras (see incdsl/train/)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ...errors import UsageError
from ...io import check_output, note_input
from ...train import OPTIMIZERS, PRECISIONS, PREPROCESS, STRATEGIES, RunPaths, TrainConfig
from ...train.outputs import check_run_outputs, run_inputs
from .help_format import DefaultsHelpFormatter
from .spec_args import add_spec_args, load_net


def add_parser(sub) -> None:
    """Add `incdsl train SPEC --data DIR|synthetic -o model.keras` and its options to `sub` (the argparse
    subparsers of `cli.build_parser`); its handler is `run`."""
    p = sub.add_parser(
        "train",
        formatter_class=DefaultsHelpFormatter,
        help="train a spec on an image folder (one sub-folder per class) or synthetic data",
        description="Train with the papers' recipe where it applies: auxiliary heads weighted by "
        "their spec loss_weight, SGD with momentum 0.9 or RMSProp (decay 0.9, eps 1.0). "
        "Writes the inference model (taking raw 0-255 images), MODEL.best.keras, "
        "MODEL.log.csv and MODEL.tb/ (TensorBoard).",
    )
    add_spec_args(p)
    p.add_argument("--data", required=True, metavar="DIR|synthetic",
                   help="an image folder with one sub-folder per class, or 'synthetic' (random images)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.keras",
                   help="where to write the trained model")
    p.add_argument("--epochs", type=int, default=10, metavar="N", help="passes over the training images")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="global batch size (split across replicas)")
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="sgd",
        help="sgd: momentum 0.9, lr x0.96 every 8 epochs (GoogLeNet); rmsprop: decay 0.9, eps 1.0, "
        "lr x0.94 every 2 epochs, clipping 2.0 (Inception v3); adam",
    )
    p.add_argument("--lr", type=float,
                   help="initial learning rate (default: sgd 0.01, rmsprop 0.045, adam 0.001)")
    p.add_argument("--label-smoothing", type=float, default=0.0, metavar="X",
                   help="e.g. 0.1 as in Inception v3")
    p.add_argument(
        "--aux-weight",
        type=float,
        metavar="X",
        help="loss weight of the training-only heads (default: each head's loss_weight in the spec)",
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=0.0,
        metavar="X",
        help="decoupled weight decay on the kernels (Keras optimizers' weight_decay: w -= lr * X * w each "
        "step); the papers' L2 penalty is weight_decay= in the spec (README, Training)",
    )
    p.add_argument(
        "--bn-recalibrate",
        type=bn_batches,
        default="auto",
        metavar="N|off",
        help="before each validation and at the end, set every batch norm's moving mean and variance to the "
        "average over N training batches ('precise BN', fvcore's update_bn_stats), so that validation and "
        "MODEL.best.keras measure the model as saved; default: up to 100, one epoch at most; off: "
        "Keras' moving averages",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="start from pretrained weights (.keras, PyTorch .pth/.pt/.safetensors, "
        "keras.applications .h5): every layer whose shapes fit; a new head keeps its initial values",
    )
    p.add_argument("--freeze", metavar="NAME|backbone",
                   help="freeze a layer or module call and everything before it, "
                   "or the backbone (all but the heads); frozen batch norms stay in inference mode")
    p.add_argument("--unfreeze-after", type=int, metavar="N",
                   help="with --freeze: after N epochs train every layer")
    p.add_argument("--unfreeze-lr", type=float, metavar="X",
                   help="the learning rate after unfreezing (default: a tenth of --lr)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32", help="Keras dtype policy")
    p.add_argument(
        "--jit",
        action="store_true",
        help="compile the training step with XLA (default: Keras decides; XLA on GPUs, always on JAX)",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="mirrored: every local device (TF MirroredStrategy, JAX DataParallel); multiworker: each "
        "process of a job runs the same command (TF: MultiWorkerMirroredStrategy from TF_CONFIG; JAX: "
        "jax.distributed, the job from --coordinator and the two flags below or JAX's cluster "
        "detection), one process writes; PyTorch: default only",
    )
    p.add_argument(
        "--val-split",
        type=float,
        metavar="X",
        help="fraction of the images held out for validation (default 0.1; none for synthetic data)",
    )
    p.add_argument("--preprocess", choices=PREPROCESS, default="inception",
                   help="how the model scales raw pixels: inception [-1,1] (default), unit [0,1], "
                   "imagenet (torchvision's mean/std), none")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no random flips")
    p.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help="batches per epoch (synthetic data: default 10)")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="threads that decode an image folder with Pillow on "
        "the JAX and PyTorch backends (default: every core, at most 16; TensorFlow: tf.data decides)",
    )
    p.add_argument(
        "--image-cache",
        type=float,
        default=1024,
        metavar="MB",
        help="MiB of decoded images the Pillow reader (JAX, PyTorch) keeps, so that each file is decoded "
        "once, when the whole folder fits (default 1024; 0: decode every epoch)",
    )
    p.add_argument(
        "--steps-per-execution",
        type=int,
        metavar="N",
        help="training steps per call into the backend "
        "(default: up to 8, a divisor of the steps per epoch; 1 on PyTorch and under tf.distribute)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seeds the initial weights, the split and the batch order")
    p.add_argument("--follow-symlinks", action="store_true", help="follow symbolic links in --data that lead "
                   "outside it (default: such a link is refused, so that nothing outside the folder is read)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last finished epoch")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    p.add_argument(
        "--progress",
        choices=("bar", "epoch", "off"),
        default="auto",
        help="Keras' progress output: a live bar, one line per epoch, or none (default: a bar on a "
        "terminal, a line per epoch otherwise)",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="bit-identical losses and weights for two runs with the same --seed on the same backend and "
        "machine (the backend's determinism switches; slower, see README)",
    )
    p.add_argument("--worker-timeout", type=float, default=300.0, metavar="S",
                   help="--strategy multiworker: how long to wait for every worker (TF_CONFIG's, or the "
                        "JAX job's) to start (default 300 s)")
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="--strategy multiworker on JAX: process 0's address and a free port (jax.distributed's "
        "coordinator); not needed where JAX detects the cluster (SLURM, Open MPI, Cloud TPU, "
        "JAX_COORDINATOR_ADDRESS)",
    )
    p.add_argument("--num-processes", type=int, metavar="N",
                   help="--strategy multiworker on JAX: processes in the job")
    p.add_argument(
        "--process-id",
        type=int,
        metavar="I",
        help="--strategy multiworker on JAX: this process, 0 to N-1 (process 0 writes the outputs)",
    )
    # `train --verbose N` was Keras' verbosity; --verbose is now global only (before the command)
    p.add_argument("--verbose", dest="train_verbose", nargs="?", const="", default=None,
                   help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl train SPEC --data DIR|synthetic -o model.keras` with the parsed command line `args`;
    returns the exit code (0 when fine).

    Raises `UsageError` (exit 2) for `--unfreeze-after` without `--freeze`.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    from ...train import train
    net = load_net(args)
    if args.train_verbose is not None:
        old = {"0": "off", "1": "bar", "2": "epoch"}.get(args.train_verbose)
        raise UsageError(
            "train has no --verbose option: Keras' progress output is --progress bar|epoch|off"
            + (f" (--verbose {args.train_verbose} is --progress {old})" if old else "")
            + "; --verbose before the command (incdsl --verbose train ...) lets libraries' start-up "
            "lines through"
        )
    if args.weights:
        note_input(args.weights)  # as the spec files: no output of this command may replace it
    check_output(args.output)  # its name first (a folder, '/' at the end), then every output of the run
    check_run_outputs(RunPaths.beside(args.output), run_inputs(net, args.weights, args.data),
                      args.tensorboard,
                      args.data)  # never an input (spec, use'd file, --weights, the data folder), a link...
    if args.unfreeze_after is not None and not args.freeze:
        raise UsageError("--unfreeze-after needs --freeze")
    config = TrainConfig(  # refuses values out of range (OptionError; incdsl.cli.main words it with flags)
        output=Path(args.output), data=args.data, epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, lr=args.lr, label_smoothing=args.label_smoothing,
        aux_weight=args.aux_weight,
        precision=args.precision, jit=args.jit, strategy=args.strategy, val_split=args.val_split,
        preprocess=args.preprocess, augment=args.augment, steps_per_epoch=args.steps_per_epoch,
        seed=args.seed,
        workers=args.workers, image_cache_mb=args.image_cache, steps_per_execution=args.steps_per_execution,
        follow_symlinks=args.follow_symlinks, resume=args.resume, progress=args.progress,
        tensorboard=args.tensorboard,
        weight_decay=args.weight_decay, bn_recalibrate=args.bn_recalibrate, weights=args.weights,
        freeze=args.freeze, unfreeze_after=args.unfreeze_after, unfreeze_lr=args.unfreeze_lr,
        deterministic=args.deterministic, worker_timeout=args.worker_timeout,
        coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
    train(net, config)
    return 0


def bn_batches(text: str) -> int | str:
    """`--bn-recalibrate N|off|auto` as argparse's type: a batch count (1 or more), 'off' or 'auto'; raises
    argparse.ArgumentTypeError otherwise."""
    if text in ("off", "auto"):
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of batches or 'off', got '{text}'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"must be at least 1 batch (or 'off' to leave the moving averages), got {n}")
    return n
