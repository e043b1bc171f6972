"""Preemption: SIGTERM and SIGINT stop a training run at the next step, on every Keras backend.

A signal handler that raises (Python's default for SIGINT, `incdsl.cli.guard`'s for SIGTERM) fires
wherever the main thread happens to be. On JAX that is often inside Keras' `pythonify_logs`
(`np.array(x)` on a device array), where the exception is swallowed and the run carries on to the
end with exit 0 (issue 31: 2 of 2 tries). So while `fit` runs, the handler only records the signal,
and a callback checks the record at the end of every training call (`on_train_batch_end`: one call
runs steps_per_execution steps) and raises `Interrupted` from there, a place where every backend
lets an exception through. BackupAndRestore keeps the last finished epoch; `--resume` continues.
"""
from __future__ import annotations

import contextlib
import signal
import threading

import keras

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):
    """Training stopped on signal `signum` (SIGTERM or SIGINT) at optimizer step `step`."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}")
        self.signum, self.step = signum, step


class _Flag:
    signum: int | None = None


@contextlib.contextmanager
def deferred_signals():
    """While the block runs, SIGTERM and SIGINT are recorded instead of acted on (only in the main
    thread, where Python delivers signals; elsewhere nothing changes). Yields the record, which
    `StopOnSignal` reads; the previous handlers come back on exit. A second signal of the same run
    acts at once, with the previous handler (the user insists)."""
    flag = _Flag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    old = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def record(signum, frame):
        if flag.signum is not None:  # a second Ctrl-C: stop now, as before
            previous = old.get(signum)
            if callable(previous):
                previous(signum, frame)
            raise KeyboardInterrupt
        flag.signum = signum

    for sig in SIGNALS:
        signal.signal(sig, record)
    try:
        yield flag
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


class StopOnSignal(keras.callbacks.Callback):
    """Raises `Interrupted` at the end of the first training call after `flag` (from
    `deferred_signals`) recorded a signal."""

    def __init__(self, flag):
        super().__init__()
        self.flag = flag

    def on_train_batch_end(self, batch, logs=None):
        """Raise `Interrupted` (signal and optimizer step) if a signal arrived during this call."""
        if self.flag.signum is not None:
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            raise Interrupted(self.flag.signum, step)

    def on_test_batch_end(self, batch, logs=None):
        """Stop during validation too (a long validation set would otherwise delay the stop)."""
        self.on_train_batch_end(batch, logs)
