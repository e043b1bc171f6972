#!/usr/bin/env python3
"""Time one fresh test venv (tests/freshvenv.py) built with pip, then with uv, in the same run.

    PYTHONPATH=. .venv/bin/python tools/bench_fresh_venv.py [EXTRA] [--rounds N]

EXTRA is an extra of incdsl ("jax" by default; "torch" and "all" get torch's CPU pin). Each round
builds the venv in a new empty folder: once with pip (INCDSL_TEST_INSTALLER=pip), once with uv;
the first uv round fills uv's cache if it is empty (download), later rounds show a warm cache, as
the test suite sees it after its first venv. Prints wall and CPU seconds of each build and the
ratio pip / uv. Needs uv (the dev extra) and the network or caches pip and uv can install from.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import sys
sys.path.insert(0, {tests!r})
from freshvenv import TORCH_CPU, fresh_venv
extras = {extras!r}
fresh_venv(extras, *((TORCH_CPU,) if extras in ("torch", "all") else ()))
"""


def build(extras: str, installer: str) -> tuple[float, float]:
    """(wall s, CPU s of the build and its children) of one fresh venv built by `installer`."""
    with tempfile.TemporaryDirectory(prefix="bench-venv-") as folder:
        env = dict(os.environ, INCDSL_TEST_VENVS=folder, INCDSL_TEST_INSTALLER=installer)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", BUILD.format(tests=str(ROOT / "tests"), extras=extras)],
                       check=True, env=env)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("extra", nargs="?", default="jax")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tools"))
    import venv_installer
    if venv_installer.uv_program() is None:
        print("error: uv is not installed (pip install uv; it is in incdsl's dev extra)", file=sys.stderr)
        return 2
    print(f"fresh venv of incdsl[{args.extra}], {args.rounds} round(s); uv: {venv_installer.uv_program()}")
    for r in range(args.rounds):
        pip_wall, pip_cpu = build(args.extra, "pip")
        uv_wall, uv_cpu = build(args.extra, "uv")
        print(f"round {r + 1}: pip {pip_wall:7.1f} s wall {pip_cpu:6.1f} s CPU | "
              f"uv {uv_wall:6.1f} s wall {uv_cpu:5.1f} s CPU | pip/uv wall {pip_wall / uv_wall:5.1f}x, "
              f"CPU {pip_cpu / max(uv_cpu, 0.01):5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
