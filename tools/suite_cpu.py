#!/usr/bin/env python3
"""Seconds of CPU each test costs, its subprocesses included, and where a suite run's CPU goes
(issue 29 item 4: the quick suite under 90 s on 2 cores). On a machine shared with others, wall
times (pytest's --durations) grow with the load; CPU time much less, and it counts what a test's
subprocesses (`python -m incdsl`, a language server, a fresh interpreter importing Keras) spend.

As a pytest plugin (the tools/ folder on PYTHONPATH), each process writes OUT/<worker>.json:

    PYTHONPATH=tools SUITE_CPU_OUT=/tmp/cpu-new .venv/bin/python -m pytest -p suite_cpu \\
        -n 2 --dist worksteal -q -m "not slow"

then, for one run or a baseline and a new run (each file's CPU, and new / baseline):

    .venv/bin/python tools/suite_cpu.py /tmp/cpu-new [--against /tmp/cpu-old] [--top 30]

A test's CPU is its process's user + system time over setup, call and teardown, plus that of the
children it waited for (os.times: a server reaped at a module fixture's teardown counts to the
module's last test). What is outside the tests (pytest's start, the imports of collection, xdist's
controller) is printed per process.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
from pathlib import Path

try:
    import pytest
except ImportError:  # the report needs no pytest
    pytest = None

_rows: list[tuple[str, float, float]] = []


def _cpu() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


if pytest is not None:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        """Times one test: setup, call and teardown."""
        own, kids = _cpu()
        yield
        own2, kids2 = _cpu()
        _rows.append((item.nodeid, own2 - own, kids2 - kids))


def pytest_sessionfinish(session):
    """Writes this process's tests and totals to $SUITE_CPU_OUT/<xdist worker or main>.json."""
    out = os.environ.get("SUITE_CPU_OUT")
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    own, kids = _cpu()
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (Path(out) / f"{name}.json").write_text(json.dumps({"tests": _rows, "own": own, "children": kids}))


def load(folder: Path) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """(test node id -> seconds of CPU, process name -> (its own CPU, its children's)) of one run."""
    tests, procs = {}, {}
    for f in sorted(folder.glob("*.json")):
        data = json.loads(f.read_text())
        tests.update({n: own + kids for n, own, kids in data["tests"]})
        procs[f.stem] = (data["own"], data["children"])
    if not procs:
        raise SystemExit(f"suite_cpu: no <worker>.json in {folder} (run pytest with -p suite_cpu first)")
    return tests, procs


def by_file(tests: dict[str, float]) -> collections.Counter:
    """Seconds of CPU per test file."""
    files: collections.Counter = collections.Counter()
    for nodeid, s in tests.items():
        files[nodeid.split("::", 1)[0]] += s
    return files


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="the SUITE_CPU_OUT folder of a run")
    p.add_argument("--against", type=Path, help="a baseline run's folder: prints new / baseline")
    p.add_argument("--top", type=int, default=30, help="files and tests listed (default 30)")
    a = p.parse_args()
    tests, procs = load(a.run)
    base_tests, base_procs = load(a.against) if a.against else ({}, {})
    workers = {k: v for k, v in procs.items() if k != "main"}
    in_tests = sum(tests.values())
    # the controller's children are the workers (and the workers' children): count its own time only
    total = sum(own + kids for own, kids in workers.values()) + procs.get("main", (0, 0))[0]
    if not workers:
        total = sum(procs["main"])
    print(f"{len(tests)} tests: {in_tests:.1f} s of CPU in tests, {total:.1f} s in all "
          f"({total - in_tests:.1f} s outside tests: start, collection, xdist's controller)")
    for name, (own, kids) in sorted(procs.items()):
        print(f"  {name}: {own:.1f} s own, {kids:.1f} s children")
    if base_tests:
        base_total = sum(own + kids for k, (own, kids) in base_procs.items() if k != "main")
        base_total += base_procs.get("main", (0, 0))[0] if len(base_procs) > 1 else sum(base_procs["main"])
        print(f"baseline: {sum(base_tests.values()):.1f} s in tests, {base_total:.1f} s in all; "
              f"new / baseline {total / base_total:.3f}")
    files, base_files = by_file(tests), by_file(base_tests)
    print(f"\nfiles, seconds of CPU{' (baseline, ratio)' if base_tests else ''}:")
    for f, s in files.most_common(a.top):
        extra = f"  ({base_files[f]:6.2f}, {s / base_files[f]:.2f})" if base_files.get(f) else ""
        print(f"  {s:7.2f}{extra}  {f}")
    print("\ntests:")
    for n, s in sorted(tests.items(), key=lambda kv: -kv[1])[:a.top]:
        extra = f"  ({base_tests[n]:6.2f})" if n in base_tests else ""
        print(f"  {s:7.2f}{extra}  {n}")


if __name__ == "__main__":
    main()
