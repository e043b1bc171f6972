"""A workaround for a cache in Keras' saving code that never hits (Keras 3.15.1), which made every
save and load of a model pay for it once per layer.

`keras.src.saving.saving_lib.get_attr_skipset(obj_type)` computes the attribute names that saving
skips for a kind of object by building a reference object (a bare `Layer()`, an `Optimizer(1.0)`...)
and listing its `dir()`. It is meant to be computed once per kind and kept in Keras' thread-local
global state, but it reads the key `saving_attr_skiplist_<kind>` and writes
`saving_attr_skipset_<kind>`, so it is rebuilt for every layer the saver visits: for Inception v3 at
width 0.25, 318 bare layers built per `model.save`, about a third of its CPU time (measured with
cProfile in tools/bench_train_vs_keras.py's investigation; issue 31 item 4). `warm()` stores each
kind's set, as Keras computes it, under the key Keras reads. It changes nothing where the cache
already works (a later Keras reads and writes one key) or where the function is not there.
"""
from __future__ import annotations

KINDS = ("Layer", "Functional", "Sequential", "Operation", "Metric", "Optimizer", "Loss")


def warm() -> bool:
    """Fill Keras' skip-set cache for this thread (Keras keeps it per thread, and
    `keras.backend.clear_session` empties it), once; returns whether anything was filled. Call it
    before `model.save`, `save_weights` or loading."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving import saving_lib
    except ImportError:  # a Keras laid out otherwise: nothing to work around
        return False
    getter = getattr(saving_lib, "get_attr_skipset", None)
    if getter is None or global_state.get_global_attribute("saving_attr_skiplist_Layer") is not None:
        return False
    filled = False
    for kind in KINDS:
        try:
            skip = getter(kind)
        except Exception:  # a kind this Keras does not know: leave it to Keras
            continue
        global_state.set_global_attribute(f"saving_attr_skiplist_{kind}", skip)
        filled = True
    return filled
