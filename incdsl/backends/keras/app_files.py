"""What a keras.applications weights file holds, read with h5py, to explain a file that does not
fit (which application it looks like, the first layer whose shapes differ) and to load a file that
holds the classifier into a headless network (with a note that the classifier was not used).

Two layouts: keras.applications' legacy `.h5` (root attribute `layer_names`, one group per layer
with attribute `weight_names`; Keras loads its weighted layers by position, so positions are
compared here too), and Keras 3's `.weights.h5` (`layers/<snake_case class name>/vars/0..`, where a
Dense layer is `layers/dense`: none of the three applications has one without its top).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ...errors import SpecError
from ...text import ParamText

# a layer name that only one application's file holds -> (our spec, keras.applications class)
_SIGNATURES = (("block14_sepconv2", "xception", "Xception"),
               ("conv_7b", "inception_resnet_v2", "InceptionResNetV2"),
               ("mixed10", "inception_v3", "InceptionV3"))
CLASSIFIER = "predictions"  # keras.applications' name for the top's Dense layer


def legacy_layers(path) -> tuple[list[str], list[tuple[str, list[tuple[str, tuple]]]]] | None:
    """(every layer name, [(layer name, [(weight name, shape)])] for the weighted layers in file
    order) of a legacy Keras `.h5` weights file, or None for another layout."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            g = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in g.attrs:
                return None
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs["layer_names"]]
            weighted = []
            for n in names:
                wn = [w.decode() if isinstance(w, bytes) else str(w) for w in g[n].attrs.get("weight_names",
                                                                                             [])]
                if wn:
                    weighted.append((n, [(w.split("/")[-1], tuple(g[n][w].shape)) for w in wn]))
            return names, weighted
    except (OSError, KeyError):
        return None


def keras3_classifier_shape(path) -> tuple | None:
    """The kernel shape of the Dense layer in a Keras 3 `.weights.h5` file, None if it has none."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return tuple(f["layers/dense/vars/0"].shape) if "layers/dense/vars/0" in f else None
    except OSError:
        return None


def guess_application(names) -> tuple[str, str] | None:
    """(our spec, keras.applications class) that a file's layer names belong to, if any."""
    names = set(names)
    return next(((spec, app) for key, spec, app in _SIGNATURES if key in names), None)


def _shapes(weights) -> str:
    return ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in weights)


def explain_mismatch(net, ref, app: str, path) -> SpecError | None:
    """A one-screen error for a legacy `.h5` file that keras.applications' loader refused: the
    application it belongs to when not `net`'s, else the first weighted layer (by position, as
    Keras loads) whose name or shapes differ, expected vs found. None for another layout."""
    read = legacy_layers(path)
    if read is None:
        return None
    names, theirs = read
    ours = [(layer.name, [(w.path.split("/")[-1], tuple(w.shape)) for w in layer.weights])
            for layer in ref.layers if layer.weights]
    guess = guess_application(names)
    if guess is not None and guess[0] != net.name:
        return SpecError(
            f"{path} looks like keras.applications.{guess[1]} weights (spec {guess[0]}: "
            f"{len(theirs)} weighted layers, layer '{next(k for k, s, _ in _SIGNATURES if s == guess[0])}'), "
            f"not keras.applications.{app}'s, which network {net.name} reproduces "
            f"({len(ours)} weighted layers)",
            hint=f"compile specs/{guess[0]}.inc with it, or pass the {app} weights file",
        )
    for i, (mine, file) in enumerate(zip(ours, theirs), 1):
        if [s for _, s in mine[1]] != [s for _, s in file[1]]:
            hint = None
            if mine[0] == CLASSIFIER and file[0] == CLASSIFIER:
                hint = ParamText("the file's classifier has {n} classes: {set} classes={n}",
                                 n=file[1][-1][1][-1])
            return SpecError(
                f"{path} does not fit network {net.name}: weighted layer #{i} '{mine[0]}' expects "
                             f"{_shapes(mine[1])}; the file's #{i} '{file[0]}' has {_shapes(file[1])}",
                             hint=hint)
    if len(ours) != len(theirs):
        extra = theirs[len(ours)] if len(theirs) > len(ours) else None
        what = (f"one more, '{extra[0]}' ({_shapes(extra[1])})" if extra and len(theirs) == len(ours) + 1
                else f"{len(theirs)}")
        return SpecError(f"{path} does not fit network {net.name}: it expects {len(ours)} weighted layers "
                         f"(keras.applications.{app}); the file has {what}",
                         hint="were the weights saved with another top, classes or pooling?")
    return None


def load_without_classifier(ref, path) -> int:
    """Load a legacy `.h5` file that holds `ref`'s layers plus the classifier `predictions` into
    the headless `ref`, position by position; the classifier's class count if done, else 0."""
    import h5py
    read = legacy_layers(path)
    if read is None:
        return 0
    _names, theirs = read
    ours = [layer for layer in ref.layers if layer.weights]
    if len(theirs) != len(ours) + 1 or theirs[-1][0] != CLASSIFIER:
        return 0
    if any([tuple(w.shape) for w in layer.weights] != [s for _, s in file[1]] for layer, file in zip(ours,
                                                                                                     theirs)):
        return 0
    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        for layer, (name, _) in zip(ours, theirs):
            wn = [w.decode() if isinstance(w, bytes) else str(w) for w in g[name].attrs["weight_names"]]
            layer.set_weights([g[name][w][()] for w in wn])
    return theirs[-1][1][-1][1][-1]  # the classifier's class count (true: done)


def note_classifier_unused(path, classes: int | None = None) -> None:
    """The note for a file whose classifier a headless (top=false) network has no layer for."""
    of = f", {classes} classes" if classes else ""
    print(f"{Path(path)}: note: the file's classifier weights (layer '{CLASSIFIER}'{of}) were not used: "
          f"the network has top=false", file=sys.stderr)
