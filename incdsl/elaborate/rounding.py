"""Channel rounding as the reference code bases write it, for the `depth()` and `make_divisible()`
functions of the language. Plain integer arithmetic on channel counts (filters), nothing else."""
from __future__ import annotations


def slim_depth(d: float, multiplier: float, min_depth: int = 16) -> int:
    """TF-slim's channel multiplier (research/slim/nets/inception_v3.py, inception_v1.py, ...):
    `depth = lambda d: max(int(d * depth_multiplier), min_depth)`. The product is truncated, and
    never falls below `min_depth` (TF-slim's default is 16). Returns filters."""
    return max(int(d * multiplier), int(min_depth))


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The mobile nets' rounding (MobileNetV2's `_make_divisible`, tensorflow/models
    research/slim/nets/mobilenet/mobilenet.py; torchvision.ops.misc._make_divisible): `v` to the
    nearest multiple of `divisor`, at least `min_value` (default `divisor`), and never more than
    10% below `v`. Returns filters. Raises ValueError for a divisor below 1."""
    if divisor < 1:
        raise ValueError(f"the divisor must be at least 1, got {divisor}")
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down must not lose more than 10%
        new_v += divisor
    return int(new_v)
