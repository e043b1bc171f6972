"""Keras' progress output during training (`--progress bar|epoch|off`), one name for one thing:
`--verbose` is the global switch that lets libraries' start-up lines through
(incdsl/backends/keras/quiet.py)."""
from __future__ import annotations

import sys

import keras

# Keras' fit(verbose=...) for each setting: a live bar, one line per epoch, nothing.
PROGRESS = {"bar": 1, "epoch": 2, "off": 0}


def keras_verbosity(progress: str | int) -> int:
    """fit's `verbose` for `progress` ("bar", "epoch", "off", or "auto": a bar on a terminal, a line
    per epoch otherwise; an int is Keras' own value, 0 to 2, passed through)."""
    if isinstance(progress, int):
        return progress
    if progress == "auto":
        return 1 if sys.stdout.isatty() else 2
    return PROGRESS[progress]


class PhaseProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress logger, counting epochs over the whole run (`epochs`) rather than over one
    fit call: a run in phases (`--unfreeze-after`) prints `Epoch 1/3` in its first phase too, where
    Keras' own logger, told epochs=1, prints no header."""

    def __init__(self, epochs: int):
        super().__init__()
        self.total = epochs

    def set_params(self, params):
        """Keras' settings, with the run's epoch count."""
        super().set_params(params)
        self.epochs = self.total
