"""`incdsl predict MODEL.keras IMAGE... [--top K]`: the top classes of each image, with probabilities."""
from __future__ import annotations

import json
import os
import sys

from ...errors import UsageError

# images the numpy reference classifies (one BLAS thread, ~0.2 s of CPU per Inception v3 image);
# more go to Keras, whose start-up costs seconds but whose batched runs are faster
LIGHT_UP_TO = 32


def add_parser(sub) -> None:
    """Add `incdsl predict MODEL.keras IMAGE...` and its options to `sub` (the argparse subparsers of
    `cli.build_parser`); its handler is `run`."""
    p = sub.add_parser("predict", help="classify images with a model from `incdsl train`")
    p.add_argument("model", metavar="MODEL.keras")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=5, metavar="K",
                   help="how many classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl predict MODEL.keras IMAGE...` with the parsed command line `args`; returns the exit code (0
    when fine).

    Raises `UsageError` (exit 2) for `--top` below 1.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    from ...train.folders import check_predict_files
    results = None
    if len(args.images) <= LIGHT_UP_TO:  # a model incdsl wrote runs without Keras (train/predict_light.py)
        from ...train.predict_light import predict_light
        results = predict_light(args.model, args.images, args.top)  # checks the files first
    else:
        check_predict_files(args.model, args.images)  # before Keras takes its seconds to load
    if results is None:
        use_jax_cache()
        from ...train.predict import predict
        results = predict(args.model, args.images, args.top)
    if args.json:
        print(json.dumps({img: [{"class": c, "probability": p} for c, p in top]
                          for img, top in zip(args.images, results)}, indent=1))
        return 0
    for i, (img, top) in enumerate(zip(args.images, results)):
        if i:
            print()
        print(img)
        width = max(len(c) for c, _ in top)
        for c, p in top:
            print(f"  {c:<{width}}  {p:.4f}")
    return 0


def use_jax_cache() -> None:
    """On JAX, keep the compiled forward pass (~3 s of CPU to compile Inception v3, ~1 s to load
    back) in JAX's persistent compilation cache, under this user's private incdsl cache folder
    (grammar_cache.cache_dir: owned by the user, mode 0700, so no one else can plant a compiled
    program there), unless JAX_COMPILATION_CACHE_DIR says where already. Nothing without a safe
    folder. Set before Keras imports JAX, which reads it then."""
    if os.environ.get("KERAS_BACKEND") != "jax" or "jax" in sys.modules:
        return
    from ...frontend.grammar_cache import cache_dir
    folder = cache_dir()
    if folder is not None:
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(folder / "jax"))
