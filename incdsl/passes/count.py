"""Counting: params and MACs summed per module (hierarchically) and in total."""
from __future__ import annotations

from ..ops import Count


def count(layer_counts: dict[str, Count], depth: int | None = None) -> dict[str, Count]:
    """Totals for every group of layers sharing a name prefix (`inception3a`, `inception3a/b2`),
    down to `depth` levels (all levels when None). Layers themselves are not repeated here.
    A `Count` holds trainable and non-trainable params and MACs (multiply-accumulates) for one
    image; batch norm's moving mean and variance are its non-trainable params, as in Keras."""
    sums: dict[str, list[int]] = {}  # plain ints, not Count + Count: a sweep sums every variant's layers
    for name, c in layer_counts.items():
        parts = name.split("/")[:-1]
        if depth is not None:
            parts = parts[:depth]
        key = ""
        for part in parts:
            key = f"{key}/{part}" if key else part
            acc = sums.get(key)
            if acc is None:
                sums[key] = [c[0], c[1], c[2]]
            else:
                acc[0] += c[0]
                acc[1] += c[1]
                acc[2] += c[2]
    return {key: Count(*acc) for key, acc in sums.items()}


def total(layer_counts: dict[str, Count], names=None) -> Count:
    """The sum of the per-layer counts (params and MACs for one image), over every layer or,
    when `names` is given (e.g. `Network.inference`), over those layers only."""
    trainable = non_trainable = macs = 0
    for name, c in layer_counts.items():
        if names is None or name in names:
            trainable += c[0]
            non_trainable += c[1]
            macs += c[2]
    return Count(trainable, non_trainable, macs)
