"""Weights the backend tests share: incdsl's own initial weights with biases and batch-norm
statistics moved away from 0 and 1, so that a wrong bias layout, batch-norm formula or fold shows
(initial weights have gamma 1, beta 0, mean 0, variance 1 and zero biases, which hide them)."""
from __future__ import annotations

import numpy as np

from incdsl.weights.arrays import init_weights


def perturbed(net, seed: int = 1) -> dict:
    """init_weights(net, 0) with gamma and moving_variance drawn from [0.5, 2) and beta,
    moving_mean and bias from N(0, 0.2^2), float32 (layer name -> Keras weight name -> array)."""
    w = init_weights(net, 0)
    rng = np.random.default_rng(seed)
    for arrays in w.values():
        for k, a in arrays.items():
            if k in ("moving_variance", "gamma"):
                arrays[k] = rng.uniform(0.5, 2.0, a.shape).astype(np.float32)
            elif k in ("beta", "moving_mean", "bias"):
                arrays[k] = (0.2 * rng.standard_normal(a.shape)).astype(np.float32)
    return w
