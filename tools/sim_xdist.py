#!/usr/bin/env python3
"""How long `pytest -n 2` takes in each test order and pytest-xdist schedule, from one run's
durations, without running the suite again (issue 29 item 4: the full suite under 15 minutes on
2 cores; a long test that starts last leaves one core idle).

    .venv/bin/python -m pytest --collect-only -q > collected.txt
    .venv/bin/python -m pytest --collect-only -q -m slow > slow.txt          # optional
    .venv/bin/python tools/sim_xdist.py collected.txt --durations LOG [--slow slow.txt]

LOG is any pytest output with --durations lines (`506.12s call     tests/...`, setup and teardown
added to the test's call); a test it does not list takes --slow-default seconds when it is in
slow.txt, else --quick-default. Prints the makespan (the last worker's end) and the idle tail (how
long the other worker had nothing to do) of pytest's order and of tests/suite_order.py's order
(the one tests/conftest.py applies), each under xdist's `load` (its LoadScheduling's chunks, as in
pytest-xdist 3.8), `load --maxschedchunk 2` and `worksteal`, and each makespan as a ratio of the
first (pytest's order under `load`). A model: it leaves out the workers' start, collection and the
per-test messages, which are alike in every row.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import suite_order  # noqa: E402


def read_durations(log: Path) -> dict[str, float]:
    """Seconds per test node id, setup + call + teardown, from --durations lines."""
    out: dict[str, float] = {}
    for m in re.finditer(r"^\s*([0-9.]+)s (?:setup|call|teardown)\s+(\S.*?)\s*$", log.read_text(), re.M):
        out[m.group(2)] = out.get(m.group(2), 0.0) + float(m.group(1))
    return out


def read_ids(path: Path) -> list[str]:
    """The node ids of `pytest --collect-only -q` output, in its order."""
    return [line.strip() for line in path.read_text().splitlines() if "::" in line]


def load(d: list[float], workers: int, maxschedchunk: int | None = None) -> list[float]:
    """Each worker's end under xdist's LoadScheduling: a first chunk of a quarter of each worker's
    share, then more when a worker's queue runs low (check_schedule's rule)."""
    pending = list(range(len(d)))
    chunk_max = maxschedchunk or len(d)
    queues: list[list[int]] = [[] for _ in range(workers)]
    first = max(min(len(d) // workers // 4, chunk_max), 2)
    for q in queues:
        q += pending[:first]
        del pending[:first]
    clock = [0.0] * workers
    while any(queues):
        w = min((i for i in range(workers) if queues[i]), key=lambda i: clock[i])
        t = queues[w].pop(0)
        clock[w] += d[t]
        if pending:
            low, high = max(2, len(pending) // workers // 4), max(2, len(pending) // workers // 2)
            if len(queues[w]) < low and not (d[t] >= 0.1 and len(queues[w]) >= 2):
                n = min(high - len(queues[w]), max(2 - len(queues[w]), chunk_max))
                queues[w] += pending[:n]
                del pending[:n]
    return clock


def worksteal(d: list[float], workers: int) -> list[float]:
    """Each worker's end under xdist's WorkStealingScheduling: equal contiguous shares, and a worker
    with fewer than 2 tests queued takes the second half of the longest queue."""
    n = len(d)
    queues = [list(range(n * i // workers, n * (i + 1) // workers)) for i in range(workers)]
    clock = [0.0] * workers
    while any(queues):
        w = min((i for i in range(workers) if queues[i]), key=lambda i: clock[i])
        clock[w] += d[queues[w].pop(0)]
        if len(queues[w]) < 2:
            other = max(range(workers), key=lambda i: len(queues[i]))
            if other != w and len(queues[other]) > 2:
                half = len(queues[other]) // 2
                queues[w] += queues[other][-half:]
                del queues[other][-half:]
    return clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("collected", type=Path, help="`pytest --collect-only -q` output")
    ap.add_argument("--durations", type=Path, required=True, help="a pytest log with --durations lines")
    ap.add_argument("--slow", type=Path, help="`pytest --collect-only -q -m slow` output")
    ap.add_argument("--slow-default", type=float, default=20.0, help="seconds of an unlisted slow test")
    ap.add_argument("--quick-default", type=float, default=0.1, help="seconds of any other unlisted test")
    ap.add_argument("-n", "--workers", type=int, default=2)
    args = ap.parse_args()
    ids = read_ids(args.collected)
    known = read_durations(args.durations)
    slow = set(read_ids(args.slow)) if args.slow else set()

    def seconds(order: list[str]) -> list[float]:
        return [known.get(t, args.slow_default if t in slow else args.quick_default) for t in order]

    total = sum(seconds(ids))
    print(f"{len(ids)} tests, {len(known)} with durations in the log; {total:.0f} s of tests, "
          f"{total / args.workers:.0f} s on {args.workers} workers at best")
    base = None
    orders = (("pytest's order", ids), ("suite_order", suite_order.longest_files_first(ids)))
    schedules = (("load", lambda d: load(d, args.workers)),
                 ("load --maxschedchunk 2", lambda d: load(d, args.workers, 2)),
                 ("worksteal", lambda d: worksteal(d, args.workers)))
    for oname, order in orders:
        for sname, schedule in schedules:
            ends = schedule(seconds(order))
            base = base or max(ends)
            print(f"{oname:15s} {sname:23s} makespan {max(ends):7.0f} s ({max(ends) / base:.2f}x)"
                  f"  idle tail {max(ends) - min(ends):6.0f} s")


if __name__ == "__main__":
    main()
