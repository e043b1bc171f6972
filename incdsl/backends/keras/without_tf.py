"""Saving and seeding on the JAX or PyTorch backend without importing TensorFlow (Keras 3.15).

Keras' serializer (`keras.src.saving.serialization_lib.serialize_keras_object`, run for every
object of a model's config by `model.save`) asks `tf.available and isinstance(obj, tf.TensorShape)`
(also tf.DType, tf.TypeSpec), where `tf` is a lazy module whose `available` imports TensorFlow
when it is installed. So every `.keras` file written on JAX or PyTorch imported TensorFlow, which
nothing else there uses: a small `incdsl train` on JAX (warm compilation cache) took 9.0 s of CPU
and 967 MB of memory with it, 6.0 s and 503 MB without (issue 29 item 4).

`install()` hands the serializer a view of that lazy module whose `available` is False until
TensorFlow has been imported by someone else: no object can be a TensorFlow object before then, so
each of those `isinstance` checks answers as before, and once TensorFlow is imported (the
TensorFlow backend, tf.data) everything is Keras' own. Nothing changes where Keras is laid out
otherwise. Keras' seeding (`keras.utils.set_random_seed`, `keras.src.utils.rng_utils`) asks the
same question before seeding `tf.random`, and gets the same view (train/determinism.py).
"""
from __future__ import annotations

import importlib
import sys

SERIALIZER = "keras.src.saving.serialization_lib"  # model.save's isinstance checks
SEEDING = "keras.src.utils.rng_utils"  # keras.utils.set_random_seed, which seeds tf.random too


class ImportedOnly:
    """Keras' lazy `tensorflow` module, except that `available` is False while TensorFlow is not
    imported; every other attribute is the lazy module's."""

    def __init__(self, lazy) -> None:
        self._lazy = lazy

    @property
    def available(self) -> bool:
        """True when TensorFlow is imported already and Keras finds it usable."""
        return "tensorflow" in sys.modules and self._lazy.available

    def __getattr__(self, name):
        return getattr(self._lazy, name)


def install(module: str = SERIALIZER) -> bool:
    """Give `module`'s `tf` (Keras' lazy TensorFlow module) the view above, once; returns whether it
    did (False when already done or when this Keras has no such module or lazy module). Imports
    that part of Keras, not TensorFlow."""
    try:
        mod = importlib.import_module(module)
    except ImportError:  # a Keras laid out otherwise: nothing to work around
        return False
    lazy = getattr(mod, "tf", None)
    if lazy is None or isinstance(lazy, ImportedOnly) or not hasattr(type(lazy), "available"):
        return False
    mod.tf = ImportedOnly(lazy)
    return True
