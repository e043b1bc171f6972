"""The random state of a model's dropout (and every other layer that draws random numbers) in the
`--resume` backup, so that a resumed run draws the masks the uninterrupted run would have.

Why: Keras' layers draw their random numbers from a `keras.random.SeedGenerator`, whose state (a
variable of shape (2,), advanced at each draw) is one of the layer's `variables` but not of its
`weights`, and `save_weights`, which writes the backup, saves only the weights. A resumed run then
started every dropout layer from its initial seed state: epoch 2 of a resumed googlenet_tv run drew
epoch 1's masks again, and its loss differed from the uninterrupted run's by 2% (the weights saved
and restored exactly). Here the states go into the backup's weights file, in a group of their own
that Keras' `load_weights` does not read (`GROUP`), one dataset per state, in the order of
`model.layers`, each with the name of its layer (a variable's own path is numbered by a counter of
the process, `seed_generator_4`, so it differs between runs); `restore` sets them after the
weights are loaded."""
from __future__ import annotations

from pathlib import Path

import numpy as np

GROUP = "incdsl_random_state"


def random_states(model) -> list[tuple[str, object]]:
    """[(layer name, variable)] for the variables of `model`'s layers that are not weights: the
    states of their seed generators (keras.random.SeedGenerator.state), in `model.layers` order."""
    out = []
    for layer in model.layers:
        weights = {id(w) for w in layer.weights}
        out += [(layer.name, v) for v in layer.variables if id(v) not in weights]
    return out


def write(model, path: str | Path) -> None:
    """Add the seed generators' states of `model` to the HDF5 weights file `path` (group GROUP:
    datasets "0", "1", ... each with its layer's name as attribute `layer`)."""
    import h5py
    import keras

    with h5py.File(path, "a") as f:
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
    count, layer or shape)."""
    import h5py

    states = random_states(model)
    with h5py.File(path, "r") as f:
        if GROUP not in f:
            return False
        group = f[GROUP]
        if len(group) != len(states):
            raise Mismatch(f"it holds {len(group)} random states and the network has {len(states)}")
        values = []
        for i, (layer, v) in enumerate(states):
            saved = group[str(i)] if str(i) in group else None
            found = (saved.attrs.get("layer"), saved.shape) if saved is not None else None
            if found != (layer, tuple(v.shape)):
                raise Mismatch(f"its random state {i} is {found}, the network's is {(layer, tuple(v.shape))}")
            values.append(saved[()])
    for (_, v), value in zip(states, values):
        v.assign(value)
    return True
