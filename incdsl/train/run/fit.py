"""fit itself: the run's epochs (in two phases with --unfreeze-after), signals deferred to the end
of a training call, and one cleanup path for every way fit can stop before its last epoch."""
from __future__ import annotations

import shutil
import signal
import sys

from .. import finetune
from ..callbacks import Diverged
from ..interrupt import Interrupted, StopOnSignal, deferred_signals
from ..model import compile_for_training
from ..progress import PhaseProgbar, keras_verbosity
from .failures import data_error, diverged_error, interrupted_line, signal_exit


def fit(model, core, net, config, heads, data, per_call: int, run, start: int, paths, placement, exporter):
    """Train `model` (compiled, its network `core` built from `net`) on `data` (RunData) for the
    epochs of `config` from epoch `start`, with `run`'s callbacks (RunCallbacks) under `placement`;
    `per_call`: steps per execution, kept when the second phase recompiles. Returns Keras' History.

    If fit stops early, the best epoch held so far is written (`exporter`), an unfinished run's
    empty logs are removed (no epoch finished: nothing in them), and the reason is raised:
    DataError for a loss that became NaN or infinite or for data that vanished or does not decode;
    KeyboardInterrupt (SIGINT) or guard.Terminated (SIGTERM), after a line saying what was kept,
    for a signal; anything else as it came. A signal that comes after the last training step
    (during the last epoch's validation or callbacks) is said, and the run completes."""
    verbose = keras_verbosity(config.progress)

    def recompile(lr):
        compile_for_training(model, heads, finetune.phase_config(config, lr), data.steps, per_call)

    with placement.scope(), deferred_signals() as signalled:
        try:
            history = finetune.fit_in_phases(
                model, core, net, config, recompile, start=start,
                progress=PhaseProgbar(config.epochs) if verbose else None, x=data.train,
                validation_data=data.val,
                steps_per_epoch=None if data.synthetic else data.steps,
                callbacks=run.callbacks + [StopOnSignal(signalled)], verbose=verbose, shuffle=False)
            if run.backup is not None:  # every epoch done (Keras would have deleted it at each fit's end)
                run.backup.discard()
            if signalled.signum is not None:  # it came after the last step that could stop on it
                print(f"note: {signal.Signals(signalled.signum).name} came after the last training step: "
                      f"the run is complete and writes its outputs", file=sys.stderr)
            return history
        except BaseException as e:
            error = _stopped(e, config, paths, run, exporter, placement)
            if error is None:
                placement.check_lost(e)  # multiworker: a process that died is why (it exits)
                raise
            raise error from None


def _stopped(e: BaseException, config, paths, run, exporter, placement) -> BaseException | None:
    """The one cleanup of a fit that stopped early, and what to raise instead of `e` (None: `e`)."""
    try:
        with placement.local():  # JAX multiworker: process 0's inference model alone
            exporter.write_held(paths.best)  # "the best model so far" is on disk, whatever stopped the run
    except Exception as err:  # a full disk, say: the reason the run stopped matters more
        print(f"note: the best epoch so far could not be written to {paths.best}: {err}", file=sys.stderr)
    if placement.writes and not paths.backup.exists():  # no epoch finished: its empty logs are of no use
        paths.csv.unlink(missing_ok=True)
        if run.tb_made:  # only a folder this run made
            shutil.rmtree(paths.tensorboard, ignore_errors=True)
    if isinstance(e, Diverged):  # every process of a job reached it at the same step (the loss is the job's)
        kept = placement.agree(lambda: paths.backup.exists() + 2 * paths.best.exists())
        return diverged_error(e, config, config.paths(), (bool(kept & 1), bool(kept & 2)))
    if isinstance(e, (KeyboardInterrupt, Interrupted)):
        print(interrupted_line(e, config, paths, placement.writes), file=sys.stderr)
        return signal_exit(e)
    return data_error(e, config.data) if isinstance(e, Exception) else None
