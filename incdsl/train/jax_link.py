"""The processes of a JAX multi-worker job meet in Python before `jax.distributed.initialize`, and keep
a line open to process 0 while they train.

Why not leave it all to JAX: its coordination client aborts the whole process from C++ (SIGABRT, a
stack dump, no Python exception) when the coordinator cannot be reached within
`initialization_timeout`, and a process whose peer died waits in the next collective (Gloo on CPUs)
until JAX's heartbeat timeout, 100 s by default, then aborts the same way (both seen with JAX 0.10.2).
So, first, every process connects to the coordinator's address, where process 0 listens (before
JAX's own service binds that port), says who it is and what it was given (a fingerprint of the spec,
the data and the flags), and waits for process 0's answer: everyone has come and agrees, or an error
that names the problem (a process id out of range or taken twice, a difference between the processes,
a process that did not come within `timeout`). Process 0's answer also names the address of JAX's
coordination service (a free port of process 0's host): the coordinator's own port stays with
process 0 while the job runs, so that a process that comes late (a repeated --process-id, a
process started again while the others train) is told at once that its id is taken. During training
the connections are watched by a thread: one that closes without having said "done" means its
process ended, and the survivor says so and exits (status 1) at once instead of waiting in a
collective that can never finish. A process whose run fails says "failed" with its error's first
line before it closes (process 0 passes it on to the others), so the survivors name the error, and
it ends without JAX's shutdown barrier (`exit_if_failed`), which would wait for processes that wait
for it. Nothing here imports JAX or Keras.
"""
from __future__ import annotations

import json
import os
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass

from ..errors import OptionError

DONE = b"done\n"
FAILED = b"failed "  # + {"process": id, "why": first line of its error} + newline
GRACE = 5.0  # s a survivor waits after a peer's connection closed, so that an error both hit prints first
_left_failing = threading.Event()  # this process left its job with an error (Link.fail)


@dataclass(frozen=True)
class Job:
    """Where this process stands in a multi-worker JAX job: process 0's `coordinator` address
    ("host:port", where JAX's coordination service listens), how many processes train together, and
    this one's id (0 to processes - 1; process 0 writes the outputs)."""
    coordinator: str
    processes: int
    process_id: int


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of "host:port" (IPv6 hosts in brackets). Raises OptionError naming
    `coordinator` when it is not that."""
    host, _, port = address.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not host or not 0 < number < 65536:
        raise OptionError(
            "{coordinator} must be HOST:PORT (process 0's address and a free port), got {value}",
                          value=address)
    return host.strip("[]"), number


def check_job(coordinator: str | None, processes: int | None, process_id: int | None) -> None:
    """Check the job's settings as given (any may be None: JAX's cluster detection fills them in).
    Raises OptionError naming `num_processes`, `process_id` or `coordinator`."""
    if coordinator is not None:
        split_address(coordinator)
    if processes is not None and processes < 1:
        raise OptionError("{num_processes} must be at least 1, got {n}", n=processes)
    if process_id is not None and process_id < 0:
        raise OptionError("{process_id} must be 0 or more, got {i}", i=process_id)
    if processes is not None and process_id is not None and process_id >= processes:
        raise OptionError(
            "{process_id} {i} is out of range: {num_processes} {n} numbers the processes 0 to {last}",
                          i=process_id, n=processes, last=processes - 1)


def send_line(sock: socket.socket, message: dict) -> None:
    """Send `message` to `sock` as one line of JSON."""
    sock.sendall(json.dumps(message).encode() + b"\n")


def read_line(sock: socket.socket, deadline: float) -> bytes:
    """One line from `sock`, or b"" when it closed or the deadline passed first."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return b""
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except OSError:
            return b""
        if not chunk:
            return b""
        data += chunk
    return data


class Link:
    """The connections between process 0 and the others, open while the job trains (see the module's
    docstring). `peers`: process id -> socket (process 0 holds one per other process, the others one,
    to process 0, under id 0)."""

    def __init__(self, job: Job, peers: dict[int, socket.socket], jax_address: str | None = None,
                 listener: socket.socket | None = None):
        self.job, self.peers = job, peers
        self.jax_address = jax_address or job.coordinator  # where JAX's coordination service listens
        self.listener = listener  # process 0: the coordinator's port, still answering late processes
        self.said_done: set[int] = set()
        self.finished = threading.Event()  # set when this process ends normally: closes stop counting
        self.chief_done = threading.Event()
        self.context = ""  # appended to the error when a peer is lost (what was kept, how to go on)
        self.lost = threading.Event()  # a peer's connection closed before it said "done"
        self.lost_id: int | None = None
        self.failures: dict[int, str | None] = {}  # process id -> why it failed (its error's first line)
        self.relayed: int | None = None  # the process whose failure process 0 passed on
        self.handled = threading.Event()  # the main thread reports the loss itself (`loss_error`)
        self._thread: threading.Thread | None = None

    def watch(self) -> None:
        """Start the thread that ends this process (exit status 1, with a message naming the lost
        process) when a peer's connection closes before it said "done"; on process 0, also the one
        that answers a process coming after the job met (`_answer_late`)."""
        if self.listener is not None:
            threading.Thread(target=self._answer_late, name="incdsl-job-door", daemon=True).start()
        if not self.peers:
            return
        self._thread = threading.Thread(target=self._watch, name="incdsl-job-watch", daemon=True)
        self._thread.start()

    def _answer_late(self) -> None:
        """Process 0, while the job runs: a process that connects to the coordinator's port now (a
        repeated --process-id, or one started again while the others still train) is told at once
        that its id is taken, or what else does not fit, rather than left to wait."""
        listener = self.listener
        while not self.finished.is_set():
            listener.settimeout(0.5)
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed: the job ended
                return
            try:
                hello = json.loads(read_line(conn, time.monotonic() + 5))
                pid, count = int(hello["id"]), int(hello["processes"])
            except (ValueError, KeyError, TypeError):
                conn.close()  # not one of ours
                continue
            last = self.job.processes - 1
            if count != self.job.processes:
                problem = {"template": "{num_processes} differs: process {p} was given {theirs}, process 0 "
                                       "{ours} (the job is already training)",
                           "values": {"p": pid, "theirs": count, "ours": self.job.processes}}
            elif not 0 <= pid <= last:
                problem = {"template": "{process_id} {p} is out of range: {num_processes} {n} numbers the "
                                       "processes 0 to {last}",
                           "values": {"p": pid, "n": self.job.processes, "last": last}}
            else:
                problem = {"template": "{process_id} {p} is taken (the job already has it: processes 0 to "
                                       "{last} met at {coordinator} {address} and are training)",
                           "values": {"p": pid, "last": last, "address": self.job.coordinator}}
            try:
                send_line(conn, {"error": problem})
            except OSError:
                pass
            conn.close()

    def _close_listener(self) -> None:
        if self.listener is not None:
            self.listener.close()

    def _watch(self) -> None:
        open_ = dict(self.peers)
        pending = {pid: b"" for pid in open_}  # a line may come in pieces
        while open_ and not self.finished.is_set():
            try:
                ready, _, _ = select.select(list(open_.values()), [], [], 0.5)
            except (OSError, ValueError):  # closed by done() or fail() meanwhile
                return
            for sock in ready:
                pid = next(p for p, s in open_.items() if s is sock)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if data:
                    *lines, pending[pid] = (pending[pid] + data).split(b"\n")
                    for line in lines:
                        self._heard(pid, line)
                    continue
                del open_[pid]
                if pid not in self.said_done and not self.finished.is_set():
                    self._lost(pid)

    def _heard(self, pid: int, line: bytes) -> None:
        """One line from process `pid`: "done", or "failed" naming the process that failed and why."""
        if line == DONE.strip():
            self.said_done.add(pid)
            if pid == 0:
                self.chief_done.set()
        elif line.startswith(FAILED):
            try:
                said = json.loads(line[len(FAILED):])
                who, why = int(said["process"]), said.get("why")
            except (ValueError, KeyError, TypeError):
                return
            self.failures[who] = why if isinstance(why, str) else None
            if who != pid:
                self.relayed = who

    def message(self, pid: int) -> str:
        """What a survivor says when process `pid` is lost (with its error's first line when it
        failed and said so)."""
        who = "process 0 (the coordinator)" if pid == 0 else f"process {pid}"
        why = self.failures.get(pid)
        how = (f"it failed: {why}" if why else
               f"its connection to this process {self.job.process_id} closed" if pid not in self.failures else
               "it failed")
        return (f"multi-worker training: {who} ended before the job finished ({how}), so this process "
                f"cannot go on: every step needs every process{self.context}")

    def loss_error(self, wait: float = GRACE) -> str | None:
        """For the main thread, whose collective failed: the message if a peer was lost (waiting up
        to `wait` s for the watcher to see it), else None. The watcher then leaves the report to it."""
        if self.lost.wait(wait):
            self.handled.set()
            return self.message(self.lost_id)
        return None

    def _lost(self, pid: int) -> None:
        if pid == 0 and self.relayed is not None:
            pid = self.relayed  # process 0 ended because another one did: name that one
        self.lost_id = pid
        if self.job.process_id == 0:  # the others hear of it from process 0 alone: pass it on
            self._tell({"process": pid, "why": self.failures.get(pid)}, skip=pid)
        self.lost.set()
        time.sleep(GRACE)  # an error every process hit (a diverged loss) ends each one its own way first
        if self.finished.is_set() or self.handled.is_set():
            return
        print(f"incdsl: error: {self.message(pid)}", file=sys.stderr, flush=True)
        os._exit(1)  # the main thread waits in a collective (C++) that can never finish: nothing else ends it

    def _tell(self, failure: dict, skip: int | None = None) -> None:
        for pid, sock in list(self.peers.items()):
            if pid != skip:
                try:
                    sock.sendall(FAILED + json.dumps(failure).encode() + b"\n")
                except OSError:
                    pass

    def fail(self, why: str | None) -> None:
        """This process leaves the job with an error (`why`: its first line): the others are told
        (process 0 passes it on to the rest), its connections close, and `exit_if_failed` later ends
        the process without JAX's shutdown, whose barrier would wait for processes that wait in a
        collective for this one. Nothing is said when a lost peer is why (the watcher or
        `loss_error` reported that)."""
        if self.finished.is_set() or not self.peers:
            return
        self.finished.set()  # the watcher reports nothing from now on
        if not self.lost.is_set():
            self._tell({"process": self.job.process_id, "why": why})
        for sock in self.peers.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._close_listener()
        _left_failing.set()

    def done(self) -> None:
        """This process ends normally: say "done" to the peers; a process other than 0 then waits
        for process 0 to say it too (process 0 writes the outputs last), so that JAX's shutdown
        finds everyone there. Process 0's connections close."""
        for sock in self.peers.values():
            try:
                sock.sendall(DONE)
            except OSError:
                pass
        if self.job.process_id != 0:
            while not self.chief_done.is_set() and self._thread is not None and self._thread.is_alive():
                self.chief_done.wait(0.5)
        self.finished.set()
        self._close_listener()
        if self._thread is not None:
            self._thread.join(2.0)  # it looks at `finished` every 0.5 s
        for sock in self.peers.values():
            sock.close()


def exit_if_failed(code: int) -> None:
    """End this process now with `code` (its error already said) when it left a JAX job failing
    (`Link.fail`): Python's own exit would run JAX's atexit shutdown, whose barrier waits minutes for
    the other processes (stuck in a collective until they hear of this one), then aborts with a
    stack dump. Does nothing otherwise."""
    if _left_failing.is_set():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
