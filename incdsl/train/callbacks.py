"""Keras callbacks of a training run: step and rate in the log, throughput, the best epoch's export."""
from __future__ import annotations

import math
import time

import keras


class StepAndRate(keras.callbacks.Callback):
    """Adds the optimizer's step count and learning rate to each epoch's logs (and so to the CSV log):
    after a resume, `step` shows that the optimizer state came back."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        opt = self.model.optimizer
        logs["step"] = int(keras.ops.convert_to_numpy(opt.iterations))
        logs["lr"] = float(keras.ops.convert_to_numpy(opt.learning_rate))  # works for a GPU tensor too


class Throughput(keras.callbacks.Callback):
    """Training images per second, from the end of call `skip` (the first call compiles) to the end of
    the last one (a call runs the model's steps_per_execution steps), leaving out validation. Reading a step's loss waits for asynchronous backends (JAX)."""

    def __init__(self, batch_size: int, skip: int = 1):
        super().__init__()
        self.batch_size, self.skip = batch_size, skip
        self.seen, self.steps, self.paused, self._pending, self._done_in_epoch = 0, 0, 0.0, 0.0, 0
        self.start = self.end = self._test_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._done_in_epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last step of the call: with several steps per execution, one call per N steps.
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
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        if self._test_start is not None:
            self._pending += time.perf_counter() - self._test_start
        self._test_start = None

    @property
    def images_per_second(self) -> float:
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
        return self.monitor if self.monitor in logs else self.fallback

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        key = self.key(logs)
        value = logs.get(key)
        if value is None or not math.isfinite(float(value)):
            return
        better = (lambda a, b: a > b) if key.endswith("accuracy") else (lambda a, b: a < b)
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
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            raise Diverged(step, self.epoch + 1, batch + 1, float(loss))
