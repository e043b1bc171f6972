#!/usr/bin/env python3
"""incdsl's training loop against the plain Keras code a competent user would write, on one folder.

Both sides train the same compiled model: incdsl's network with its preprocessing inside, compiled by
`incdsl.train.model.compile_for_training` with the same optimizer, schedule, steps per execution
and XLA setting. One side is `incdsl.train.train` (its input path, callbacks, precise BN, exports);
the other is `model.fit` on `keras.utils.image_dataset_from_directory` (TensorFlow) or on the same
images as NumPy arrays (JAX, PyTorch), with the same validation split and no callbacks. Runs are
interleaved (incdsl, plain, incdsl, plain, ...) so that a machine's drift hits both. Printed:
- per epoch: the median of the steady epochs (every epoch after the first, which traces or
  compiles), validation included, for each side, and their ratio; for incdsl also the epoch without
  its precise-BN recalibration (the CSV log's bn_seconds), and that ratio;
- fixed: what a run costs beyond its epochs (wall time of the whole call minus epochs x the steady
  epoch): imports aside, model building, compilation, exports, saves.

  KERAS_BACKEND=tensorflow python tools/bench_train_vs_keras.py              # digits, v3 width 0.25, 75x75
  KERAS_BACKEND=jax python tools/bench_train_vs_keras.py --epochs 3 --rounds 2
  python tools/bench_train_vs_keras.py --steps-per-execution 1 --bn-recalibrate off   # to find a cause
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "specs" / "inception_v3.inc"))
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="spec parameters (default: width=0.25 size=75; classes from the folder)")
    ap.add_argument("--data", help="an image folder (default: scikit-learn's digits, written at the spec's size)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved pairs of runs")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--val-split", type=float, default=0.1)
    ap.add_argument("--steps-per-execution", type=int, help="both sides (default: as incdsl train picks)")
    ap.add_argument("--jit", action="store_true", help="XLA on both sides")
    ap.add_argument("--bn-recalibrate", default="auto", help="incdsl's side: N, auto or off")
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="do not time each callback's hooks (on by default: where time goes outside the steps)")
    return ap.parse_args(argv)


def epoch_timer():
    """A Keras callback recording each epoch's wall time (s), validation included."""
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self._start = [], None

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return Timer()


HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_end")
SPENT: dict[str, float] = {}


def profile_callbacks() -> None:
    """Time every hook of every callback Keras calls (keras.callbacks.CallbackList wraps each one as
    it is made), into SPENT by "Class.hook": what a run spends outside its train and test steps."""
    import keras
    original = keras.callbacks.CallbackList.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for cb in self.callbacks:
            for hook in HOOKS:
                fn = getattr(cb, hook, None)
                if fn is None or getattr(fn, "_timed", False):
                    continue

                def timed(*a, _fn=fn, _key=f"{type(cb).__name__}.{hook}", **k):
                    start = time.perf_counter()
                    try:
                        return _fn(*a, **k)
                    finally:
                        SPENT[_key] = SPENT.get(_key, 0.0) + time.perf_counter() - start
                timed._timed = True
                setattr(cb, hook, timed)

    keras.callbacks.CallbackList.__init__ = init


def steady(seconds: list[float]) -> float:
    return statistics.median(seconds[1:] or seconds)


def run_incdsl(net, folder: Path, args, out: Path) -> dict:
    from incdsl.train import TrainConfig, train
    timer = epoch_timer()
    bn = args.bn_recalibrate if args.bn_recalibrate in ("auto", "off") else int(args.bn_recalibrate)
    config = TrainConfig(output=out, data=str(folder), epochs=args.epochs, batch_size=args.batch_size,
                         val_split=args.val_split, augment=False, jit=args.jit, progress="off", tensorboard=False,
                         steps_per_execution=args.steps_per_execution, bn_recalibrate=bn, callbacks=[timer])
    start = time.perf_counter()
    train(net, config)
    total = time.perf_counter() - start
    with out.with_suffix(".log.csv").open(newline="") as f:
        bn_s = [float(r.get("bn_seconds") or 0) for r in csv.DictReader(f)]
    epoch = steady(timer.seconds)
    return {"epoch": epoch, "epoch_no_bn": steady([t - b for t, b in zip(timer.seconds, bn_s)]),
            "fixed": total - epoch * len(timer.seconds), "total": total}


def plain_data(folder: Path, net, args):
    """(train, validation) as a plain user would load them: image_dataset_from_directory on
    TensorFlow; NumPy arrays of the same images elsewhere."""
    import keras
    h, w, c = net.input_shape
    mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[c]
    if keras.backend.backend() == "tensorflow":
        return keras.utils.image_dataset_from_directory(
            folder, image_size=(h, w), batch_size=args.batch_size, color_mode=mode, validation_split=args.val_split,
            subset="both", seed=0, verbose=False)
    import numpy as np
    from PIL import Image
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [(f, i) for i, name in enumerate(classes) for f in sorted((folder / name).iterdir())]
    pil = {1: "L", 3: "RGB", 4: "RGBA"}[c]
    x = np.stack([np.asarray(Image.open(f).convert(pil).resize((w, h), Image.BILINEAR), "uint8").reshape(h, w, c)
                  for f, _ in files])
    y = np.array([i for _, i in files], "int32")
    order = np.random.default_rng(0).permutation(len(x))
    n_val = int(len(x) * args.val_split)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def run_plain(net, folder: Path, args) -> dict:
    import keras
    from incdsl.backends.keras import build_model
    from incdsl.train import TrainConfig, head_losses
    from incdsl.train.data import steps_per_execution
    from incdsl.train.model import compile_for_training, with_preprocessing
    start = time.perf_counter()
    train, val = plain_data(folder, net, args)
    heads = head_losses(net, None)
    model = with_preprocessing(build_model(net, inference=False), net.input_shape, "inception", [h.name for h in heads])
    if isinstance(train, tuple):
        steps = len(train[0]) // args.batch_size
    else:
        steps = int(train.cardinality())
    per_call = steps_per_execution(args.steps_per_execution, steps, keras.backend.backend(), False)
    compile_for_training(model, heads, TrainConfig(jit=args.jit), steps, per_call)
    timer = epoch_timer()
    if isinstance(train, tuple):
        model.fit(*train, validation_data=val, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                  callbacks=[timer])
    else:
        model.fit(train, validation_data=val, epochs=args.epochs, verbose=0, callbacks=[timer])
    total = time.perf_counter() - start
    epoch = steady(timer.seconds)
    return {"epoch": epoch, "fixed": total - epoch * len(timer.seconds), "total": total}


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras
    import incdsl
    params = {"width": "0.25", "size": "75"}
    params.update(kv.split("=", 1) for kv in args.set)
    tmp = Path(tempfile.mkdtemp(prefix="bench_vs_keras_"))
    folder = Path(args.data) if args.data else None
    if folder is None:
        from digits_folder import write_digits
        folder, _ = write_digits(tmp / "digits", size=int(params["size"]))
    classes = sum(1 for p in folder.iterdir() if p.is_dir())
    net = incdsl.load(args.spec, **{k: _value(v) for k, v in params.items()}, classes=classes)
    print(f"{net.name} {params} on {folder} ({classes} classes), batch {args.batch_size}, {args.epochs} epochs, "
          f"Keras {keras.backend.backend()}; incdsl --bn-recalibrate {args.bn_recalibrate}")
    if args.profile:
        profile_callbacks()
    ours, plain = [], []
    for r in range(args.rounds):
        pair = [("incdsl", lambda: run_incdsl(net, folder, args, tmp / f"r{r}" / "m.keras")),
                ("plain", lambda: run_plain(net, folder, args))]
        for name, run in (pair if r % 2 == 0 else pair[::-1]):
            SPENT.clear()
            got = run()
            (ours if name == "incdsl" else plain).append(got)
            print(f"round {r + 1} {name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in got.items()), flush=True)
            top = sorted(SPENT.items(), key=lambda kv: -kv[1])[:6]
            if top:
                print("  callbacks: " + ", ".join(f"{k} {v:.2f} s" for k, v in top), flush=True)
    e_ours = statistics.median(g["epoch"] for g in ours)
    e_nobn = statistics.median(g["epoch_no_bn"] for g in ours)
    e_plain = statistics.median(g["epoch"] for g in plain)
    f_ours = statistics.median(g["fixed"] for g in ours)
    f_plain = statistics.median(g["fixed"] for g in plain)
    print(f"per epoch: incdsl {e_ours:.2f} s, plain fit {e_plain:.2f} s, ratio {e_ours / e_plain:.3f}")
    print(f"per epoch without precise BN: incdsl {e_nobn:.2f} s, ratio {e_nobn / e_plain:.3f}")
    print(f"fixed per run: incdsl {f_ours:.1f} s, plain fit {f_plain:.1f} s, difference {f_ours - f_plain:+.1f} s")
    return 0


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


if __name__ == "__main__":
    sys.exit(main())
