"""`incdsl predict` without Keras, for the models incdsl wrote itself.

A .keras file from `incdsl train` or `incdsl compile --to keras` records the text of its spec and
its arguments (analysis/rebuild.py). From it the network is rebuilt, its weights read from the
archive with h5py (backends/onnx/weights.read_keras_file, the reader `compile --to onnx --weights`
uses) and the images run through incdsl's numpy reference (backends/numpy_ref.py) in float32, as
the saved Keras model computes, after the model's own `preprocess` layer (Rescaling or
Normalization, read from config.json). Importing Keras and its backend costs 2.5-5 s of CPU; this
path needs about one second for Inception v3 on two images, and gives Keras' probabilities to
float32 rounding (tests/train/test_predict_light.py compares them on several specs).

Any model this path cannot vouch for goes to Keras (`predict_light` returns None): a file from
elsewhere, a record whose rebuilt network differs from the one saved, weights that do not fit it,
a preprocess layer it does not know, an op the numpy reference lacks.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..analysis.rebuild import KEY, rebuild
from ..errors import SpecError
from ..inputs import check_image, describe, read_spec_meta, regular_file
from ..text import first_line
from .saving import read_meta


def load_images(paths: list[str], shape) -> np.ndarray:
    """Raw images (float32 pixels 0-255, (N, H, W, C)) read and resized to `shape` (H, W, C) as in
    training, by images.read_image (Pillow, bilinear, antialiased when shrinking: what both
    training readers do). Raises SpecError for a missing or unreadable image, or C not 1, 3 or 4."""
    from PIL import Image, UnidentifiedImageError

    from .images import read_image

    h, w, c = shape
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(c)
    if mode is None:
        raise SpecError(f"the model's input has {c} channels; images give 1, 3 or 4")
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise SpecError(f"no such image: {p}")
        try:
            with Image.open(path) as im:
                im.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise SpecError(f"{p} is not a readable image ({first_line(e)})") from None
        out.append(read_image(path, (h, w), c).astype("float32"))
    return np.stack(out)


def ranked(y, meta: dict | None, model_path, top: int) -> list[list[tuple[str, float]]]:
    """Per image, the `top` (class name, probability) pairs of the scores `y` (N, classes), most
    likely first: a softmax first when they are logits (the metadata says, else scores that are
    not non-negative and summing to 1 are taken for logits); class names from the metadata,
    indices as text without. Raises SpecError when the metadata names another number of classes."""
    y = np.asarray(y, dtype="float64")
    logits = meta.get("logits") if meta else None
    if logits is None:  # a model from elsewhere: probabilities are non-negative and sum to 1
        logits = not (np.all(y >= 0) and np.allclose(y.sum(-1), 1.0, atol=1e-3))
    if logits:
        y = np.exp(y - y.max(-1, keepdims=True))
        y /= y.sum(-1, keepdims=True)
    names = list(meta["classes"]) if meta and meta.get("classes") else [str(i) for i in range(y.shape[-1])]
    if len(names) != y.shape[-1]:
        raise SpecError(f"{model_path} scores {y.shape[-1]} classes but its metadata names {len(names)}")
    out = []
    for row in y:
        order = np.argsort(-row, kind="stable")[:top]
        out.append([(names[i], float(row[i])) for i in order])
    return out


def scores(model_path, x: np.ndarray | None = None, images: list[str] | None = None):
    """(scores of the main head (N, classes) float32, the incdsl.json metadata or None) of the
    model at `model_path` on raw images `x` (N, H, W, C, pixels 0-255) or read from `images`,
    computed without Keras; None when the model is not one this path can run (module docstring).
    The images are checked first (inputs.check_image: SpecError for an unreadable or huge one), then
    the model: a SpecError for a missing or unreadable file; one that is not a zip archive goes to
    the Keras path (folders.check_predict_files says what it is); its weights are read as
    `compile --to onnx --weights` reads them, after untrusted.py's checks of the archive and
    its HDF5 file, sized for the rebuilt network (SpecError for what they refuse)."""
    for p in images or []:
        check_image(p)
    path = regular_file(model_path, "model file")
    if describe(path) != "a zip archive":
        return None
    meta = read_meta(path)
    rec = (meta or {}).get(KEY) or (read_spec_meta(path) or {}).get(KEY)
    net = rebuild(rec) if rec else None
    if net is None:
        return None
    from ..backends.numpy_ref import Unsupported, run
    from ..backends.onnx.weights import read_keras_file, read_preprocess
    try:
        pre = read_preprocess(path, net.input_shape[-1])
    except SpecError:
        return None  # a preprocess layer this path does not know, a config.json Keras names the fault of
    weights = read_keras_file(net, path)  # untrusted.py's refusals are SpecErrors for the user
    heads = [h for h in net.heads if not h.train_only]
    want = (meta or {}).get("head")
    at = next((i for i, h in enumerate(heads) if h.name == want), 0)
    if x is None:
        x = load_images(images or [], net.input_shape)
    x = np.asarray(x, np.float32)
    if pre is not None:
        x = x * pre.scale + pre.offset
    try:
        with _one_blas_thread():
            return run(net, weights, x, np.float32)[at], meta
    except Unsupported:
        return None


def predict_light(model_path, images: list[str], top: int = 5) -> list[list[tuple[str, float]]] | None:
    """`train.predict.predict` without Keras for a model incdsl wrote (see the module docstring):
    per image, the `top` (class name, probability) pairs; None when the model needs Keras. Raises
    SpecError as `scores` does, and as `ranked` does for metadata naming other classes."""
    got = scores(model_path, images=images)
    if got is None:
        return None
    y, meta = got
    return ranked(y, meta, model_path, top)


def _one_blas_thread():
    """One BLAS thread where threadpoolctl is installed (incdsl[onnx]): OpenBLAS's idle threads
    spin, which on a busy machine costs more CPU time than the whole run."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
