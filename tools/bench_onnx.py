#!/usr/bin/env python3
"""ONNX export and inference speed: the direct emitter against tf2onnx, on Inception v3.

1. Whole-process export time: `incdsl compile SPEC --to onnx --no-verify` with --via direct and
   with --via tf2onnx, each run --repeat times in a fresh process: best wall time and best CPU
   time (user + system of the child; the steadier figure on a shared machine), and their ratios
   (the aim: direct at least 20x faster).
2. Inference latency at batch 1 and 8 (best and median of --runs after warm-up) of the direct
   NCHW model and the tf2onnx model in onnxruntime, and of the Keras model (`predict_on_batch`),
   all three holding the same weights (init_weights seed 0), with ratios (the aim: direct no
   slower than tf2onnx).

Run: .venv/bin/python tools/bench_onnx.py [--spec specs/inception_v3.inc] [--repeat 3] [--runs 20]
     [--set NAME=VALUE ...]
Falls back to specs/googlenet_tv.inc (and says so) when specs/inception_v3.inc is missing.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
INCDSL = [sys.executable, "-m", "incdsl"]


def export_time(spec: Path, via: str, out: Path, sets: list[str], repeat: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds: user + system of the child) of a whole-process export.
    On a shared machine the CPU time is the steadier figure: wall time includes waiting for a core."""
    cmd = INCDSL + ["compile", str(spec), "--to", "onnx", "--via", via, "--no-verify", "-o", str(out)]
    for s in sets:
        cmd += ["--set", s]
    wall = cpu = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
        wall = min(wall, dt)
        cpu = min(cpu, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return wall, cpu


def latency(fn, runs: int) -> tuple[float, float]:
    """(best, median) milliseconds of fn() after three warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3, statistics.median(times) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "specs" / "inception_v3.inc"))
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--repeat", type=int, default=3, help="export runs per way (best is reported)")
    ap.add_argument("--runs", type=int, default=20, help="timed inference calls per model and batch")
    args = ap.parse_args()

    spec = Path(args.spec)
    if not spec.exists():
        fallback = ROOT / "specs" / "googlenet_tv.inc"
        print(f"note: {spec} is missing; benchmarking {fallback.relative_to(ROOT)} instead")
        spec = fallback

    import numpy as np

    import incdsl
    from incdsl.cli.commands.spec_args import parse_sets

    net = incdsl.load(spec, **parse_sets(args.set))
    print(f"network {net.name} ({spec.name}{', ' + ' '.join(args.set) if args.set else ''}): "
          f"{net.total(inference=True).params:,} inference params; {os.cpu_count()} CPU cores")

    with tempfile.TemporaryDirectory() as tmp:
        direct, via_tf = Path(tmp) / "direct.onnx", Path(tmp) / "tf2onnx.onnx"
        t_direct = export_time(spec, "direct", direct, args.set, args.repeat)
        t_tf = export_time(spec, "tf2onnx", via_tf, args.set, args.repeat)
        print(f"\nwhole-process export, best of {args.repeat} (incdsl compile --to onnx --no-verify):")
        print(f"  {'':8} {'wall':>8} {'CPU':>8}")
        print(f"  direct   {t_direct[0]:7.2f}s {t_direct[1]:7.2f}s   ({direct.stat().st_size / 1e6:.1f} MB)")
        print(f"  tf2onnx  {t_tf[0]:7.2f}s {t_tf[1]:7.2f}s   ({via_tf.stat().st_size / 1e6:.1f} MB)")
        print(f"  direct is {t_tf[0] / t_direct[0]:.1f}x faster in wall time, {t_tf[1] / t_direct[1]:.1f}x "
              f"in CPU time "
              f"(aim: at least 20x; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

        import onnxruntime as ort

        from incdsl.backends.keras.build import build_model

        def session(path):
            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        s_direct, s_tf = session(direct), session(via_tf)
        keras_model = build_model(net, inference=True, seed=0)

        print(f"\ninference latency, ms (best / median of {args.runs} after 3 warm-up calls):")
        print(f"  {'batch':>5}  {'direct (ORT)':>16}  {'tf2onnx (ORT)':>16}  {'Keras':>16}  "
              f"{'tf2onnx/direct':>14}  {'Keras/direct':>12}")
        for batch in (1, 8):
            x = np.random.default_rng(0).standard_normal((batch, *net.input_shape)).astype(np.float32)
            x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # both ONNX models take NCHW
            d = latency(lambda: s_direct.run(None, {"input": x_nchw}), args.runs)
            t = latency(lambda: s_tf.run(None, {"input": x_nchw}), args.runs)
            k = latency(lambda: keras_model.predict_on_batch(x), args.runs)
            # same weights, same input: the three must agree before their speeds mean anything
            a, b = s_direct.run(None, {"input": x_nchw})[0], s_tf.run(None, {"input": x_nchw})[0]
            c = np.asarray(keras_model.predict_on_batch(x))
            agree = max(np.abs(a - b).max(), np.abs(a - c).max()) / np.abs(c).max()
            print(f"  {batch:>5}  {d[0]:7.1f} / {d[1]:6.1f}  {t[0]:7.1f} / {t[1]:6.1f}  {k[0]:7.1f} / "
                  f"{k[1]:6.1f}  "
                  f"{t[0] / d[0]:13.2f}x  {k[0] / d[0]:11.2f}x   (outputs agree to {agree:.1e} of scale)")
        print("ratios use the best times; above 1.00x means direct is faster (aim: tf2onnx/direct >= 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
