"""Keep TensorFlow's native start-up chatter off the terminal.

TensorFlow's C++ side logs through absl before absl is initialized ("WARNING: All log messages
before absl::InitializeLog() is called ...", "oneDNN custom operations are on ...", "This
TensorFlow binary is optimized ...", CUDA factory registrations). `TF_CPP_MIN_LOG_LEVEL` does not
reach those lines, and they come at import time and again when the first graph runs, so no single
import can be wrapped. Instead the command's file descriptor 2 is routed through a pipe while it
runs, and a reader thread forwards every line except the ones that match `NOISE`: our own messages
and any real error from a library still reach the terminal, in order. `--verbose` turns it off.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

# One pattern per kind of line TensorFlow, XLA or absl print natively at start-up. Anything else
# passes through untouched.
NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "          # absl's INFO prefix: I0000 00:00:17.. 123 port.cc:153]
    rb"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\."
    rb"|WARNING: Logging before InitGoogleLogging\(\) is written to STDERR"
    rb")")


@contextlib.contextmanager
def native_stderr_filtered():
    """Route file descriptor 2 through a filter that drops `NOISE` lines for the duration.

    `sys.stderr` is pointed at the real stderr meanwhile (our messages, progress bars and their
    `isatty()` are unchanged). The descriptor is restored (and the reader drained) on exit, whatever
    happened inside.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr (closed, or not a real descriptor)
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    # Python's own messages (errors, progress bars) keep writing to the real stderr, so a terminal
    # is still seen as one (`isatty()`); only what native code writes to fd 2 goes through the filter
    python_stderr = sys.stderr
    try:
        if python_stderr is None or python_stderr.fileno() != 2:
            raise ValueError("sys.stderr is not file descriptor 2 (pytest's capsys, a notebook): leave it")
        sys.stderr = open(saved, "w", buffering=1,
                          encoding=getattr(python_stderr, "encoding", None) or "utf-8",
                          errors="backslashreplace", closefd=False)
    except (OSError, ValueError):
        python_stderr = None

    def pump() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                _forward(saved, lines)
            if pending:
                _forward(saved, [pending], newline=False)

    reader = threading.Thread(target=pump, name="incdsl-stderr-filter", daemon=True)
    reader.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        if python_stderr is not None:
            sys.stderr = python_stderr
        os.dup2(saved, 2)  # closes the pipe's last write end: the reader sees EOF
        reader.join(timeout=5)
        os.close(saved)


def _forward(fd: int, lines: list[bytes], newline: bool = True) -> None:
    kept = [line for line in lines if not NOISE.match(line)]
    if kept:
        data = b"\n".join(kept) + (b"\n" if newline else b"")
        with contextlib.suppress(OSError):
            os.write(fd, data)
