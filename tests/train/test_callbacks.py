"""The training callbacks (incdsl/train/callbacks.py) driven directly with the logs Keras hands
them, no training: the step and rate columns, the throughput clock (validation left out, several
steps per call), the best epoch's export (accuracy up then down, loss when accuracy is not
tracked, NaN and infinities never best) and the stop on a NaN, +inf or -inf loss. Quick."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from incdsl.train import callbacks as cb


def fake_model(step: int = 7, lr: float = 0.01):
    return SimpleNamespace(optimizer=SimpleNamespace(iterations=np.int64(step), learning_rate=np.float32(lr)))


def with_model(callback, **kw):
    callback.set_model(fake_model(**kw))
    return callback


def test_step_and_rate_are_written_into_the_logs():
    c = with_model(cb.StepAndRate(), step=12, lr=0.25)
    logs = {"loss": 1.0}
    c.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0, "step": 12, "lr": 0.25}
    assert isinstance(logs["step"], int) and isinstance(logs["lr"], float)
    c.on_epoch_end(0, None)  # Keras may pass no logs: nothing to write, no error


def test_throughput_skips_the_first_call_and_leaves_validation_out(monkeypatch):
    clock = iter([10.0, 12.0, 12.5, 13.5, 15.0, 21.0])
    monkeypatch.setattr(cb.time, "perf_counter", lambda: next(clock))
    t = cb.Throughput(batch_size=4, skip=1)
    assert math.isnan(t.images_per_second)  # nothing timed yet
    t.on_epoch_begin(0)
    t.on_train_batch_end(0, {"loss": 1.0})   # t=10: the first call (compiles) starts the clock
    assert math.isnan(t.images_per_second)
    t.on_train_batch_end(1, {"loss": 1.0})   # t=12: 1 step
    t.on_test_begin()                        # t=12.5
    t.on_test_end()                          # t=13.5: 1 s of validation
    t.on_train_batch_end(4, {"loss": 1.0})   # t=15: steps_per_execution=3, batches 2..4
    assert (t.steps, t.paused) == (4, 1.0)
    assert t.images_per_second == pytest.approx(4 * 4 / (15 - 10 - 1))
    t.on_epoch_begin(1)                      # Keras numbers batches from 0 again
    t.on_train_batch_end(1, {"loss": 1.0})   # t=21: 2 steps
    assert t.steps == 6 and t.images_per_second == pytest.approx(6 * 4 / (21 - 10 - 1))


def test_throughput_with_a_longer_skip_and_a_validation_before_the_clock(monkeypatch):
    clock = iter([1.0, 2.0, 3.0, 5.0, 9.0, 9.0])
    monkeypatch.setattr(cb.time, "perf_counter", lambda: next(clock))
    t = cb.Throughput(batch_size=2, skip=2)
    t.on_epoch_begin(0)
    t.on_test_begin()                        # t=1
    t.on_test_end()                          # t=2: before the clock starts, never subtracted
    t.on_train_batch_end(0, {"loss": 1.0})   # t=3: call 1, skipped
    t.on_train_batch_end(1, {"loss": 1.0})   # t=5: call 2 starts the clock
    t.on_train_batch_end(2, {"loss": 1.0})   # t=9: 1 step in 4 s
    assert (t.steps, t.paused) == (1, 0.0)
    assert t.images_per_second == pytest.approx(2 / 4)
    t.on_test_end()                          # an end without a begin adds nothing
    t.on_train_batch_end(3, {"loss": 1.0})   # ... so t=9 again: 2 steps in 4 s
    assert (t.steps, t.paused) == (2, 0.0)


def test_throughput_waits_for_the_step_result():
    class Lazy:
        read = 0

        def __float__(self):
            Lazy.read += 1
            return 1.0
    t = cb.Throughput(batch_size=1)
    t.on_epoch_begin(0)
    t.on_train_batch_end(0, {"loss": Lazy(), "accuracy": Lazy()})
    assert Lazy.read == 1  # one scalar read is enough to wait for the step
    t.on_train_batch_end(1, None)
    t.on_train_batch_end(2, {})
    assert t.steps == 2


def exports(monitor="val_accuracy", fallback="loss", best=None, epochs=()):
    done = []
    keep = cb.KeepBest(lambda epoch, logs, best: done.append((epoch, logs, best)), monitor, fallback, best)
    for epoch, logs in enumerate(epochs):
        keep.on_epoch_end(epoch, logs)
    return keep, done


def test_keep_best_keeps_the_highest_accuracy_when_it_goes_up_then_down():
    keep, done = exports(epochs=[{"loss": 3.0, "val_accuracy": 0.5}, {"loss": 2.0, "val_accuracy": 0.8},
                                 {"loss": 1.0, "val_accuracy": 0.6}, {"loss": 0.5, "val_accuracy": 0.8}])
    # the dip at epoch 2 is not kept; a tie goes to the later, longer-trained epoch (KeepBest's rule)
    assert done == [(0, {"val_accuracy": 0.5}, True), (1, {"val_accuracy": 0.8}, True),
                    (3, {"val_accuracy": 0.8}, True)]
    assert (keep.best, keep.best_epoch) == (0.8, 3)


def test_keep_best_keeps_the_lowest_loss_without_accuracy():
    keep, done = exports(epochs=[{"loss": 2.0}, {"loss": 1.0}, {"loss": 1.5}, {"loss": 1.0}])
    assert [(e, logs) for e, logs, _ in done] == [(0, {"loss": 2.0}), (1, {"loss": 1.0}), (3, {"loss": 1.0})]
    assert (keep.best, keep.best_epoch) == (1.0, 3)
    keep, done = exports(monitor="val_loss",
                         epochs=[{"loss": 9.0, "val_loss": 2.0}, {"loss": 1.0, "val_loss": 3.0}])
    # val_loss wins over loss when present
    assert [(e, logs) for e, logs, _ in done] == [(0, {"val_loss": 2.0})]


def test_keep_best_keeps_the_lowest_validation_loss_when_accuracy_is_not_tracked():
    """Issue 29: monitor val_accuracy, but the model tracks no accuracy: the lowest val_loss is
    kept (not the training loss, which falls while the validation loss rises)."""
    keep, done = exports(epochs=[{"loss": 9.0, "val_loss": 2.0}, {"loss": 1.0, "val_loss": 3.0},
                                 {"loss": 0.5, "val_loss": 1.5}, {"loss": 0.2, "val_loss": 1.6}])
    assert [(e, logs) for e, logs, _ in done] == [(0, {"val_loss": 2.0}), (2, {"val_loss": 1.5})]
    assert (keep.best, keep.best_epoch) == (1.5, 2)
    assert keep.key({"loss": 1.0, "val_loss": 2.0}) == "val_loss" and keep.key({"loss": 1.0}) == "loss"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_keep_best_never_takes_a_non_finite_value(bad):
    keep, done = exports(epochs=[{"val_accuracy": bad}, {"val_accuracy": 0.3}, {"val_accuracy": bad}])
    assert [e for e, _, _ in done] == [1] and keep.best == 0.3
    keep, done = exports(epochs=[{"loss": bad}, {"loss": 2.0}, {"loss": bad}, {}])
    assert [e for e, _, _ in done] == [1] and keep.best == 2.0


def test_keep_best_starts_from_a_resumed_best():
    keep, done = exports(best=0.9, epochs=[{"val_accuracy": 0.85}, {"val_accuracy": 0.95}])
    assert [e for e, _, _ in done] == [1] and keep.best_epoch == 1
    keep, done = exports(best=1.0, epochs=[{"loss": 1.5}])
    assert done == [] and keep.best_epoch is None and keep.key({"loss": 1.5}) == "loss"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_stops_with_the_step(bad):
    stop = with_model(cb.StopOnNonFinite(), step=42)
    stop.on_epoch_begin(2)
    stop.on_train_batch_end(0, {"loss": 1.0})  # finite: goes on
    stop.on_train_batch_end(1, {"accuracy": 0.5})  # no loss in the logs: goes on
    stop.on_train_batch_end(2, None)
    with pytest.raises(cb.Diverged, match="non-finite loss .* at step 42") as e:
        stop.on_train_batch_end(4, {"loss": bad})
    assert (e.value.step, e.value.epoch, e.value.batch) == (42, 3, 5)
    assert str(e.value.loss) == str(float(bad))


def test_throughput_sums_every_validation_between_two_calls(monkeypatch):
    # found by tools/mutation.sh: two validation runs between two training calls both come off
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.5, 10.0])
    monkeypatch.setattr(cb.time, "perf_counter", lambda: next(clock))
    t = cb.Throughput(batch_size=1, skip=1)
    t.on_test_end()                          # an end before any begin: nothing to subtract, no error
    t.on_epoch_begin(0)
    t.on_train_batch_end(0, {"loss": 1.0})   # t=0: the clock starts
    t.on_test_begin()                        # t=1
    t.on_test_end()                          # t=2: 1 s
    t.on_test_begin()                        # t=3
    t.on_test_end()                          # t=4.5: 1.5 s more
    t.on_train_batch_end(1, {"loss": 1.0})   # t=10
    assert (t.steps, t.paused) == (1, 2.5)
    assert t.images_per_second == pytest.approx(1 / 7.5)


def test_a_non_finite_loss_in_the_first_epoch_counts_it_as_1():
    # Keras calls on_epoch_begin first; the count holds without it
    stop = with_model(cb.StopOnNonFinite(), step=1)
    with pytest.raises(cb.Diverged) as e:
        stop.on_train_batch_end(0, {"loss": math.inf})
    assert (e.value.step, e.value.epoch, e.value.batch) == (1, 1, 1)
