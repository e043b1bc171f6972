"""The random state of a model's dropout (and every other layer that draws random numbers) in the
`--resume` backup, so that a resumed run draws the masks the uninterrupted run would have.

Why: Keras' layers draw their random numbers from a `keras.random.SeedGenerator`, whose state (a
variable of shape (2,), advanced at each draw) is one of the layer's `variables` but not of its
`weights`, and `save_weights`, which writes the backup, saves only the weights. A resumed run then
started every dropout layer from its initial seed state: epoch 2 of a resumed googlenet_tv run drew
epoch 1's masks again, and its loss differed from the uninterrupted run's by 2% (the weights saved
and restored exactly). Here the states go into the backup's weights file, in a group of their own
that Keras' `load_weights` does not read (`GROUP`; present, maybe empty, in every backup written
since), one dataset per state in the order of the model's layers (nested models walked), each
named by its layer's path (`googlenet_tv/aux1-dropout_1`: a variable's own path is numbered by a
counter of the process, `seed_generator_4`, so it differs between runs, and a dropout layer has no
weights by which `load_weights` could tell that a spec edit moved it); `restore` sets them after
the weights are loaded."""
from __future__ import annotations

from pathlib import Path

import numpy as np

GROUP = "incdsl_random_state"


def random_states(model, prefix: str = "") -> list[tuple[str, object]]:
    """[(layer path, variable)] for the variables of `model`'s layers that are not weights: the
    states of their seed generators (keras.random.SeedGenerator.state), in layer order, inside
    nested models too (a layer path is the model names down to the layer, '/'-joined)."""
    import keras

    out = []
    for layer in model.layers:
        path = f"{prefix}{model.name}/{layer.name}" if not prefix else f"{prefix}/{layer.name}"
        if isinstance(layer, keras.Model):
            out += random_states(layer, path)
            continue
        weights = {id(w) for w in layer.weights}
        out += [(path, v) for v in layer.variables if id(v) not in weights]
    return out


def write(model, path: str | Path) -> None:
    """Add the seed generators' states of `model` to the HDF5 weights file `path`, which must exist
    (group GROUP: datasets "0", "1", ... each with its layer's path as attribute `layer`)."""
    import h5py
    import keras

    with h5py.File(path, "r+") as f:
        group = f.create_group(GROUP)
        for i, (layer, v) in enumerate(random_states(model)):
            group.create_dataset(str(i), data=np.asarray(keras.ops.convert_to_numpy(v.value)))
            group[str(i)].attrs["layer"] = layer


class Mismatch(ValueError):
    """The random states in a weights file are not those of the model being restored."""


def restore(model, path: str | Path) -> bool:
    """Set the seed generators' states of `model` from the HDF5 weights file `path`. Returns False
    when the file holds none (a backup of an incdsl from before they were kept: the weights alone
    are restored, as then). Raises Mismatch when the file's states are not the model's (another
    count, layer, shape or dtype, or not arrays of whole numbers)."""
    import h5py

    states = random_states(model)
    values = []
    with h5py.File(path, "r") as f:
        if GROUP not in f:
            return False
        group = f[GROUP]
        if not isinstance(group, h5py.Group) or len(group) != len(states):
            found = len(group) if isinstance(group, h5py.Group) else "no group of"
            raise Mismatch(f"it holds {found} random states and the network has {len(states)}")
        for i, (layer, v) in enumerate(states):
            saved = group.get(str(i))
            want = (layer, tuple(v.shape), np.dtype(v.dtype).name)
            found = ((saved.attrs.get("layer"), saved.shape, saved.dtype.name)
                     if isinstance(saved, h5py.Dataset) else None)
            if found != want:
                raise Mismatch(f"its random state {i} is {_shown(found)}, the network's is {_shown(want)}")
            values.append(saved[()])
    for (_, v), value in zip(states, values):
        v.assign(value)
    return True


def _shown(state) -> str:
    if state is None:
        return "not an array"
    layer, shape, dtype = state
    return f"{layer} {dtype}{list(shape)}"
