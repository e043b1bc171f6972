"""Keras callbacks of a training run: step and rate in the log, throughput, the best epoch's export."""
from __future__ import annotations

import math
import time

import keras


class StepAndRate(keras.callbacks.Callback):
    """Adds the optimizer's step count and learning rate to each epoch's logs (and so to the CSV log):
    after a resume, `step` shows that the optimizer state came back."""

    def on_epoch_end(self, epoch, logs=None):
        """Write the optimizer's iteration count (`step`) and current learning rate (`lr`) into this
        epoch's `logs`."""
        if logs is None:
            return
        opt = self.model.optimizer
        logs["step"] = int(keras.ops.convert_to_numpy(opt.iterations))
        logs["lr"] = float(keras.ops.convert_to_numpy(opt.learning_rate))  # works for a GPU tensor too


class Throughput(keras.callbacks.Callback):
    """Training images per second, from the end of call `skip` (the first call compiles) to the end of
    the last one (a call runs the model's steps_per_execution steps), leaving out validation. Reading a step's
    loss waits for asynchronous backends (JAX)."""

    def __init__(self, batch_size: int, skip: int = 1):
        super().__init__()
        self.batch_size, self.skip = batch_size, skip
        self.seen, self.steps, self.paused, self._pending, self._done_in_epoch = 0, 0, 0.0, 0.0, 0
        self.start = self.end = self._test_start = None

    def on_epoch_begin(self, epoch, logs=None):
        """Restart the count of steps done in this epoch (Keras numbers batches from 0 in each
        epoch)."""
        self._done_in_epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last step of the call: with several steps per execution, one call per N steps.
        """Wait for the call's result, then time it: the `skip`-th call starts the clock, later ones
        add their steps (and any validation time since the last call, to leave out)."""
        _wait(logs)
        now = time.perf_counter()
        ran, self._done_in_epoch = batch + 1 - self._done_in_epoch, batch + 1
        self.seen += 1
        if self.seen == self.skip:
            self.start = now
        elif self.seen > self.skip:
            self.steps += ran
            self.end = now
            self.paused += self._pending  # validation between two timed steps
        self._pending = 0.0

    def on_test_begin(self, logs=None):
        """Start timing a validation run, which `images_per_second` leaves out."""
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        """Stop timing the validation run; its seconds are subtracted once the next training call
        ends."""
        if self._test_start is not None:
            self._pending += time.perf_counter() - self._test_start
        self._test_start = None

    @property
    def images_per_second(self) -> float:
        """Training images per second (steps x batch_size over the timed seconds, validation left
        out); NaN when no step was timed (a run of `skip` calls or fewer)."""
        if not self.steps:
            return float("nan")
        return self.steps * self.batch_size / max(self.end - self.start - self.paused, 1e-9)


def _wait(logs) -> None:
    for v in (logs or {}).values():
        float(v)  # a scalar: blocks until the step that made it is done
        return


class KeepBest(keras.callbacks.Callback):
    """Exports the inference model whenever the monitored value improves."""

    def __init__(self, export, monitor: str, fallback: str, best: float | None):
        super().__init__()
        self.export, self.monitor, self.fallback = export, monitor, fallback
        self.best = best
        self.best_epoch: int | None = None

    def key(self, logs) -> str:
        """The log key compared this epoch: `monitor` when the logs have it (e.g. val_accuracy),
        else the validation loss when there is one (accuracy not tracked), else `fallback` (e.g.
        loss, without a validation split)."""
        if self.monitor in logs:
            return self.monitor
        return "val_loss" if "val_loss" in logs else self.fallback

    def on_epoch_end(self, epoch, logs=None):
        """Export the model (through `export(epoch, {key: value}, best=True)`) when this epoch's
        value beats the best so far: higher for an accuracy, lower otherwise; a tie goes to the
        later epoch (it trained longer for the same score); NaN and infinite values never count."""
        logs = logs or {}
        key = self.key(logs)
        value = logs.get(key)
        if value is None or not math.isfinite(float(value)):
            return
        better = (lambda a, b: a >= b) if key.endswith("accuracy") else (lambda a, b: a <= b)
        if self.best is None or better(float(value), self.best):
            self.best, self.best_epoch = float(value), epoch
            self.export(epoch, {key: float(value)}, best=True)


class Diverged(Exception):
    """Training reached a non-finite loss at `step` (counted from 1 over the whole run)."""

    def __init__(self, step: int, epoch: int, batch: int, loss: float):
        super().__init__(f"non-finite loss {loss} at step {step}")
        self.step, self.epoch, self.batch, self.loss = step, epoch, batch, loss


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops fit at the first step whose loss is NaN or infinite, raising Diverged (Keras'
    TerminateOnNaN only sets stop_training, and fit then ends as if it had finished)."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        """Remember the epoch (0-based) for the Diverged error."""
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        """Raise `Diverged` (with the optimizer's step, the 1-based epoch and batch, and the loss)
        if this call's loss is NaN or infinite."""
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            raise Diverged(step, self.epoch + 1, batch + 1, float(loss))
