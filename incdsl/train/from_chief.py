"""`--resume` on a job of several processes: the chief's backup is the job's state. Only the chief
(TensorFlow's chief or worker 0, JAX's process 0) writes the backup; on `--resume` it reads it and
sends the weights file's bytes to the others, which load them (`FromChief`). So a job resumes from
the last epoch the chief finished whatever another process had done when it died, and a process
may come back on a machine with an empty disk. `send` is the engine's broadcast from the chief:
`jax.experimental.multihost_utils.broadcast_one_to_all` on JAX, `multiworker_tf.Broadcast` on
TensorFlow."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from ..errors import SpecError
from ..text import first_line
from .backup_write import WEIGHTS
from .resume import restore_random_state

Send = Callable[[np.ndarray], np.ndarray]  # the chief's array (int32) on every process


def send_bytes(send: Send, data: bytes | None) -> bytes:
    """`data` (the chief's; None elsewhere) on every process: its size first, then the bytes as
    int32 words (padded to a multiple of 4), which a sum-based broadcast passes exactly. int32, not
    int64: JAX computes in 32 bits unless jax_enable_x64 is set, and would cut 64-bit words."""
    size = int(send(np.array([len(data) if data is not None else 0], np.int32))[0])
    words = np.zeros(-(-size // 4) * 4, np.uint8)
    if data is not None:
        words[:size] = np.frombuffer(data, np.uint8)
    return np.asarray(send(words.view(np.int32)), np.int32).view(np.uint8)[:size].tobytes()


class FromChief(keras.callbacks.Callback):
    """On a resumed run, the state the chief keeps in its backup folder (`resume.WEIGHTS`: model
    and optimizer variables) restored on every process: the chief sends the file's bytes, each
    other process loads them from a temporary file (Keras' load_weights), and every process starts
    at epoch `start`, the one the chief read. `load_on_chief`: whether the chief loads the file here
    too (JAX, where every process must set a variable together) or has already (TensorFlow, whose
    chief restores through resume.CheckedBackup, checked). Once per run: a second phase
    (`--unfreeze-after`) goes on from the restored state."""

    def __init__(self, start: int, backup: Path, chief: bool, send: Send, load_on_chief: bool):
        super().__init__()
        self.start, self.backup, self.chief = start, Path(backup), chief
        self.send, self.load_on_chief, self.done = send, load_on_chief, False

    def on_train_begin(self, logs=None):
        """Restore the backup's state on every process together. Raises SpecError when the
        weights do not fit the network being trained."""
        if self.done:
            return
        self.done = True
        weights = self.backup / WEIGHTS
        data = send_bytes(self.send, weights.read_bytes() if self.chief else None)
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        if not self.chief or self.load_on_chief:
            with tempfile.TemporaryDirectory(prefix="incdsl-resume-") as folder:
                path = weights if self.chief else Path(folder) / WEIGHTS
                if not self.chief:
                    path.write_bytes(data)
                try:
                    model.load_weights(path)
                # Keras raises ValueError, KeyError, OSError... for weights that do not fit
                except Exception as e:
                    raise SpecError(f"cannot resume: {weights} does not restore the network being trained "
                                    f"({first_line(e)})",
                                    hint="delete the backup folder to start afresh") from None
                restore_random_state(model, path, self.backup, note=self.chief)
        model._initial_epoch = self.start  # what BackupAndRestore sets on the chief (fit reads it)
