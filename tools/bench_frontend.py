#!/usr/bin/env python3
"""Front-end speed: in-process parse + elaborate + check + count per spec, and a whole-process
`incdsl summary` against a whole-process Keras build + count_params() of the same network.

Run: .venv/bin/python tools/bench_frontend.py [--repeat N] [--no-keras]
Prints milliseconds (best of N, and median) per spec, then the whole-process ratio.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def in_process(spec: Path, repeat: int) -> tuple[float, float, float]:
    from incdsl.elaborate.statements import elaborate
    from incdsl.frontend.program import load_program
    from incdsl.network import Network

    parse_t, total_t = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        prog = load_program(spec)
        t1 = time.perf_counter()
        net = Network(elaborate(prog), str(spec))
        net.report()
        t2 = time.perf_counter()
        parse_t.append(t1 - t0)
        total_t.append(t2 - t0)
    return min(parse_t) * 1e3, min(total_t) * 1e3, statistics.median(total_t) * 1e3


def whole_process(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


KERAS_BUILD = """
import incdsl
net = incdsl.load({spec!r})
print(net.to_keras().count_params())
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--no-keras", action="store_true", help="skip the whole-process Keras comparison")
    ap.add_argument("--spec", default="specs/googlenet.inc", help="spec for the whole-process comparison")
    args = ap.parse_args()

    from incdsl.frontend.parse import parser
    parser()  # build the LALR tables once, outside the timings, as a sweep would
    print(f"{'spec':32s} {'layers':>6s} {'parse ms':>9s} {'all ms':>8s} {'median':>8s}")
    for spec in sorted((ROOT / "specs").glob("*.inc")):
        import incdsl
        layers = len(incdsl.load(spec).layers)
        p, t, med = in_process(spec, args.repeat)
        print(f"{spec.name:32s} {layers:6d} {p:9.2f} {t:8.2f} {med:8.2f}")

    if args.no_keras:
        return 0
    py = sys.executable
    ours = whole_process([py, "-m", "incdsl", "summary", args.spec], 3)
    keras = whole_process([py, "-c", KERAS_BUILD.format(spec=str(ROOT / args.spec))], 2)
    print(f"\nwhole process, {args.spec} (best of 3 / 2):")
    print(f"  incdsl summary                 {ours * 1e3:8.0f} ms")
    print(f"  Keras build + count_params()   {keras * 1e3:8.0f} ms")
    print(f"  ratio                          {keras / ours:8.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
