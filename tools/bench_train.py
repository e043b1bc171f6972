#!/usr/bin/env python3
"""Training speed: how close `incdsl train`'s path comes to the model's own ceiling, and how fast the
image-folder reader decodes.

Mode `train` (default): a spec's model and the matching keras.applications model, each measured
twice in this process:
- ceiling: the backend's compiled train step called on one batch already on the device (JAX: the
  jitted train_function fit builds; TensorFlow: tf.function(train_step); PyTorch: train_step);
- path: Keras' fit through `incdsl train`'s input path (uint8 batches normalized inside the model,
  several steps per execution, its Throughput callback), on synthetic data or an image folder.
It prints images/s for both, path / ceiling for each model, and ours / keras.

Mode `reader`: a generated folder of JPEGs (500x375, as an average ImageNet photo), read by the
Pillow reader of the JAX and PyTorch backends (PyDataset worker threads) at --size, images/s by
number of workers, and the speed-up over one worker.

  KERAS_BACKEND=jax python tools/bench_train.py --precision mixed_bfloat16 --batch-size 128  # GPU
  KERAS_BACKEND=jax python tools/bench_train.py --data jpeg --images 2048 --batch-size 128 ...
  python tools/bench_train.py --mode reader --images 512 --workers 1,2,4,8,16
  python tools/bench_train.py --size 75 --batch-size 2 --steps 2 --classes 10   # tiny, CPU
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# spec -> the keras.applications model it reproduces, in order of preference
PAIRS = [("specs/inception_v3.inc", "InceptionV3"), ("specs/inception_resnet_v2.inc", "InceptionResNetV2"),
         ("specs/xception.inc", "Xception")]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("train", "reader"), default="train")
    ap.add_argument("--spec", help=f"default: {PAIRS[0][0]} (or the next pair that exists)")
    ap.add_argument("--reference", help="keras.applications model name (default: the spec's pair)")
    ap.add_argument("--size", type=int, help="input size (default: the spec's; reader: 299)")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="other spec parameters")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=24, help="timed steps per repeat")
    ap.add_argument("--warmup", type=int, default=8, help="untimed steps first (compilation)")
    ap.add_argument("--repeats", type=int, default=1, help="best of N per model and measure")
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "rmsprop", "adam"))
    ap.add_argument("--precision", default="float32", choices=("float32", "mixed_float16", "mixed_bfloat16"))
    ap.add_argument("--jit", action="store_true", help="XLA (Keras' jit_compile=True)")
    ap.add_argument("--steps-per-execution", type=int, help="default: as incdsl train picks (up to 8)")
    ap.add_argument("--eager", action="store_true",
                    help="no graph compilation (quick start, slow steps; for tests)")
    ap.add_argument("--data", default="synthetic", metavar="synthetic|jpeg|DIR",
                    help="train mode: synthetic batches, a generated JPEG folder (--images), or a folder")
    ap.add_argument("--images", type=int, default=256, help="JPEGs to generate (--data jpeg, --mode reader)")
    ap.add_argument("--jpeg-size", default="500x375", metavar="WxH")
    ap.add_argument("--workers", default=None, metavar="N[,N...]",
                    help="reader threads (train: one number, default every core up to 16; reader: a list, "
                    "default 1, 2, 4, ... up to the cores)")
    ap.add_argument("--batches", type=int, default=8, help="reader mode: timed batches per worker count")
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


def make_jpeg_folder(root: Path, images: int, size: tuple[int, int], classes: int = 4, seed: int = 0) -> Path:
    """`images` JPEGs (quality 90) of smooth random colour fields with noise, spread over `classes`
    folders."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype("float32")
    for i in range(images):
        folder = root / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.uniform(0.005, 0.05, 3)
        base = np.stack([np.sin(a * xx + i), np.cos(b * yy), np.sin(c * (xx + yy))], -1) * 100 + 128
        img = (base + rng.normal(0, 12, base.shape)).clip(0, 255).astype("uint8")
        Image.fromarray(img).save(folder / f"{i}.jpg", quality=90)
    return root


def folder_plan(folder: Path, batch_size: int):
    from incdsl.train import scan_image_folder
    from incdsl.train.images import plan_folder
    classes, files = scan_image_folder(folder)
    return plan_folder(folder, classes, files, batch_size, 0.0, seed=0, augment=True)


def reader_mode(args) -> int:
    import keras
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter  # what fit uses

    from incdsl.train.data import FolderBatches

    size = args.size or 299
    cores = os.cpu_count() or 1
    counts = ([int(n) for n in args.workers.split(",")] if args.workers else
              sorted({min(2 ** k, cores) for k in range(cores.bit_length() + 1)}))
    jw, jh = (int(v) for v in args.jpeg_size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_jpeg_folder(Path(tmp), args.images, (jw, jh))
        plan = folder_plan(folder, args.batch_size)
        print(f"bench_train reader: {args.images} JPEGs of {jw}x{jh} -> {size}x{size}x3 uint8, batch "
              f"{plan.batch}, "
              f"{args.batches} batches after 2 warm-up, best of {args.repeats}; {cores} cores; Pillow in the "
              f"PyDataset's reader threads (backend {keras.backend.backend()})")
        print(f"{'workers':>8}{'images/s':>12}{'speed-up':>10}{'per worker':>12}")
        one = None
        for n in counts:
            best = 0.0
            for _ in range(args.repeats):
                ds = FolderBatches(plan, (size, size, 3), None, workers=n)
                adapter = PyDatasetAdapter(ds, shuffle=False)
                adapter.on_epoch_begin()
                it = iter(adapter.get_numpy_iterator())
                for _ in range(2):
                    next(it)
                t0 = time.perf_counter()
                for _ in range(args.batches):
                    next(it)
                best = max(best, args.batches * plan.batch / (time.perf_counter() - t0))
                adapter.on_epoch_end()
            one = one or best
            print(f"{n:>8}{best:>12.1f}{best / one:>10.2f}{best / one / n:>12.2f}")
    return 0


def device_step_rate(model, x, y, warmup: int, steps: int) -> float:
    """Images/s of the backend's compiled train step on one batch already on the device (model fitted
    once before, so that it is built and its step compiled)."""
    import keras
    backend = keras.backend.backend()
    batch = x.shape[0]
    if backend == "jax":
        import jax
        data = (jax.device_put(x), jax.tree.map(jax.device_put, y))
        state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                     optimizer_variables=True, metrics_variables=True)
        per_call = model.steps_per_execution

        def run(n):
            nonlocal state
            logs = None
            for _ in range(max(1, n // per_call)):
                logs, state = model.train_function(state, itertools.repeat(data))
            jax.block_until_ready(logs)
            return max(1, n // per_call) * per_call
    else:
        xd, yd = keras.ops.convert_to_tensor(x), keras.tree.map_structure(keras.ops.convert_to_tensor, y)
        if backend == "tensorflow" and not model.run_eagerly:
            import tensorflow as tf
            step = tf.function(model.train_step, jit_compile=model.jit_compile is True)
        else:
            step = model.train_step

        def run(n):
            logs = None
            for _ in range(n):
                logs = step((xd, yd))
            float(keras.ops.convert_to_numpy(next(iter(logs.values()))))
            return n
    run(warmup)
    t0 = time.perf_counter()
    done = run(steps)
    return done * batch / (time.perf_counter() - t0)


def train_mode(args) -> int:
    spec_path, ref_name, note = pick_pair(args.spec, args.reference)
    if note:
        print(f"note: {note}")

    import keras

    import incdsl
    from incdsl.backends.keras.build import build_model
    from incdsl.cli.commands.spec_args import parse_sets
    from incdsl.train import HeadLoss, TrainConfig, head_losses
    from incdsl.train.callbacks import Throughput
    from incdsl.train.data import FolderBatches, SyntheticImages, steps_per_execution
    from incdsl.train.images import default_workers
    from incdsl.train.model import compile_for_training, with_preprocessing

    sets = parse_sets(args.set)
    spec = incdsl.Spec(spec_path)
    if "aux" in spec.params and "aux" not in sets:
        sets["aux"] = "false"  # keras.applications models have no auxiliary head
    if args.size:
        sets["size"] = str(args.size)
    sets.setdefault("classes", str(args.classes))
    classes = int(sets["classes"])
    net = spec.build(**sets)
    shape = tuple(net.input_shape)
    steps = args.warmup + args.steps
    # A whole number of calls for the warm-up and for the timed steps.
    per_call = 1 if args.eager else steps_per_execution(args.steps_per_execution,
                                                        math.gcd(args.warmup, args.steps),
                                                        keras.backend.backend(), False)
    config = TrainConfig(output=Path("unused.keras"), batch_size=args.batch_size, optimizer=args.optimizer,
                         precision=args.precision, jit=args.jit)
    keras.config.set_dtype_policy(args.precision)

    tmp = tempfile.TemporaryDirectory()
    plan, described = None, "synthetic uint8 batches"
    if args.data != "synthetic":
        jw, jh = (int(v) for v in args.jpeg_size.split("x"))
        folder = make_jpeg_folder(Path(tmp.name), args.images,
                                  (jw, jh)) if args.data == "jpeg" else Path(args.data)
        plan = folder_plan(folder, args.batch_size)
        described = f"{'generated ' if args.data == 'jpeg' else ''}JPEG folder ({len(plan.paths)} images)"
    workers = int(args.workers) if args.workers else default_workers()

    def data_for(heads):
        if plan is not None:
            return FolderBatches(plan, shape, heads, workers=workers)
        return SyntheticImages(steps, args.batch_size, shape, classes, heads, pool=1)

    ours_heads = head_losses(net)
    ours = with_preprocessing(build_model(net), shape, "inception", [h.name for h in ours_heads])
    ref_core = getattr(keras.applications, ref_name)(weights=None, input_shape=shape, classes=classes)
    ref_heads = [HeadLoss("predictions", classes, False, 1.0, False)]
    ref = with_preprocessing(ref_core, shape, "inception", ["predictions"])
    models = {"ours": (ours, ours_heads), "ref": (ref, ref_heads)}
    for m, heads in models.values():
        compile_for_training(m, heads, config, steps)
        m.steps_per_execution = per_call  # what compile_for_training picks in `incdsl train`
        m.run_eagerly = args.eager

    rng = __import__("numpy").random.default_rng(0)
    x = rng.integers(0, 256, size=(args.batch_size, *shape), dtype="uint8")
    y = rng.integers(0, classes, size=(args.batch_size,)).astype("int32")
    path = {k: 0.0 for k in models}
    ceiling = {k: 0.0 for k in models}
    for _ in range(args.repeats):
        for key, (m, heads) in models.items():
            names = [h.name for h in heads] if len(heads) > 1 else None
            timer = Throughput(args.batch_size, skip=max(1, args.warmup // per_call))
            m.fit(data_for(names), epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                  callbacks=[timer])
            path[key] = max(path[key], timer.images_per_second)
            yy = y if names is None else {n: y for n in names}
            ceiling[key] = max(ceiling[key], device_step_rate(m, x, yy, args.warmup, args.steps))

    size = shape[0]
    print(f"bench_train: {spec_path.relative_to(ROOT) if spec_path.is_relative_to(ROOT) else spec_path} vs "
          f"keras.applications.{ref_name}, {size}x{size}x{shape[2]}, {classes} classes, batch "
          f"{args.batch_size}, "
          f"{args.steps} steps after {args.warmup} warm-up, best of {args.repeats}, {args.optimizer}, "
          f"{args.precision}{', jit' if args.jit else ''}{', eager' if args.eager else ''}, "
          f"{per_call} step(s) per execution; path data: {described}"
          f"{f', {workers} reader threads' if plan is not None else ''}")
    print(f"backend {keras.backend.backend()}, devices: {_devices()}")
    print(f"{'model':<28}{'params':>14}{'ceiling img/s':>15}{'path img/s':>12}{'path/ceiling':>14}")
    for key, label in (("ours", f"incdsl {net.name}"), ("ref", f"keras {ref_name}")):
        m = models[key][0]
        print(f"{label:<28}{m.count_params():>14,}{ceiling[key]:>15.1f}{path[key]:>12.1f}"
              f"{path[key] / ceiling[key]:>14.3f}")
    print(f"{'ratio (incdsl / keras), ceiling':<42}{ceiling['ours'] / ceiling['ref']:>12.3f}")
    print(f"{'ratio (incdsl / keras), path':<42}{path['ours'] / path['ref']:>12.3f}")
    tmp.cleanup()
    return 0


def main(argv=None) -> int:
    """Run the chosen mode; a spec that does not fit the size, or a bad option, is reported as
    `incdsl` reports it (exit 1 or 2), not as a traceback."""
    from incdsl.errors import SpecError, UsageError
    args = parse_args(argv)
    try:
        return reader_mode(args) if args.mode == "reader" else train_mode(args)
    except SpecError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except UsageError as e:
        print(f"bench_train: error: {e}", file=sys.stderr)
        return 2


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
