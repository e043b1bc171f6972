#!/usr/bin/env python3
"""`incdsl explore` against the same variants trained by `incdsl train` one after the other, in one run.

Four tiny variants (a small Inception at width 0.125/0.25 and 12x12/16x16 input) on scikit-learn's
digits (tools/digits_folder.py), each for --epochs epochs, timed three ways, wall clock, each run a
fresh process as a user would start it (imports, Ray's start, Keras' compilation included):
- train: four `incdsl train` runs in sequence (the baseline);
- explore, 1 at a time: `incdsl explore --max-concurrent 1`, so the ratio to the baseline is Ray's
  overhead alone (its start, its worker process, which trains one trial after another (Tune's
  reuse_actors), the per-epoch report and checkpoint);
- explore, side by side: `incdsl explore` with Ray's default, as many trials as there are CPUs
  (--cpus-per-trial 1): where cores are free the trials run at once.
Printed: the seconds of each and the ratios to the baseline. Rerun with --cpus N (a local Ray of N
CPUs) to see how it scales with cores.

  KERAS_BACKEND=jax python tools/bench_explore.py                 # 2 epochs, this machine's cores
  KERAS_BACKEND=jax python tools/bench_explore.py --epochs 3 --skip-sequential-explore
  KERAS_BACKEND=jax python tools/bench_explore.py --epochs 1 --skip-side-by-side   # the quick check
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPEC = f"""use "{ROOT / 'specs' / 'googlenet.inc'}"

network tiny(classes=10, size=16, width=0.25) {{
  defaults conv(bias=false, bn=true, bn_momentum=0.9, act=relu)
  input(size, size, 1)
  conv(8, 3, stride=2, pad=valid)
  a = inception(64, 96, 128, 16, 32, 32, width)
  output fc = gap -> dense(classes)
}}
"""
VARIANTS = [{"width": w, "size": s} for w in ("0.125", "0.25") for s in ("12", "16")]


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    run = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{run.stdout}\n{run.stderr}")
    return took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--skip-sequential-explore", action="store_true",
                   help="leave out explore --max-concurrent 1")
    p.add_argument("--skip-side-by-side", action="store_true", help="leave out explore with Ray's default")
    args = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    py = [sys.executable, "-m", "incdsl"]
    common = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", "0.05"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sys.path.insert(0, str(ROOT / "tools"))
        from digits_folder import write_digits
        data, _ = write_digits(tmp / "digits", size=16)
        spec = tmp / "tiny.inc"
        spec.write_text(SPEC)
        sweep = ["--sweep", "width=0.125,0.25", "--sweep", "size=12,16"]

        baseline = 0.0
        for i, v in enumerate(VARIANTS):
            sets = [x for k, val in v.items() for x in ("--set", f"{k}={val}")]
            baseline += timed(py + ["train", str(spec), "--data", str(data), *sets, *common, "--progress",
                                    "off",
                                    "--no-tensorboard", "-o", str(tmp / f"seq{i}" / "model.keras")], env)
        rows = [("4 x incdsl train, in sequence", baseline)]
        if not args.skip_sequential_explore:
            rows.append(("incdsl explore, 1 trial at a time", timed(
                py + ["explore", str(spec), "--data", str(data), *sweep, *common, "--max-concurrent", "1",
                      "-o", str(tmp / "one")], env)))
        if not args.skip_side_by_side:
            rows.append((f"incdsl explore, side by side ({os.cpu_count()} CPUs)", timed(
                py + ["explore", str(spec), "--data", str(data), *sweep, *common, "-o", str(tmp / "all")],
                env)))
    print(f"four tiny variants, {args.epochs} epochs each, digits 16x16, Keras {env['KERAS_BACKEND']}, "
          f"{os.cpu_count()} CPUs")
    for name, seconds in rows:
        print(f"  {name:45s} {seconds:7.1f} s   ratio {seconds / baseline:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
