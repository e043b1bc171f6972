"""`incdsl predict`: load a saved model and classify raw images with it."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import keras

from ..errors import SpecError
from ..importers.model_keras import read_spec_meta
from ..text import first_line
from .folders import check_predict_files
from .saving import read_meta


EAGER_UP_TO = 32  # images classified by one eager call rather than model.predict


def load_model(path: str | Path):
    """A saved .keras model and its incdsl metadata (None for a model saved elsewhere)."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"no such model file: {path}")
    if not zipfile.is_zipfile(path):
        raise SpecError(f"{path} is not a Keras model (.keras files are zip archives)")
    from ..untrusted import check_weights_archive
    check_weights_archive(path)  # a zip bomb or external HDF5 storage, before Keras reads
    from .inference_load import load_for_inference
    try:
        model = load_for_inference(path)  # keras.saving.load_model(compile=False), minus drawing initial weights
    except Exception as e:  # Keras raises many kinds for a damaged archive
        raise SpecError(f"cannot load the model {path}: {type(e).__name__}: {first_line(e, '')}") from None
    return model, read_meta(path)


def _main_output(path, outputs: int) -> int:
    """Which of a model's list of outputs is the main head: `incdsl compile` writes the heads in
    output order to incdsl_spec.json, training-only ones marked (a spec may declare an aux head
    first); the first output for a model from elsewhere."""
    heads = (read_spec_meta(Path(path)) or {}).get("heads") or []
    mains = [i for i, h in enumerate(heads) if not h.get("train_only")]
    return mains[0] if len(heads) == outputs and mains else 0


def load_images(paths: list[str], shape) -> np.ndarray:
    """Raw images (float32 pixels 0-255) read and resized as in training, by images.read_image (Pillow,
    bilinear, antialiased when shrinking: what both training readers do)."""
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


def predict(model_path: str, images: list[str], top: int = 5) -> list[list[tuple[str, float]]]:
    """Classify `images` (paths to image files) with the saved Keras model at `model_path`: each
    image is read, resized to the model's input (H, W, C) and scored; returns, per image, the
    `top` (class name, probability) pairs, most likely first. Class names come from the
    model's incdsl metadata (indices as text for a model from elsewhere); outputs that are
    logits get a softmax. A model with several outputs is read at its main head: the one its
    metadata names, the inference head of a model `incdsl compile` wrote with its training-only
    heads, else the first output. Raises `incdsl.errors.SpecError` for a missing or unreadable model
    or image, a model without fixed-size image input, or metadata that names the wrong number
    of classes."""
    check_predict_files(model_path, images)
    model, meta = load_model(model_path)
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or None in shape:
        raise SpecError(f"{model_path} does not take fixed-size images (input {model.input_shape})")
    x = load_images(images, shape)
    # a few images: one eager call; predict() would first trace the model into a graph, which
    # costs more than the images (Keras' own advice for small batches)
    y = model(x, training=False) if len(x) <= EAGER_UP_TO else model.predict(x, verbose=0)
    if isinstance(y, dict):
        y = {k: keras.ops.convert_to_numpy(v) for k, v in y.items()}
    elif isinstance(y, (list, tuple)):
        y = [keras.ops.convert_to_numpy(v) for v in y]
    else:
        y = keras.ops.convert_to_numpy(y)
    if isinstance(y, dict):
        y = y[meta["head"]] if meta and meta.get("head") in y else next(iter(y.values()))
    elif isinstance(y, (list, tuple)):
        y = y[_main_output(model_path, len(y))]
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
