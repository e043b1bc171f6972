"""Repeatable runs (`--seed S --deterministic`): the same losses and weights, bit for bit, for two
runs on the same backend and machine.

keras.utils.set_random_seed seeds Python's, NumPy's and the backend's generators (Keras'
SeedGenerator and the dropout/augmentation layers draw from them). Each backend then needs its
own switch for kernels whose reductions are ordered by thread timing:
- TensorFlow: tf.config.experimental.enable_op_determinism() (TF >= 2.9; the successor of
  TF_DETERMINISTIC_OPS=1), which also makes tf.data's parallel map deterministic; ops without a
  deterministic kernel raise an error rather than differ.
- PyTorch: torch.use_deterministic_algorithms(True) (and CUBLAS_WORKSPACE_CONFIG for CUDA >= 10.2,
  as torch's "Reproducibility" note says).
- JAX: XLA on CPU is deterministic; on GPU, XLA_FLAGS=--xla_gpu_deterministic_ops=true, which must
  be set before JAX starts (set here when JAX has not been imported yet).
The data order is already a function of the seed (images.plan_folder, SyntheticImages).
"""
from __future__ import annotations

import os
import sys


def make_deterministic(seed: int, backend: str) -> list[str]:
    """Seed every generator with `seed` and turn on `backend`'s determinism switches; returns what
    was done, one phrase each (for the log)."""
    done = []
    if backend == "jax" and "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS",
                                                  "") + " --xla_gpu_deterministic_ops=true").strip()
        done.append("XLA deterministic GPU ops")
    if backend == "torch":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_random_seed(seed)
    done.append(f"keras.utils.set_random_seed({seed})")
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
        done.append("TensorFlow op determinism")
    elif backend == "torch":
        import torch
        torch.use_deterministic_algorithms(True)
        done.append("torch deterministic algorithms")
    return done


def set_random_seed(seed: int) -> None:
    """keras.utils.set_random_seed(seed): Python's, NumPy's and the backend's generators (Keras'
    SeedGenerator), and TensorFlow's only where TensorFlow is imported already (the TensorFlow
    backend imports it with Keras). Keras' own call imports TensorFlow wherever it is installed
    (2-3 s of CPU and ~460 MB) for JAX and PyTorch runs that never use it; its `tf` is given
    backends/keras/without_tf.py's view instead."""
    import keras

    from ..backends.keras import without_tf
    without_tf.install(without_tf.SEEDING)
    keras.utils.set_random_seed(seed)
