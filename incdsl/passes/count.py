"""Counting: params and MACs summed per module (hierarchically) and in total."""
from __future__ import annotations

from ..ops import ZERO, Count


def count(layer_counts: dict[str, Count], depth: int | None = None) -> dict[str, Count]:
    """Totals for every group of layers sharing a name prefix (`inception3a`, `inception3a/b2`),
    down to `depth` levels (all levels when None). Layers themselves are not repeated here.
    A `Count` holds trainable and non-trainable params and MACs (multiply-accumulates) for one
    image; batch norm's moving mean and variance are its non-trainable params, as in Keras."""
    groups: dict[str, Count] = {}
    for name, c in layer_counts.items():
        parts = name.split("/")[:-1]
        if depth is not None:
            parts = parts[:depth]
        for i in range(1, len(parts) + 1):
            key = "/".join(parts[:i])
            groups[key] = groups.get(key, ZERO) + c
    return groups


def total(layer_counts: dict[str, Count], names=None) -> Count:
    """The sum of the per-layer counts (params and MACs for one image), over every layer or,
    when `names` is given (e.g. `Network.inference`), over those layers only."""
    acc = ZERO
    for name, c in layer_counts.items():
        if names is None or name in names:
            acc = acc + c
    return acc
