"""What the `incdsl` process does around a command: signals that unwind, and a standard output
that cannot be written.

- SIGTERM and SIGHUP raise `Terminated` (like Ctrl-C raises KeyboardInterrupt), so `finally`
  blocks run and `io.atomic_path` removes its temp file; before, `kill` left a hidden 27 MB
  `.NAME.XXXX.onnx` behind.
- A write to standard output that fails is reported once, as what it is: a closed pipe
  (`incdsl expand x.inc | head -1`) ends quietly with exit 0, as Unix filters do; a full disk
  (`> /dev/full`) or a closed stdout is "cannot write to standard output", exit 1.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading

from ..errors import Terminated


class StdoutError(Exception):
    """Writing to standard output failed (the OSError is `__cause__`)."""


def _terminate(signum, frame):
    raise Terminated(signum)


class _Guarded:
    """Standard output whose write errors are StdoutError, not an OSError like any other."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def write(self, s):
        try:
            return self._inner.write(s)
        except OSError as e:
            raise StdoutError(e) from e

    def flush(self):
        try:
            return self._inner.flush()
        except OSError as e:
            raise StdoutError(e) from e

    @property
    def buffer(self):
        return _Guarded(self._inner.buffer)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _Outcome:
    code: int | None = None


@contextlib.contextmanager
def guarded():
    """Context manager around one command (`with guarded() as g:` in `incdsl.cli.main.main`): while it
    runs, SIGTERM and SIGHUP raise `Terminated` (only where no other handler is set, and only in
    the main thread), and `sys.stdout` raises `StdoutError` when a write fails. A failed write is
    reported once on stderr and ends the block with `g.code` set: 0 for a closed pipe (the reader
    left, as Unix filters do), 1 for anything else (a full disk, a closed stdout). `g.code` stays
    None when stdout was fine. The old handlers and stdout come back on exit."""
    out = _Outcome()
    if sys.stdout is None:  # started with stdout closed (`>&-`): nothing could be said
        print("incdsl: error: cannot write to standard output: it is closed", file=sys.stderr)
        out.code = 1
        yield out
        return
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is signal.SIG_DFL:  # an embedding program's handlers stay
                old_handlers[sig] = signal.signal(sig, _terminate)
    real = sys.stdout
    sys.stdout = _Guarded(real)
    try:
        try:
            yield out
            sys.stdout.flush()  # now, while a failure can still be reported
        except StdoutError as e:
            out.code = _stdout_failed(e.__cause__)
    finally:
        sys.stdout = real
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


def _stdout_failed(e: OSError) -> int:
    # Python flushes stdout again at exit and would complain: point the descriptor at /dev/null
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    if isinstance(e, BrokenPipeError) or getattr(e, "errno", None) == errno.EPIPE:
        return 0  # the reader left (`| head -1`): stop quietly
    print(f"incdsl: error: cannot write to standard output: {getattr(e, 'strerror', None) or e}",
          file=sys.stderr)
    return 1
