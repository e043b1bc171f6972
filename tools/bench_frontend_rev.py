#!/usr/bin/env python3
"""Front-end speed of this tree against a git revision of it, for a refactor that must not slow it:
the baseline is `git archive REV` unpacked in a temporary folder, and both trees run the same
measurements in fresh interpreters, taking turns (rounds A B A B ...) so that a busy machine
slows both alike.

Per tree and spec: CPU time (best of N) of `Spec.build()` (elaborate + passes), of `report()` then
`pads` on the built network, and of a whole `incdsl summary SPEC` process (user + sys).

Run: .venv/bin/python tools/bench_frontend_rev.py [--rev main] [--spec specs/inception_resnet_v2.inc]
Prints milliseconds per tree and the ratio this tree / REV (below 1: faster).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IN_PROCESS = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from incdsl.network import Spec
spec = Spec(sys.argv[2])
spec.build()  # warm: the grammar tables and the op table
build, report = [], []
for _ in range(int(sys.argv[3])):
    t0 = time.process_time(); net = spec.build(); t1 = time.process_time()
    net.report(); net.pads; t2 = time.process_time()
    build.append(t1 - t0); report.append(t2 - t1)
print(json.dumps({"build": min(build), "report": min(report)}))
"""


def unpack(rev: str, into: Path) -> Path:
    """The files of `rev` under `into` (`git archive`, so no worktree or checkout is touched)."""
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    tar = into / "rev.tar"
    tar.write_bytes(data)
    with tarfile.open(tar) as t:
        t.extractall(into / "tree", filter="data")
    return into / "tree"


def in_process(tree: Path, spec: str, repeat: int) -> dict:
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(tree), str(tree / spec), str(repeat)],
                         check=True, capture_output=True, text=True, cwd=tree).stdout
    return json.loads(out)


def whole_process(tree: Path, spec: str) -> float:
    """CPU seconds (user + sys) of one `incdsl summary` process run in `tree`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "incdsl", "summary", spec], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(tree)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="main", help="the baseline revision (default: main)")
    ap.add_argument("--spec", default="specs/inception_resnet_v2.inc")
    ap.add_argument("--rounds", type=int, default=3, help="turns each tree takes")
    ap.add_argument("--repeat", type=int, default=20, help="builds per in-process turn")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {args.rev: unpack(args.rev, Path(tmp)), "this tree": ROOT}
        best: dict[str, dict[str, float]] = {t: {} for t in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                got = in_process(tree, args.spec, args.repeat)
                got["summary process"] = min(whole_process(tree, args.spec) for _ in range(3))
                for k, v in got.items():
                    best[name][k] = min(best[name].get(k, v), v)
    base, ours = best[args.rev], best["this tree"]
    print(f"{args.spec}: CPU ms, best of {args.rounds} rounds")
    print(f"{'':18s} {args.rev[:12]:>12s} {'this tree':>12s} {'ratio':>7s}")
    for k in base:
        print(f"{k:18s} {base[k] * 1e3:12.2f} {ours[k] * 1e3:12.2f} {ours[k] / base[k]:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
