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
  epoch): imports aside, model building, compilation, exports, saves;
- the same in CPU seconds of the process (all its threads: time.process_time), which a machine
  shared with other work disturbs far less than wall time.
Sides (--sides): incdsl as `incdsl train` runs it (precise BN before each validation, by design:
its cost is in the log), incdsl with `--bn-recalibrate off` (precise BN only at the end), plain fit.

What was found (issue 31 item 4; Keras 3.15.1, TF 2.21, 2-core CPU): the 1.25x per epoch was the two
saves incdsl made at every epoch's end, both Python-bound in Keras' saving code, against an epoch of
13 s of CPU: the best epoch's .keras export (0.38 s of CPU to copy the weights layer by layer, 1.19 s
for model.save) and the --resume backup (BackupAndRestore's save_weights with the optimizer state,
0.90 s). Half of each save was a Keras cache that never hits (get_attr_skipset reads the key
saving_attr_skiplist_*, writes saving_attr_skipset_*: a bare Layer built and dir()'d per layer
saved), filled by incdsl/train/keras_saving_fix.py (save 1.19 -> 0.59 s, save_weights 0.90 -> 0.51
s); the best epoch is held in memory (0.05 s) and written when the run stops
(incdsl/train/run/export.py). What is left per epoch is by design: the backup (for --resume;
0.5 s then, 0.13-0.27 s since, below) and precise BN before each validation (a forward pass
over N training batches, N = one epoch on the digits: about a third of an epoch; the log's
bn_seconds column and last lines state it).
On JAX (2026-12-07) the epoch without precise BN was 1.16-1.21x in CPU seconds. The CPU of each
thread group per epoch (printed under each run) names where it went: XLA's compute threads
(tf_XLAEigen, ~6.5-7.5 s, the same work on both sides, but swinging by 10% and more with the
machine's load), and the host's work outside them, 1.44-1.58 s for incdsl against 0.70-0.93 s for
plain fit: (1) Pillow decoding every epoch in the reader's threads, 0.3 s (Keras' PyDataset
enqueuer restarts its thread pool each epoch, so this showed as CPU of threads that had ended),
where the plain loop decodes once into arrays: fixed by decoding each file once and keeping it
(incdsl/train/image_cache.py, --image-cache MB; side incdsl-bn-off-nocache is the old reader), host
CPU 1.15-1.27 s after; (2) the --resume backup, 0.37-0.45 s (CheckedBackup.on_epoch_end: Keras'
save_weights, h5 datasets and groups for 569 variables, Python-bound), made cheaper since (below).
Two runs (load 12 on 2 cores): CPU per steady epoch, incdsl-bn-off against plain, 0.917x and 1.153x
(the compute threads' noise); host CPU 1.21 and 1.33 s against 0.82 and 0.73 s: at equal compute
1.045x and 1.082x; a third (load 10): 1.061x CPU, host 1.16 vs 0.71 s, 1.059x at equal compute. The
rest was the backup: cProfile of save_weights (Inception v3 width 0.25: 319 HDF5 groups, 569
arrays, 0.39 s of CPU unprofiled) spent its time in h5py's high-level dataset and group creation
(about 45%), Keras' walk of the model (_walk_saveable: dir() and getattr of every attribute of
every layer, about 25%) and the conversions to NumPy (about 5%). incdsl/train/backup_write.py walks
once and writes the same file with h5py's low-level calls (0.13 s, of which the HDF5 library's own
object creation is 0.1 s), renamed into place so that a kill leaves a whole backup. 2026-12-07, load
10-13, 2 rounds, --sides incdsl-bn-off,plain, in one session: JAX before 1.093x CPU, host 1.30 vs
0.79 s, 1.067x at equal compute, backup 0.40-0.48 s per epoch; after 0.957x CPU, host 0.91 vs 0.84
s, 1.009x at equal compute, backup 0.15 s per epoch (its first includes the walk). TF before 1.087x
CPU (backup 0.49-0.62 s per epoch), after 0.990x (0.27 s).

  KERAS_BACKEND=tensorflow python tools/bench_train_vs_keras.py              # digits, v3 width 0.25, 75x75
  KERAS_BACKEND=jax python tools/bench_train_vs_keras.py --epochs 3 --rounds 2
  python tools/bench_train_vs_keras.py --steps-per-execution 1 --bn-recalibrate off   # to find a cause
"""
from __future__ import annotations

import argparse
import csv
import os
import re
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
    ap.add_argument("--data",
                    help="an image folder (default: scikit-learn's digits, written at the spec's size)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved pairs of runs")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--val-split", type=float, default=0.1)
    ap.add_argument("--steps-per-execution", type=int, help="both sides (default: as incdsl train picks)")
    ap.add_argument("--jit", action="store_true", help="XLA on both sides")
    ap.add_argument("--bn-recalibrate", default="auto", help="incdsl's side: N, auto or off")
    ap.add_argument(
        "--sides",
        default="incdsl,incdsl-bn-off,plain",
        help="which runs make a round, interleaved: incdsl, incdsl-bn-off, incdsl-bn-off-nocache (no image "
        "cache: the Pillow reader decodes every epoch), plain (comma-separated)",
    )
    ap.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="do not time each callback's hooks (on by default: where time goes outside the steps)",
    )
    return ap.parse_args(argv)


def epoch_timer():
    """A Keras callback recording each epoch's wall time (s), validation included."""
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.cpu, self.threads, self._start = [], [], [], None

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter(), time.process_time(), thread_cpu()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start[0])
            self.cpu.append(time.process_time() - self._start[1])
            now = thread_cpu()
            self.threads.append({k: v - self._start[2].get(k, 0.0) for k, v in now.items()})

    return Timer()


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each group of the process's live threads (Linux /proc; {} elsewhere): "main",
    Python threads by name with numbers as N ("Thread-N (worker)": a thread pool's), native threads
    by their name (XLA's, Eigen's). Threads that ended are in no group: a run's process CPU less the
    sum of the groups is theirs."""
    import threading
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return {}
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in tasks:
        try:
            stat = Path(f"/proc/self/task/{task}/stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime: fields 14 and 15
        tid = int(task)
        name = "main" if tid == os.getpid() else names.get(tid, stat[stat.index("(") + 1:stat.rindex(")")])
        group = re.sub(r"\d+", "N", name)
        out[group] = out.get(group, 0.0) + cpu
    return out


def thread_line(timer) -> str:
    """The steady epochs' CPU by thread group (median over epochs after the first), largest first."""
    epochs = timer.threads[1:] or timer.threads
    groups = {k for e in epochs for k in e}
    med = {k: statistics.median(e.get(k, 0.0) for e in epochs) for k in groups}
    top = sorted(((k, v) for k, v in med.items() if v >= 0.05), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.2f}" for k, v in top)


HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_end")
SPENT: dict[str, float] = {}


def profile_callbacks() -> None:
    """Time every hook of every callback Keras calls (keras.callbacks.CallbackList wraps each one as
    it is made), into SPENT by "Class.hook", in CPU seconds of the calling thread (a loaded
    machine inflates wall time, not this): what a run spends outside its train and test steps."""
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
                    start = time.thread_time()  # CPU of the main thread: what the hook itself costs
                    try:
                        return _fn(*a, **k)
                    finally:
                        SPENT[_key] = SPENT.get(_key, 0.0) + time.thread_time() - start
                timed._timed = True
                setattr(cb, hook, timed)

    keras.callbacks.CallbackList.__init__ = init


def steady(seconds: list[float]) -> float:
    return statistics.median(seconds[1:] or seconds)


def run_incdsl(net, folder: Path, args, out: Path, bn_off: bool = False, cache: bool = True) -> dict:
    from incdsl.train import TrainConfig, train
    timer = epoch_timer()
    bn = args.bn_recalibrate if args.bn_recalibrate in ("auto", "off") else int(args.bn_recalibrate)
    bn = "off" if bn_off else bn
    config = TrainConfig(output=out, data=str(folder), epochs=args.epochs, batch_size=args.batch_size,
                         val_split=args.val_split, augment=False, jit=args.jit, progress="off",
                         tensorboard=False,
                         steps_per_execution=args.steps_per_execution, bn_recalibrate=bn, callbacks=[timer],
                         **({} if cache else {"image_cache_mb": 0}))
    start, cpu = time.perf_counter(), time.process_time()
    train(net, config)
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    with out.with_suffix(".log.csv").open(newline="") as f:
        bn_s = [float(r.get("bn_seconds") or 0) for r in csv.DictReader(f)]
    return {**_times(timer, total, total_cpu), "bn": steady(bn_s)}


def _times(timer, total: float, total_cpu: float) -> dict:
    """Steady epoch and fixed cost, wall and CPU seconds, of one run."""
    epoch, epoch_cpu = steady(timer.seconds), steady(timer.cpu)
    n = len(timer.seconds)
    print(f"  CPU s per steady epoch by thread: {thread_line(timer)}", flush=True)
    epochs = timer.threads[1:] or timer.threads
    compute = statistics.median(sum(v for k, v in e.items() if "XLA" in k or "Eigen" in k) for e in epochs)
    return {"epoch": epoch, "fixed": total - epoch * n, "epoch_cpu": epoch_cpu,
            "fixed_cpu": total_cpu - epoch_cpu * n,
            "total": total, "host_cpu": epoch_cpu - compute if compute else float("nan")}


def plain_data(folder: Path, net, args):
    """(train, validation) as a plain user would load them: image_dataset_from_directory on
    TensorFlow; NumPy arrays of the same images elsewhere."""
    import keras
    h, w, c = net.input_shape
    mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[c]
    if keras.backend.backend() == "tensorflow":
        return keras.utils.image_dataset_from_directory(
            folder, image_size=(h, w), batch_size=args.batch_size, color_mode=mode,
            validation_split=args.val_split,
            subset="both", seed=0, verbose=False)
    import numpy as np
    from PIL import Image
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [(f, i) for i, name in enumerate(classes) for f in sorted((folder / name).iterdir())]
    pil = {1: "L", 3: "RGB", 4: "RGBA"}[c]
    x = np.stack([np.asarray(Image.open(f).convert(pil).resize((w, h), Image.BILINEAR), "uint8").reshape(h, w,
                                                                                                         c)
                  for f, _ in files])
    y = np.array([i for _, i in files], "int32")
    order = np.random.default_rng(0).permutation(len(x))
    n_val = int(len(x) * args.val_split)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def run_plain(net, folder: Path, args) -> dict:
    import keras

    from incdsl.backends.keras.build import build_model
    from incdsl.train import TrainConfig, head_losses
    from incdsl.train.data import steps_per_execution
    from incdsl.train.model import compile_for_training, with_preprocessing
    start, cpu = time.perf_counter(), time.process_time()
    train, val = plain_data(folder, net, args)
    heads = head_losses(net, None)
    model = with_preprocessing(build_model(net, inference=False), net.input_shape, "inception",
                               [h.name for h in heads])
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
    return _times(timer, time.perf_counter() - start, time.process_time() - cpu)


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
    print(f"{net.name} {params} on {folder} ({classes} classes), batch {args.batch_size}, {args.epochs} "
          f"epochs, "
          f"Keras {keras.backend.backend()}; incdsl --bn-recalibrate {args.bn_recalibrate}")
    if args.profile:
        profile_callbacks()
    runs = {
        "incdsl": lambda r: run_incdsl(net, folder, args, tmp / f"r{r}" / "m.keras"),
        "incdsl-bn-off": lambda r: run_incdsl(net, folder, args, tmp / f"r{r}" / "off.keras", bn_off=True),
        # as before the image cache (JAX, PyTorch): the Pillow reader decodes every epoch
        "incdsl-bn-off-nocache": lambda r: run_incdsl(net, folder, args, tmp / f"r{r}" / "nc.keras",
                                                      bn_off=True, cache=False),
        "plain": lambda r: run_plain(net, folder, args),
    }
    sides = [s.strip() for s in args.sides.split(",")]
    got: dict[str, list[dict]] = {side: [] for side in sides}
    for r in range(args.rounds):
        for side in (sides if r % 2 == 0 else sides[::-1]):  # interleaved, the order reversed each round
            SPENT.clear()
            result = runs[side](r)
            got[side].append(result)
            print(f"round {r + 1} {side}: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.items()),
                  flush=True)
            top = sorted(SPENT.items(), key=lambda kv: -kv[1])[:6]
            if top:
                print("  callbacks (CPU s of the main thread): " + ", ".join(f"{k} {v:.2f}" for k, v in top),
                      flush=True)
    med = {side: {k: statistics.median(g[k] for g in got[side]) for k in got[side][0]} for side in sides}
    if "plain" not in med:
        return 0
    p = med["plain"]
    print(f"plain fit: epoch {p['epoch']:.2f} s wall, {p['epoch_cpu']:.2f} s CPU; fixed {p['fixed']:.1f} s "
          f"wall, "
          f"{p['fixed_cpu']:.1f} s CPU")
    for side in (s for s in sides if s != "plain"):
        m = med[side]
        bn = f"; precise BN {m['bn']:.2f} s of each epoch (by design)" if side == "incdsl" else ""
        print(f"{side}: per epoch ratio {m['epoch'] / p['epoch']:.3f} wall ({m['epoch']:.2f} s), "
              f"{m['epoch_cpu'] / p['epoch_cpu']:.3f} CPU ({m['epoch_cpu']:.2f} s){bn}; fixed per run "
              f"{m['fixed'] - p['fixed']:+.1f} s wall, {m['fixed_cpu'] - p['fixed_cpu']:+.1f} s CPU beyond "
              f"plain fit")
        # The compute threads' CPU swings by 10% or more on a loaded machine (their spin-waits grow
        # with contention); the host's work outside them (input, callbacks, saves) is steadier.
        # JAX's CPU backend names them (tf_XLAEigen); elsewhere this line is left out.
        if m["host_cpu"] == m["host_cpu"] and p["host_cpu"] == p["host_cpu"]:
            print(f"{side}: host CPU outside XLA's compute threads {m['host_cpu']:.2f} s per epoch vs "
                  f"{p['host_cpu']:.2f} s for plain fit; at equal compute the CPU ratio would be "
                  f"{(p['epoch_cpu'] + m['host_cpu'] - p['host_cpu']) / p['epoch_cpu']:.3f}")
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
