#!/usr/bin/env python3
"""Training speed of a spec's Keras model against the matching keras.applications model.

Both models train in this process on the same synthetic batch (random pixels 0-255), through the
code `incdsl train` uses (incdsl/train/: the preprocessing wrapper, the losses,
the optimizer, Keras' fit with a PyDataset), so the ratio compares the models, not the pipelines.
Prints images/second for each (best of --repeats, after --warmup steps) and ours / keras.

No TensorFlow needed with KERAS_BACKEND=jax (the data is a keras.utils.PyDataset, not tf.data).

  .venv/bin/python tools/bench_train.py                                  # Inception v3, 299x299, batch 32
  KERAS_BACKEND=jax python tools/bench_train.py --precision mixed_bfloat16 --jit
  .venv/bin/python tools/bench_train.py --size 75 --batch-size 2 --steps 2 --classes 10   # tiny, CPU
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# spec -> the keras.applications model it reproduces, in order of preference
PAIRS = [("specs/inception_v3.inc", "InceptionV3"), ("specs/inception_resnet_v2.inc", "InceptionResNetV2"),
         ("specs/xception.inc", "Xception")]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", help=f"default: {PAIRS[0][0]} (or the next pair that exists)")
    ap.add_argument("--reference", help="keras.applications model name (default: the spec's pair)")
    ap.add_argument("--size", type=int, help="input size (default: the spec's)")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="other spec parameters")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
    ap.add_argument("--repeats", type=int, default=1, help="best of N fits per model, alternating")
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "rmsprop", "adam"))
    ap.add_argument("--precision", default="float32", choices=("float32", "mixed_float16", "mixed_bfloat16"))
    ap.add_argument("--jit", action="store_true", help="XLA (Keras' jit_compile=True)")
    ap.add_argument("--eager", action="store_true", help="no graph compilation (quick start, slow steps; for tests)")
    return ap.parse_args(argv)


def pick_pair(spec: str | None, reference: str | None) -> tuple[Path, str, str | None]:
    """(spec path, keras.applications name, note when the asked-for pair was not there)."""
    if spec:
        path = Path(spec)
        ref = reference or dict((Path(s).name, r) for s, r in PAIRS).get(path.name)
        if ref is None:
            sys.exit(f"bench_train: no keras.applications model known for {spec}; pass --reference")
        return path, ref, None
    for s, r in PAIRS:
        if (ROOT / s).exists():
            note = None if s == PAIRS[0][0] else f"{PAIRS[0][0]} is missing: benchmarking {s} vs {r} instead"
            return ROOT / s, reference or r, note
    sys.exit("bench_train: none of the reference specs exists")


def main(argv=None) -> int:
    args = parse_args(argv)
    spec_path, ref_name, note = pick_pair(args.spec, args.reference)
    if note:
        print(f"note: {note}")

    import keras
    import incdsl
    from incdsl.cli import parse_sets
    from incdsl.train.callbacks import Throughput
    from incdsl.train.data import SyntheticImages
    from incdsl.train.model import compile_for_training, with_preprocessing
    from incdsl.backends.keras import build_model
    from incdsl.train import HeadLoss, TrainConfig, head_losses

    sets = parse_sets(args.set)
    spec = incdsl.Spec(spec_path)
    if "aux" in spec.params and "aux" not in sets:
        sets["aux"] = "false"  # keras.applications models have no auxiliary head
    if args.size:
        sets["size"] = str(args.size)
    sets.setdefault("classes", str(args.classes))
    net = spec.build(**sets)
    size = net.input_shape[0]
    config = TrainConfig(output=Path("unused.keras"), batch_size=args.batch_size, optimizer=args.optimizer,
                         precision=args.precision, jit=args.jit)
    steps = args.warmup + args.steps

    keras.config.set_dtype_policy(args.precision)
    ours_heads = head_losses(net)
    ours = with_preprocessing(build_model(net), net.input_shape, "inception", [h.name for h in ours_heads])
    compile_for_training(ours, ours_heads, config, steps)
    ref_fn = getattr(keras.applications, ref_name)
    ref_core = ref_fn(weights=None, input_shape=tuple(net.input_shape), classes=int(sets["classes"]))
    ref_heads = [HeadLoss("predictions", int(sets["classes"]), False, 1.0, False)]
    ref = with_preprocessing(ref_core, net.input_shape, "inception", ["predictions"])
    compile_for_training(ref, ref_heads, config, steps)
    for m in (ours, ref):
        m.run_eagerly = args.eager

    data = {id(ours): SyntheticImages(steps, args.batch_size, net.input_shape, int(sets["classes"]),
                                      [h.name for h in ours_heads] if len(ours_heads) > 1 else None, pool=1),
            id(ref): SyntheticImages(steps, args.batch_size, net.input_shape, int(sets["classes"]), None, pool=1)}
    best = {id(ours): 0.0, id(ref): 0.0}
    for _ in range(args.repeats):
        for m in (ours, ref):
            timer = Throughput(args.batch_size, skip=args.warmup)
            m.fit(data[id(m)], epochs=1, verbose=0, shuffle=False, callbacks=[timer])
            best[id(m)] = max(best[id(m)], timer.images_per_second)

    print(f"bench_train: {spec_path.relative_to(ROOT) if spec_path.is_relative_to(ROOT) else spec_path} vs "
          f"keras.applications.{ref_name}, {size}x{size}x{net.input_shape[2]}, {sets['classes']} classes, "
          f"batch {args.batch_size}, {args.steps} steps after {args.warmup} warm-up, best of {args.repeats}, "
          f"{args.optimizer}, {args.precision}{', jit' if args.jit else ''}{', eager' if args.eager else ''}")
    print(f"backend {keras.backend.backend()}, devices: {_devices()}")
    rows = [(f"incdsl {net.name}", ours.count_params(), best[id(ours)]),
            (f"keras {ref_name}", ref.count_params(), best[id(ref)])]
    print(f"{'model':<28}{'params':>14}{'images/s':>12}")
    for name, params, ips in rows:
        print(f"{name:<28}{params:>14,}{ips:>12.1f}")
    print(f"{'ratio (incdsl / keras)':<42}{best[id(ours)] / best[id(ref)]:>12.3f}")
    return 0


def _devices() -> str:
    import keras
    try:
        return ", ".join(keras.distribution.list_devices())
    except Exception:  # not every backend lists devices through keras.distribution
        pass
    try:
        import tensorflow as tf
        return ", ".join(d.name for d in tf.config.list_logical_devices())
    except ImportError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
