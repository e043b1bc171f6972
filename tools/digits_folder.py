#!/usr/bin/env python3
"""Write scikit-learn's handwritten digits as image folders for `incdsl train` and `incdsl predict`.

`sklearn.datasets.load_digits()` is the UCI "Optical Recognition of Handwritten Digits" test set
(1,797 grey 8x8 images, 10 classes, pixel values 0-16) and ships inside scikit-learn's wheel: no
download. Each image is scaled to 0-255 and upscaled (bilinear) to SIZE x SIZE, then written as a
grey PNG to OUT/train/<digit>/ or OUT/test/<digit>/: a fixed split (scikit-learn's
train_test_split, stratified, seed 0, 20% test: 1,437 / 360 images).

    .venv/bin/python tools/digits_folder.py OUT [--size 32] [--test 0.2]
    incdsl train SPEC --data OUT/train --set classes=10 ...
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def write_digits(out: str | Path, size: int = 32, test: float = 0.2, seed: int = 0) -> tuple[Path, Path]:
    """Write the folders; returns (train folder, test folder). Raises ValueError for a size under 8
    or a test fraction outside (0, 1)."""
    if size < 8:
        raise ValueError(f"--size must be at least 8 (the digits are 8x8), got {size}")
    if not 0 < test < 1:
        raise ValueError(f"--test must be between 0 and 1, got {test}")
    # after the checks: scikit-learn takes ~1.5 s of CPU to import, a usage error needs none of it
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype("uint8")
    idx = np.arange(len(images))
    train_idx, test_idx = train_test_split(idx, test_size=test, random_state=seed, stratify=digits.target)
    root = Path(out)
    for part, chosen in (("train", train_idx), ("test", test_idx)):
        for i in chosen:
            folder = root / part / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            im = Image.fromarray(images[i], mode="L").resize((size, size), Image.BILINEAR)
            im.save(folder / f"{i:04d}.png")
    return root / "train", root / "test"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="folder to write train/ and test/ into (must not exist yet)")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    p.add_argument("--test", type=float, default=0.2, help="fraction held out (default 0.2)")
    args = p.parse_args(argv)
    if Path(args.out).exists():
        print(f"digits_folder.py: {args.out} exists; give a new folder", file=sys.stderr)
        return 2
    try:
        train, test = write_digits(args.out, args.size, args.test)
    except ValueError as e:
        print(f"digits_folder.py: {e}", file=sys.stderr)
        return 2
    count = lambda d: sum(1 for _ in d.rglob("*.png"))  # noqa: E731
    print(f"wrote {train} ({count(train)} images) and {test} ({count(test)} images), 10 classes, "
          f"{args.size}x{args.size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
