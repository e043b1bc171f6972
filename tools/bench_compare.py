#!/usr/bin/env python3
"""A 1,000-variant `incdsl compare` sweep against one whole-process `incdsl summary`.

Parsing happens once per spec and elaboration once per variant, so the sweep should cost far less
than a thousand summaries; the aim is a sweep under 20x one summary. Prints the seconds of:
  - the sweep in this process (plan, build and count 1,000 variants, align blocks, JSON),
  - the sweep as a whole process (`incdsl compare ... --json > /dev/null`),
  - one whole-process `incdsl summary SPEC`,
and the ratios of the sweeps to the summary; then a compound-scaling fit (`incdsl fit SPEC --params
10M --scale width=1.1,size=1.15`: bisection on phi to adjacent floats) in process and as a whole
process, with its number of builds. Run: .venv/bin/python tools/bench_compare.py [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# 10 x 10 x 10 = 1,000 variants; sizes stay above Inception v3's smallest input (75)
SWEEPS = ["width=0.5:1.4:0.1", "size=160:340:20", "classes=100:1000:100"]


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--spec", help="default: specs/inception_v3.inc, or specs/googlenet.inc without it")
    args = ap.parse_args()

    spec = Path(args.spec) if args.spec else ROOT / "specs" / "inception_v3.inc"
    if not spec.exists():
        print(f"note: {spec.relative_to(ROOT)} does not exist yet; using specs/googlenet.inc instead")
        spec = ROOT / "specs" / "googlenet.inc"
    rel = str(spec.relative_to(ROOT)) if spec.is_relative_to(ROOT) else str(spec)

    from incdsl.analysis import sweep as cmp
    from incdsl.analysis.compare_out import to_json
    from incdsl.cli.commands.flag_values import parse_sweep
    from incdsl.network import Spec

    def in_process():
        specs = [Spec(spec)]
        plan = cmp.plan(specs, {}, [parse_sweep(s) for s in SWEEPS])
        assert len(plan) == 1000, len(plan)
        rows = cmp.measure_all(plan, progress=False)
        json.dumps(to_json(rows, cmp.align_blocks(rows)))

    exe = [sys.executable, "-m", "incdsl"]
    sweep_cmd = exe + ["compare", rel] + [x for s in SWEEPS for x in ("--sweep", s)] + ["--json"]
    summary_cmd = exe + ["summary", rel]
    run = lambda cmd: subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    t_in = best_of(in_process, args.repeat)
    t_sweep = best_of(lambda: run(sweep_cmd), args.repeat)
    t_summary = best_of(lambda: run(summary_cmd), args.repeat)
    print(f"spec: {rel}; sweep: {' x '.join(SWEEPS)} = 1,000 variants; best of {args.repeat}")
    print(f"  sweep, in process:        {t_in:7.3f} s  ({t_in * 1000 / 1000:.3f} ms per variant)")
    print(f"  sweep, whole process:     {t_sweep:7.3f} s  (incdsl compare ... --json)")
    print(f"  one summary, whole process: {t_summary:5.3f} s  (incdsl summary {rel})")
    print(f"ratio: whole-process sweep / one summary = {t_sweep / t_summary:.1f}x "
          f"(in-process sweep: {t_in / t_summary:.1f}x); aim: under 20x")

    from incdsl.analysis.scaling import compound
    builds = []

    def scale_in_process():
        r = compound(Spec(spec), {"width": 1.1, "size": 1.15}, {"params": 10_000_000})
        builds.append(r)

    fit_cmd = exe + ["fit", rel, "--params", "10M", "--scale", "width=1.1,size=1.15"]
    t_scale = best_of(scale_in_process, args.repeat)
    t_scale_proc = best_of(lambda: run(fit_cmd), args.repeat)
    r = builds[-1]
    print(f"compound scaling to 10M params (width=1.1, size=1.15): phi = {r.short!r}, "
          f"{r.values}, next phi {r.next_short!r}")
    print(f"  in process:    {t_scale:7.3f} s;  whole process: {t_scale_proc:7.3f} s  "
          f"= {t_scale_proc / t_summary:.1f}x one summary")
    return 0


if __name__ == "__main__":
    sys.exit(main())
