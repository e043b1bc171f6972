"""The data of one run: synthetic batches or an image folder (tf.data on TensorFlow, Pillow threads
elsewhere; incdsl/train/data.py), as one frozen record the other steps read."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import TrainConfig
from ..data import SyntheticImages, folder_input
from ..folders import scan_image_folder


@dataclass(frozen=True)
class RunData:
    """What a run trains and validates on. `train` yields (uint8 images NHWC, labels) batches (a
    keras.utils.PyDataset or a tf.data.Dataset; labels a dict by head name with aux heads), `val`
    the same or None, `steps` the training batches per epoch, `classes` the class names in label
    order, `described` one line for the log, `synthetic` whether the images are random.
    `recalibration` is the training stream from its first batch, which precise BN reads (precise.py,
    run/report.py): `train` starts where a resumed run's epoch begins and moves on at
    `--unfreeze-after`, and precise BN must recalibrate on the same batches however the run got
    to an epoch, or a resumed run's statistics (its saved model) differ from an uninterrupted one's."""
    train: object
    val: object | None
    steps: int
    classes: tuple[str, ...]
    described: str
    synthetic: bool
    recalibration: object

    def val_images(self) -> int:
        """Images in the validation set (0 without one); reads the whole set once."""
        if self.val is None:
            return 0
        if hasattr(self.val, "as_numpy_iterator"):
            return sum(int(x.shape[0]) for x, _ in self.val)
        return sum(int(self.val[i][0].shape[0]) for i in range(len(self.val)))


def run_data(net, config: TrainConfig, folder, classes_out: int, head_names: list[str] | None, replicas: int,
             workers: int, start: int) -> RunData:
    """The data for `net` (NHWC input `net.input_shape`) as `config` says: `config.data` "synthetic"
    (steps_per_epoch batches, 10 by default, of random images over `classes_out` classes, a copy
    per batch when `workers` > 1) or an image folder (`folder`: scan_image_folder's (classes,
    files), scanned here when None), its stream starting where epoch `start` begins. Raises
    SpecError for a folder training cannot use (incdsl/train/data.py)."""
    if config.data == "synthetic":
        steps = config.steps_per_epoch or 10
        train = SyntheticImages(steps, config.batch_size, net.input_shape, classes_out, head_names,
                                seed=config.seed, copy=workers > 1)
        split = config.val_split or 0.0
        val = (SyntheticImages(max(1, round(steps * split)), config.batch_size, net.input_shape, classes_out,
                               head_names, seed=config.seed + 1) if split else None)
        return RunData(train, val, steps, tuple(str(i) for i in range(classes_out)),  # the same every epoch
                       f"synthetic data ({steps} batches of {config.batch_size} per epoch)", True, train)
    folder = folder or scan_image_folder(config.data)
    train, val, steps, described, recalibration = folder_input(folder, config, net.input_shape, head_names,
                                                               replicas, start)
    return RunData(train, val, steps, tuple(folder[0]), described, False, recalibration)
