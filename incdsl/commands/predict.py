"""`incdsl predict MODEL.keras IMAGE... [--top K]`: the top classes of each image, with probabilities."""
from __future__ import annotations

import json
import os

from ..errors import UsageError


def add_parser(sub) -> None:
    """Add `incdsl predict MODEL.keras IMAGE...` and its options to `sub` (the argparse subparsers of `cli.build_parser`); its handler is `run`."""
    p = sub.add_parser("predict", help="classify images with a model from `incdsl train`")
    p.add_argument("model", metavar="MODEL.keras")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl predict MODEL.keras IMAGE...` with the parsed command line `args`; returns the exit code (0 when fine).

    Raises `UsageError` (exit 2) for `--top` below 1.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    from ..train.folders import check_predict_files
    check_predict_files(args.model, args.images)  # before Keras takes its seconds to load
    from ..train.predict import predict
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
