"""Weights for the ONNX export, in the interchange format (dict[node, dict[key, array]]).

Either the Keras backend's seeded initialisation (`incdsl.weights.init_weights`, numpy only), or
a `.keras` file compiled from the same spec, read with h5py from the zip's `model.weights.h5`
without importing TensorFlow. Keras 3 stores each layer's variables under a group whose `vars`
carries the layer's name, numbered in the layer's own order (Conv2D: kernel, bias; BatchNorm:
gamma, beta, moving mean, moving variance; ...). Layer names follow the Keras backend's naming
contract: node `a/b/conv_1` -> `a.b.conv_1`, its batch norm `a.b.conv_1.bn`.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import SpecError
from ..network import Network


def expected(net: Network, name: str) -> dict[str, dict[str, tuple]]:
    """The Keras layers one IR node owns, each with its variables in Keras' order and their shapes:
    {keras layer name: {interchange key: shape}}."""
    from ..weights import weight_shapes

    kname = name.replace("/", ".")
    own_bn = net.layers[name].op != "bn"  # a conv's batch norm is a layer of its own in Keras
    out: dict[str, dict[str, tuple]] = {}
    for key, shape in weight_shapes(net, name).items():
        layer = kname + ".bn" if own_bn and key in _BN_KEYS else kname
        out.setdefault(layer, {})[key] = shape
    return out


_BN_KEYS = ("gamma", "beta", "moving_mean", "moving_variance")


def load_weights(net: Network, path: str | Path | None, seed: int = 0) -> dict:
    """The weights of `net`'s inference layers: from a file, or the Keras backend's seeded init."""
    if path is None:
        from ..weights import init_weights
        return init_weights(net, seed=seed)
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"weights file {path} does not exist")
    if path.suffix == ".keras" and zipfile.is_zipfile(path):
        return read_keras_file(net, path)
    return _via_keras(net, path)


def read_keras_file(net: Network, path: Path) -> dict:
    """Read a Keras 3 `.keras` archive's weights with h5py alone (no TensorFlow)."""
    import h5py

    with zipfile.ZipFile(path) as z:
        if "model.weights.h5" not in z.namelist():
            raise SpecError(f"{path} is not a Keras 3 model archive (no model.weights.h5 inside)")
        data = z.read("model.weights.h5")
    stored: dict[str, list[np.ndarray]] = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        def visit(group_name, obj):
            if isinstance(obj, h5py.Group) and group_name.split("/")[-1] == "vars" and "name" in obj.attrs:
                keys = sorted(obj.keys(), key=int)
                stored[str(obj.attrs["name"])] = [np.asarray(obj[k]) for k in keys]
        f.visititems(visit)

    weights: dict[str, dict[str, np.ndarray]] = {}
    for name in net.layers:
        if name not in net.inference:
            continue
        for kname, want in expected(net, name).items():
            if kname not in stored:
                raise SpecError(f"{path} has no layer '{kname}' for node '{name}': was it compiled from this spec "
                                f"with the same --set values?", net.layers[name].span)
            got = stored[kname]
            if len(got) != len(want) or any(g.shape != s for g, s in zip(got, want.values())):
                have = ", ".join(str(g.shape) for g in got)
                need = ", ".join(f"{k} {s}" for k, s in want.items())
                raise SpecError(f"{path}: layer '{kname}' holds {have}, but node '{name}' needs {need}",
                                net.layers[name].span, hint="compile the .keras file from the same spec and --set values")
            weights.setdefault(name, {}).update(zip(want, got))
    return weights


def _via_keras(net: Network, path: Path) -> dict:
    """Any other file Keras can load into this network (e.g. a keras.applications .h5): load it
    into the Keras model and read the weights back (this path imports TensorFlow)."""
    from ..weights import from_keras
    from .keras import build_model, load_weights_file

    model = build_model(net, inference=False)
    load_weights_file(model, net, path)
    return from_keras(model, net)
