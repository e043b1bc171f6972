"""How the processes of a JAX multi-worker job meet before `jax.distributed.initialize` (jax_link.py's
docstring says why): process 0 listens on the coordinator's address, every other process connects,
says who it is and what it was given (a fingerprint of the spec, the data and the flags), and is
answered: everyone has come and agrees (with the address of JAX's coordination service), or an error
naming the problem. The connections then become the job's `jax_link.Link`. Nothing here imports JAX
or Keras."""
from __future__ import annotations

import json
import socket
import sys
import time

from ..errors import OptionError
from .jax_link import Job, Link, read_line, send_line, split_address


def differences(ours: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """The names whose values differ between two fingerprints (in `ours`' order, then any only in theirs)."""
    return [k for k in list(ours) + [k for k in theirs if k not in ours] if ours.get(k) != theirs.get(k)]


def _mismatch(name: str, process: int, theirs: dict, ours: dict) -> dict:
    """The error, as OptionError's (template, values), for fingerprint entry `name` differing."""
    values = {"p": process, "theirs": theirs.get(name, "(none)"), "ours": ours.get(name, "(none)")}
    if name in ("spec", "arguments", "data contents"):
        what = {"spec": "the spec's text (with the files it uses) differs",
                "arguments": "the network's arguments differ",
                "data contents": "the data folder's files differ"}[name]
        template = what + ": process {p} has {theirs}, process 0 has {ours}"
    else:
        template = "{" + name + "} differs: process {p} has {theirs}, process 0 has {ours}"
    return {"template": template + "; every process of the job must be given the same spec, data and flags",
            "values": values}


def meet(job: Job, fingerprint: dict[str, str], timeout: float, poll: float = 0.2) -> Link:
    """Bring the processes of `job` together (see the module's docstring), each giving its
    `fingerprint` (name -> value as text; names are parameter names, or 'spec', 'arguments', 'data
    contents'). Waits at most `timeout` seconds. Raises OptionError (exit 2 on the command line)
    naming the problem: the coordinator not reachable or not listening, processes that did not come,
    a process id taken twice, a different process count or fingerprint."""
    if job.processes == 1:
        return Link(job, {})
    deadline = time.monotonic() + timeout
    if job.process_id == 0:
        return _host(job, fingerprint, timeout, deadline)
    return _join(job, fingerprint, timeout, deadline, poll)


def _host(job: Job, fingerprint: dict, timeout: float, deadline: float) -> Link:
    host, port = split_address(job.coordinator)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    peers: dict[int, socket.socket] = {}
    try:
        try:
            listener.bind(("127.0.0.1" if host in ("localhost", "127.0.0.1") else "", port))
            listener.listen(64)
        except OSError as e:
            raise OptionError("process 0 cannot listen on {coordinator} {address}: {why}",
                              address=job.coordinator,
                              why=e.strerror or e) from None
        told = False
        while len(peers) < job.processes - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = ", ".join(str(i) for i in range(1, job.processes) if i not in peers)
                raise OptionError("multi-worker training: process{s} {missing} did not join within {t:g} s "
                                  "({worker_timeout})", s="es" * (job.processes - 1 - len(peers) > 1),
                                  missing=missing, t=timeout)
            if not told:
                print(f"waiting up to {timeout:g} s for {job.processes - 1} other process"
                      f"{'es' * (job.processes > 2)} to join at {job.coordinator}", file=sys.stderr,
                      flush=True)
                told = True
            listener.settimeout(min(1.0, left))
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            line = read_line(conn, min(deadline, time.monotonic() + 10))
            try:
                hello = json.loads(line)
                pid, count, theirs = int(hello["id"]), int(hello["processes"]), dict(hello["fingerprint"])
            except (ValueError, KeyError, TypeError):
                conn.close()  # not one of ours (a port scan, a health check): ignore it
                continue
            problem = None
            if count != job.processes:
                problem = {
                    "template": "{num_processes} differs: process {p} was given {theirs}, process 0 {ours}",
                           "values": {"p": pid, "theirs": count, "ours": job.processes}}
            elif pid in peers or pid == 0:
                problem = {
                    "template": "{process_id} {p} was given to two processes: each process of the job needs "
                                       "its own id, 0 to {last}",
                           "values": {"p": pid, "last": job.processes - 1}}
            elif not 0 < pid < job.processes:
                problem = {
                    "template": "{process_id} {p} is out of range: {num_processes} {n} numbers the processes "
                                       "0 to {last}",
                           "values": {"p": pid, "n": job.processes, "last": job.processes - 1}}
            else:
                diff = differences(fingerprint, theirs)
                if diff:
                    problem = _mismatch(diff[0], pid, theirs, fingerprint)
            if problem is not None:
                for sock in [conn, *peers.values()]:
                    try:
                        send_line(sock, {"error": problem})
                    except OSError:
                        pass
                    sock.close()
                peers.clear()
                raise OptionError(problem["template"], **problem["values"])
            peers[pid] = conn
        jax_address = f"{host}:{_free_port()}"
        for sock in peers.values():
            send_line(sock, {"ok": True, "jax": jax_address})
    except BaseException:
        for sock in peers.values():
            sock.close()
        listener.close()
        raise
    for sock in peers.values():
        sock.settimeout(None)
    return Link(job, peers, jax_address, listener)


def _free_port() -> int:
    """A port free on this machine now, for JAX's coordination service: the coordinator's own port
    stays with process 0's listener (`Link._answer_late`) while the job runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _join(job: Job, fingerprint: dict, timeout: float, deadline: float, poll: float) -> Link:
    address = split_address(job.coordinator)
    told = False
    while True:
        try:
            sock = socket.create_connection(address, timeout=min(1.0, timeout))
            break
        except OSError:
            if time.monotonic() >= deadline:
                raise OptionError(
                    "multi-worker training: process {i} could not reach process 0 at {coordinator} "
                    "{address} within {t:g} s ({worker_timeout}): start process 0 there, or check "
                    "the address",
                    i=job.process_id,
                    address=job.coordinator,
                    t=timeout,
                ) from None
            if not told:
                print(f"waiting up to {timeout:g} s for process 0 at {job.coordinator}", file=sys.stderr,
                      flush=True)
                told = True
            time.sleep(poll)
    try:
        send_line(sock, {"id": job.process_id, "processes": job.processes, "fingerprint": fingerprint})
        line = read_line(sock, deadline + 5)
        try:
            answer = json.loads(line)
        except ValueError:
            answer = {}
        if "error" in answer:
            raise OptionError(answer["error"]["template"], **answer["error"]["values"])
        if not answer.get("ok"):
            raise OptionError(
                "multi-worker training: process 0 at {coordinator} {address} did not confirm the job "
                "within {t:g} s ({worker_timeout}): is every process started, and is that address "
                "this job's process 0?",
                address=job.coordinator,
                t=timeout,
            )
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return Link(job, {0: sock}, answer.get("jax"))
