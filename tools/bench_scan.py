#!/usr/bin/env python3
"""What the data-folder scan's decode check costs (issue 24 item 11): `scan_image_folder` (headers,
then every image checked to decode, in threads) against the header-only scan it replaced, on
scikit-learn's digits written as folders (tools/digits_folder.py: 1,797 grey PNGs) and the same
digits as 224x224 JPEGs (closer to a photo folder: JPEG is checked in Pillow's draft mode). Also
shown: a full Pillow decode of every file (`Image.load`), what a naive check would cost.

    .venv/bin/python tools/bench_scan.py [--size 32] [--repeat 3] [--workers N]

Prints seconds (best of --repeat) and each ratio to the header-only baseline of the same run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def header_only(root: Path) -> int:
    """The scan before issue 24: class folders, every image's header (incdsl.inputs.check_image)."""
    from incdsl.inputs import check_image
    from incdsl.train.folders import IMAGE_SUFFIXES
    n = 0
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        for p in sorted(cls.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                check_image(p)
                n += 1
    return n


def full_decode(root: Path) -> int:
    from PIL import Image
    n = 0
    for p in sorted(root.rglob("*")):
        if p.is_file():
            with Image.open(p) as im:
                im.load()
            n += 1
    return n


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32, help="side of the digits PNGs (tools/digits_folder.py)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, help="scan threads (default: every core, at most 16)")
    args = ap.parse_args()
    from PIL import Image

    from incdsl.train.folders import scan_image_folder
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from digits_folder import write_digits

    with tempfile.TemporaryDirectory() as tmp:
        png, _ = write_digits(Path(tmp) / "png", size=args.size)
        jpg = Path(tmp) / "jpg"
        for p in png.rglob("*.png"):
            out = jpg / p.parent.name / (p.stem + ".jpg")
            out.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(p) as im:
                im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR).save(out, quality=90)
        for name, root in ((f"digits {args.size}x{args.size} PNG", png), ("digits 224x224 JPEG", jpg)):
            n = header_only(root)
            base = best(lambda: header_only(root), args.repeat)
            rows = [("header only (before)", base),
                    ("scan_image_folder, 1 thread",
                     best(lambda: scan_image_folder(root, workers=1), args.repeat)),
                    ("scan_image_folder",
                     best(lambda: scan_image_folder(root, workers=args.workers), args.repeat)),
                    ("full Pillow decode, 1 thread", best(lambda: full_decode(root), args.repeat))]
            print(f"{name}: {n} images")
            for label, t in rows:
                print(f"  {label:30s} {t:7.3f} s  {1e6 * t / n:8.1f} us/image  x{t / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
