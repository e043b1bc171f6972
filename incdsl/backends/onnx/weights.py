"""Weights for the ONNX export, in the interchange format (dict[node, dict[key, array]]).

Either the Keras backend's seeded initialisation (`incdsl.weights.arrays.init_weights`, numpy only), or
a `.keras` file compiled from the same spec, read with h5py from the zip's `model.weights.h5`
without importing TensorFlow. Keras 3 stores each layer's variables under a group whose `vars`
carries the layer's name, numbered in the layer's own order (Conv2D: kernel, bias; BatchNorm:
gamma, beta, moving mean, moving variance; ...). Layer names follow the Keras backend's naming
contract (weights.keras_name): node `a/b/conv_1` -> `a-b-conv_1`, its batch norm `a-b-conv_1-bn`.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SpecError, missing_file
from ...text import ARGUMENTS, ParamText, first_line


def expected(net, name: str) -> dict[str, dict[str, tuple]]:
    """The Keras layers one IR node owns, each with its variables in Keras' order and their shapes:
    {keras layer name: {interchange key: shape}}."""
    from ...weights.arrays import BN_KEYS, keras_name, weight_shapes

    own_bn = net.layers[name].op != "bn"  # a conv's batch norm is a layer of its own in Keras
    out: dict[str, dict[str, tuple]] = {}
    for key, shape in weight_shapes(net, name).items():
        layer = keras_name(name, "bn") if own_bn and key in BN_KEYS else keras_name(name)
        out.setdefault(layer, {})[key] = shape
    return out


def load_weights(net, path: str | Path | None, seed: int = 0) -> dict:
    """The weights of `net`'s inference layers: from a file, or the Keras backend's seeded init."""
    if path is None:
        from ...weights.arrays import init_weights
        return init_weights(net, seed=seed, layers=net.inference)  # the export drops training heads
    path = Path(path)
    if not path.is_file():
        raise missing_file("weights file", path, "does not exist")
    from ...untrusted import check_weights_input
    from ...weights.arrays import weights_limit
    from ...weights.torch import is_torch_file, load_torch_weights
    if not (path.suffix == ".keras" and zipfile.is_zipfile(path)):  # read_keras_file checks its own
        check_weights_input(path, weights_limit(net))
    if is_torch_file(path):  # no Keras needed
        return load_torch_weights(net, path)
    if path.suffix == ".keras" and zipfile.is_zipfile(path):
        return read_keras_file(net, path)
    return _via_keras(net, path)


@dataclass(frozen=True)
class Preprocess:
    """What a trained model does to raw pixels before the network: x * scale + offset per channel
    (`incdsl train` saves its models with a Rescaling or Normalization layer named `preprocess`)."""
    kind: str  # the Keras layer class
    scale: np.ndarray  # (channels,) float32
    offset: np.ndarray


def read_preprocess(path: str | Path | None, channels: int) -> Preprocess | None:
    """The `preprocess` layer of a .keras archive, read from its config.json (no Keras)."""
    if path is None or Path(path).suffix != ".keras" or not zipfile.is_zipfile(path):
        return None
    from ...untrusted import JSON_LIMIT, read_member
    with zipfile.ZipFile(path) as z:
        if "config.json" not in z.namelist():
            return None
        try:
            config = json.loads(read_member(z, "config.json", JSON_LIMIT, path))
        except (ValueError, RecursionError):  # not JSON, or nested too deep to decode
            raise SpecError(f"{path}: its config.json is not valid JSON") from None
    try:
        layers = config.get("config", {}).get("layers", [])
        layer = next((l for l in layers if isinstance(l, dict) and l.get("name") == "preprocess"), None)
        c = layer["config"] if layer is not None else None
    except (AttributeError, TypeError, KeyError):
        raise SpecError(f"{path}: its config.json is not a Keras model configuration") from None
    if layer is None:
        return None
    if layer["class_name"] == "Rescaling":
        scale = np.broadcast_to(np.asarray(c["scale"], np.float64), (channels,))
        offset = np.broadcast_to(np.asarray(c["offset"], np.float64), (channels,))
    elif layer["class_name"] == "Normalization" and c.get("mean") is not None and not c.get("invert"):
        # Keras: (x - mean) / max(sqrt(variance), epsilon), epsilon = 1e-7
        scale = 1.0 / np.maximum(np.sqrt(np.broadcast_to(np.asarray(c["variance"], np.float64), (channels,))),
                                 1e-7)
        offset = -np.broadcast_to(np.asarray(c["mean"], np.float64), (channels,)) * scale
    else:
        raise SpecError(f"{path}: its preprocess layer ({layer['class_name']}) has no ONNX translation here")
    return Preprocess(layer["class_name"], scale.astype(np.float32), offset.astype(np.float32))


def read_keras_file(net, path: Path) -> dict:
    """Read a Keras 3 `.keras` archive's weights with h5py alone (no TensorFlow). Raises SpecError
    for an archive or HDF5 file that untrusted.py refuses (a member or datasets beyond 8 bytes per
    parameter plus 16 MiB, external storage, external links, virtual datasets)."""
    import h5py

    from ...untrusted import check_h5, check_zip, read_member
    from ...weights.arrays import weights_limit
    limit = weights_limit(net)
    check_zip(path, limit)  # before anything inflates: a zip bomb is refused from the directory
    with zipfile.ZipFile(path) as z:
        if "model.weights.h5" not in z.namelist():
            raise SpecError(f"{path} is not a Keras 3 model archive (no model.weights.h5 inside)")
        data = read_member(z, "model.weights.h5", limit, path)
    check_h5(data, f"{path} (model.weights.h5)", limit)  # no external files, no inflating datasets
    # layer name -> the variable lists of every layer so named: a trained model's wrapper names
    # its output layers after the heads, the same names as the heads' own (nested) layers
    stored: dict[str, list[list[np.ndarray]]] = {}
    def visit(group_name, obj):
        if isinstance(obj, h5py.Group) and group_name.split("/")[-1] == "vars" and "name" in obj.attrs:
            keys = sorted(obj.keys(), key=int)
            stored.setdefault(str(obj.attrs["name"]), []).append([np.asarray(obj[k]) for k in keys])
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            f.visititems(visit)
    except (OSError, ValueError, KeyError, TypeError) as e:  # h5py: "file signature not found", ...
        raise SpecError(f"{path}: its model.weights.h5 is not a readable HDF5 weights file "
                        f"({first_line(e)[:120]})") from None

    weights: dict[str, dict[str, np.ndarray]] = {}
    for name in net.layers:
        if name not in net.inference:
            continue
        for kname, want in expected(net, name).items():
            if kname not in stored:
                raise SpecError(
                    ParamText("{file} has no layer '{kname}' for node '{name}': was it compiled from this "
                                          "spec with the same {set} values?", words=ARGUMENTS, file=path,
                                          kname=kname, name=name), net.layers[name].span)
            got = next((g for g in stored[kname] if [a.shape for a in g] == list(want.values())), None)
            if got is None:
                have = "; ".join(", ".join(str(a.shape) for a in g) or "nothing" for g in stored[kname])
                need = ", ".join(f"{k} {s}" for k, s in want.items())
                raise SpecError(f"{path}: layer '{kname}' holds {have}, but node '{name}' needs {need}",
                                net.layers[name].span,
                                hint=ParamText("compile the .keras file from the same spec "
                                                                      "and {set} values", words=ARGUMENTS))
            weights.setdefault(name, {}).update(zip(want, got))
    return weights


def _via_keras(net, path: Path) -> dict:
    """Any other file Keras can load into this network (e.g. a keras.applications .h5): load it
    into the Keras model and read the weights back (this path imports TensorFlow)."""
    try:
        from ..keras.build import build_model, load_weights_file
        from ..keras.weights import from_keras
    except ImportError as e:
        raise SpecError(
            f"reading {path} needs Keras ({e.name} is not installed): pip install 'incdsl[keras]'",
                        hint=ParamText(
                            "without Keras, {weights} takes a .keras file compiled by incdsl, or PyTorch "
                                       ".pth/.pt/.safetensors weights")) from None

    model = build_model(net, inference=False)
    load_weights_file(model, net, path)
    return from_keras(model, net)
