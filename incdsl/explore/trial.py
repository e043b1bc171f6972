"""One Ray Tune trial: one variant trained by `incdsl.train.train`, the code of `incdsl train`, in
the trial's process, into its own folder under the experiment folder (EXP/trials/VARIANT/:
model.keras, model.best.keras, model.log.csv). After every epoch the trial reports to Tune
(`tune.report`): the epoch, losses and accuracies, training images/s, and a checkpoint holding the
run's backup (Keras' BackupAndRestore state), so that Tune can restart it from there after a crash,
a lost node or an interrupted experiment (`--resume`). Imports Ray and Keras: only Ray's workers
load it."""
from __future__ import annotations

import csv
import functools
import math
import shutil
import tempfile
from pathlib import Path

from ..errors import DataError, SpecError, UsageError
from ..network import load
from ..train import TrainConfig, train
from .results import ERROR_KEY

CHECKPOINT_LOG = "model.log.csv"


def run_trial(config: dict, setup: dict) -> None:
    """The Tune trainable: train the variant `config["variant"]` (a label of `setup["variants"]`,
    each {"sets", "folder"}) of `setup["spec"]` on `setup["data"]` with `setup["train"]` (TrainConfig
    keywords), resuming from the run's backup when the trial is restored. incdsl's own errors
    (DataError for a diverged run, SpecError...) end the trial with one report holding the message
    under ERROR_KEY (Tune would retry a raised one); anything else is raised: Tune records it as
    the trial's error and retries the trial (a dead process or node)."""
    from ray import tune

    variant = setup["variants"][config["variant"]]
    folder = Path(setup["root"]) / "trials" / variant["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.keras"
    backup = folder / "model.backup"
    checkpoint = tune.get_checkpoint()
    if model.exists() and not backup.exists():  # finished before the experiment stopped: report it again
        rows = _log_rows(folder / CHECKPOINT_LOG)
        if rows:
            tune.report(_metrics(rows[-1], len(rows), float("nan"), _accuracy_key(setup, variant)))
        return
    # A restarted trial continues from Tune's checkpoint: the backup and the log of the last epoch Tune
    # saw, taken together. The folder may hold more, or a torn state, from a process that died (a lost
    # node killed between the log's row and the backup of an epoch: `train` refuses such a pair), or
    # lack it (another node); without a checkpoint no epoch was reported and the trial starts afresh.
    _clear_state(folder)
    if checkpoint is not None:
        with checkpoint.as_directory() as saved:
            _copy_state(Path(saved), folder)
    net = load(setup["spec"], setup["network"], **variant["sets"])
    # the reader threads (`workers`) stay `incdsl train`'s default: their number changes the results
    report = report_class()(folder, setup["train"]["batch_size"], _accuracy_key(setup, variant, net),
                    setup["train"]["epochs"])
    train_config = TrainConfig(output=model, data=setup["data"], progress="off", tensorboard=False,
                               resume=backup.exists(), callbacks=[report], best_each_epoch=True,
                               **setup["train"])
    try:
        train(net, train_config)
    except (SpecError, DataError, UsageError) as e:
        # incdsl's own errors (a diverged run, a spec or data the run refuses) would come again on a
        # retry: they end the trial as reported, not as a crash that FailureConfig retries, which is
        # for a process or node that died
        tune.report({"epoch": len(_log_rows(folder / CHECKPOINT_LOG)), "accuracy": -math.inf,
                     "val_accuracy": -math.inf, "images_per_second": math.nan,
                     ERROR_KEY: _first_line(e)})
        return
    if report.final is not None:  # the last epoch, reported once the run's files are written
        tune.report(report.final)


def _first_line(error: Exception) -> str:
    """An incdsl error's message in one line (its first), as the table shows a trial's error."""
    text = getattr(error, "message", None) or str(error)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


@functools.lru_cache(maxsize=None)
def report_class():
    """The `Report` class, defined on first use: it subclasses a class of a heavy package, which
    this module does not import when it loads."""
    import keras
    from ray import tune

    from ..train.callbacks import Throughput

    class Report(keras.callbacks.Callback):
        """After each epoch (and after the run's own callbacks: the backup is written), report the
        epoch's metrics to Tune with a checkpoint of the run's state (model.backup/, model.log.csv)."""

        def __init__(self, folder: Path, batch_size: int, acc: str, epochs: int):
            super().__init__()
            self.folder, self.acc, self.epochs = folder, acc, epochs
            self.final = None  # the last epoch's metrics: reported after `train` returns (see on_epoch_end)
            self.throughput = Throughput(batch_size)

        def set_model(self, model):
            """Keras gives the model to each callback; the throughput meter needs it too."""
            super().set_model(model)
            self.throughput.set_model(model)

        def on_epoch_begin(self, epoch, logs=None):
            """Pass the epoch start to the throughput meter."""
            self.throughput.on_epoch_begin(epoch, logs)

        def on_train_batch_end(self, batch, logs=None):
            """Pass the step to the throughput meter (training images/s, validation left out)."""
            self.throughput.on_train_batch_end(batch, logs)

        def on_test_begin(self, logs=None):
            """Validation time is left out of images/s."""
            self.throughput.on_test_begin(logs)

        def on_test_end(self, logs=None):
            """Validation time is left out of images/s."""
            self.throughput.on_test_end(logs)

        def on_epoch_end(self, epoch, logs=None):
            """Report epoch `epoch + 1`'s metrics and the run's state to Tune."""
            metrics = _metrics(logs or {}, epoch + 1, self.throughput.images_per_second, self.acc)
            if epoch + 1 >= self.epochs:
                # a scheduler stops a trial at its last epoch (ASHA: t >= max_t), which would end this
                # process before `train` writes model.keras: the last epoch is reported after it
                self.final = metrics
                return
            with tempfile.TemporaryDirectory(prefix="incdsl-explore-") as tmp:
                _copy_state(self.folder, Path(tmp))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
    return Report


def _metrics(logs: dict, epoch: int, images_per_second: float, acc: str) -> dict:
    """The numbers a trial reports: epoch, images/s, the loss and the main head's accuracy under
    plain names (a network with auxiliary heads logs its main head's as '<head>_accuracy', `acc`)."""
    out = {"epoch": epoch, "images_per_second": images_per_second}
    for name, key in (("loss", "loss"), ("accuracy", acc), ("val_loss", "val_loss"),
                      ("val_accuracy", f"val_{acc}")):
        if logs.get(key) not in (None, ""):
            out[name] = float(logs[key])
    return out


def _accuracy_key(setup: dict, variant: dict, net=None) -> str:
    """The name Keras logs the main head's accuracy under ('accuracy', or 'fc_accuracy' beside
    auxiliary heads): `incdsl.train.model.accuracy_key`."""
    from ..train.heads import head_losses
    from ..train.model import accuracy_key
    net = net or load(setup["spec"], setup["network"], **variant["sets"])
    return accuracy_key(head_losses(net, setup["train"].get("aux_weight")))


def _copy_state(source: Path, target: Path) -> None:
    """Copy a run's resumable state (model.backup/, model.log.csv) from `source` to `target`."""
    if (source / "model.backup").is_dir():
        shutil.copytree(source / "model.backup", target / "model.backup", dirs_exist_ok=True)
    if (source / CHECKPOINT_LOG).is_file():
        shutil.copy2(source / CHECKPOINT_LOG, target / CHECKPOINT_LOG)


def _clear_state(folder: Path) -> None:
    """Remove a run's resumable state (model.backup/, model.log.csv) from `folder`."""
    shutil.rmtree(folder / "model.backup", ignore_errors=True)
    (folder / CHECKPOINT_LOG).unlink(missing_ok=True)


def _log_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
