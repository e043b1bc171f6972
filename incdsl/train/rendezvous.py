"""A bounded wait for the other workers of a multi-worker run, before TensorFlow's own.

TensorFlow's MultiWorkerMirroredStrategy waits for every task of TF_CONFIG inside C++ (the
coordination service's registration), silently and for as long as its own timeout says, and the
main thread never returns to Python meanwhile, so SIGTERM's handler never runs (issue 31: a run
with a worker missing hung with no output and ignored SIGTERM). Here every worker first listens on
its own TF_CONFIG address and connects to each other task's address until all have answered (our
listener or, once a peer has moved on, TensorFlow's gRPC server on the same port), in Python, with
a deadline: past it, an error names the tasks that did not join, and a signal ends the wait at
once. The listener never accepts: a peer's connection completes in the kernel's backlog, so
closing the listener leaves no connection in TIME_WAIT on the port that TensorFlow binds next.
"""
from __future__ import annotations

import socket
import sys
import time

from ..errors import SpecError
from ..text import ParamText


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def wait_for_workers(cluster: dict, me: tuple[str, int], timeout: float, poll: float = 0.2) -> None:
    """Listen on this task's address and wait until every other task of `cluster` (TF_CONFIG's
    "cluster": job name -> list of "host:port") accepts a TCP connection. `me` is this task's
    (job, index); `timeout` in seconds. Raises SpecError naming the tasks (job, index, address)
    that had not answered by then."""
    job, index = me
    mine = cluster[job][index]
    others = {(j, i): a for j, addresses in cluster.items() if j in ("chief", "worker")  # not an evaluator
              for i, a in enumerate(addresses) if (j, i) != me}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        host, port = _split(mine)
        try:
            listener.bind(("" if host not in ("localhost", "127.0.0.1") else host, port))
            listener.listen(64)
        except OSError as e:
            raise SpecError(
                f"{job} {index} cannot listen on {mine} (its TF_CONFIG address): {e.strerror or e}",
                            hint="another process holds the port: stop it, or pick a free port") from None
        deadline = time.monotonic() + timeout
        told = False
        while others:
            for task, address in list(others.items()):
                try:
                    with socket.create_connection(_split(address), timeout=min(1.0, timeout)):
                        pass
                    del others[task]
                except OSError:
                    pass
            if not others:
                break
            if not told:  # said once, so that a wait is never silent
                names = ", ".join(f"{j} {i} ({a})" for (j, i), a in sorted(others.items()))
                print(f"waiting up to {timeout:g} s for {names} to join", file=sys.stderr, flush=True)
                told = True
            if time.monotonic() >= deadline:
                missing = ", ".join(f"{j} {i} ({a})" for (j, i), a in sorted(others.items()))
                raise SpecError(
                    f"multi-worker training: {missing} did not join within {timeout:g} s",
                    hint=ParamText(
                        "start the same command on every task of TF_CONFIG, or raise {worker_timeout}"
                    ),
                )
            time.sleep(poll)
    finally:
        listener.close()
