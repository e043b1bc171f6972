#!/usr/bin/env python3
"""Diagnosis time of hostile specs grows linearly: each case is timed at N and 2N (up to the 4 MB
spec limit) and the ratio printed; about 2 is linear, about 4 quadratic.

Run: .venv/bin/python tools/bench_errors.py [--n 100000] [--repeat 3]
(CPU time of this process: these machines are shared and their wall clocks noisy.)

The first case is issue 12's: `conv(4, 1, act=` + N letters + `, =1)` took 3 s at N=20,000 and
75-94 s at N=100,000 (a regex in the syntax-error hint that backtracked).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEAD = "network n() {\n  input 8x8x3\n"

# name -> the spec for a size n; each gives an error (or, for layers, a network) to diagnose
CASES = {
    "hint regex: conv(4, 1, act=a...a, =1)": lambda n: HEAD + "  conv(4, 1, act=" + "a" * n + ", =1)\n}\n",
    "unknown name of n letters": lambda n: HEAD + "  conv(" + "b" * n + ", 1)\n}\n",
    "unknown op of n letters": lambda n: HEAD + "  " + "c" * n + "(1)\n}\n",
    "unterminated string": lambda n: 'use "' + "d" * n + "\n",
    "n open parentheses": lambda n: HEAD + "  conv(" + "(" * n + "\n}\n",
    "n tokens on one line, then an error": lambda n: HEAD + "  relu" + " -> relu" * (n // 8) + " ->\n}\n",
    "n/8 lines, an error on the last": lambda n: HEAD + "  relu\n" * (n // 8) + "  conv(\n",
    "n/4 commas in a call": lambda n: HEAD + "  conv(" + "1, " * (n // 4) + ")\n}\n",
    "a name n long, then '=' at the top": lambda n: "e" * n + " = 1\n",
    "NUL byte at the end": lambda n: HEAD + "  relu\n" * (n // 8) + "\x00",
    "n/16 layers (check)": lambda n: HEAD + "  relu\n" * (n // 16) + "}\n",
}


def diagnose(text: str, path: Path) -> float:
    from incdsl.errors import SpecError
    from incdsl.network import load
    path.write_text(text, encoding="utf-8")
    t = time.process_time()
    try:
        load(path)
    except SpecError as e:
        e.render()
    return time.process_time() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="the smaller size (default 100,000)")
    ap.add_argument("--repeat", type=int, default=3, help="best of R runs (default 3)")
    args = ap.parse_args()
    import tempfile
    path = Path(tempfile.mkdtemp(prefix="incdsl-bench-")) / "x.inc"
    from incdsl.frontend.parse import parser
    parser()  # the LALR tables, outside the timing
    worst = 0.0
    print(f"{'case':42} {'N=' + format(args.n, ','):>12} {'2N':>10} {'ratio':>7}")
    for name, make in CASES.items():
        t1 = min(diagnose(make(args.n), path) for _ in range(args.repeat))
        t2 = min(diagnose(make(2 * args.n), path) for _ in range(args.repeat))
        ratio = t2 / t1 if t1 > 0 else float("nan")
        worst = max(worst, ratio)
        print(f"{name:42} {t1 * 1e3:10.1f}ms {t2 * 1e3:8.1f}ms {ratio:7.2f}")
    print(f"worst ratio {worst:.2f} (2 is linear, 4 quadratic)")
    print("\nwhere the time of a large network goes (one `relu` per line; 100,001 is refused):")
    for n in (40_000, 100_001):
        print(f"  {n:>7,} layers: " + stages(HEAD + "  relu\n" * n + "}\n", path))
    path.unlink(missing_ok=True)
    path.parent.rmdir()
    return 0


def stages(text: str, path: Path) -> str:
    from incdsl.errors import SpecError
    from incdsl.network import Spec
    path.write_text(text)
    t0 = time.process_time()
    spec = Spec(path)
    t1 = time.process_time()
    try:
        net = spec.build()
        t2 = time.process_time()
        net.summary()
        verdict = "ok"
    except SpecError:
        t2 = time.process_time()
        verdict = "refused"
    t3 = time.process_time()
    return (f"parse {t1 - t0:.2f} s, elaborate + shapes + counts {t2 - t1:.2f} s, summary {t3 - t2:.2f} s "
            f"({verdict}, {t3 - t0:.2f} s in all)")


if __name__ == "__main__":
    sys.exit(main())
