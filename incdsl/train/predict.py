"""`incdsl predict`: load a saved model and classify raw images with it."""
from __future__ import annotations

import zipfile
from pathlib import Path

import keras

from ..errors import DataError, SpecError
from ..inputs import read_spec_meta
from ..text import first_line
from .folders import check_predict_files
from .predict_light import load_images, ranked
from .saving import read_meta

EAGER_UP_TO = 32  # images classified by one eager call rather than model.predict

__all__ = ["load_images", "load_model", "predict"]  # load_images: predict_light's, for callers of this module


def load_model(path: str | Path):
    """A saved .keras model and its incdsl metadata (None for a model saved elsewhere)."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"no such model file: {path}")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not a Keras model (.keras files are zip archives)")
    from .inference_load import load_for_inference
    try:
        # keras.saving.load_model(compile=False), minus drawing initial weights; it refuses a zip
        # bomb or external HDF5 storage before Keras reads
        model = load_for_inference(path)
    except SpecError:
        raise
    except Exception as e:  # Keras raises many kinds for a damaged archive
        raise DataError(f"cannot load the model {path}: {type(e).__name__}: {first_line(e, '')}") from None
    return model, read_meta(path)


def _main_output(path, outputs: int) -> int:
    """Which of a model's list of outputs is the main head: `incdsl compile` writes the heads in
    output order to incdsl_spec.json, training-only ones marked (a spec may declare an aux head
    first); the first output for a model from elsewhere."""
    heads = (read_spec_meta(Path(path)) or {}).get("heads") or []
    mains = [i for i, h in enumerate(heads) if not h.get("train_only")]
    return mains[0] if len(heads) == outputs and mains else 0


def predict(model_path: str, images: list[str], top: int = 5) -> list[list[tuple[str, float]]]:
    """Classify `images` (paths to image files) with the saved Keras model at `model_path`: each
    image is read, resized to the model's input (H, W, C) and scored; returns, per image, the
    `top` (class name, probability) pairs, most likely first. Class names come from the
    model's incdsl metadata (indices as text for a model from elsewhere); outputs that are
    logits get a softmax. A model with several outputs is read at its main head: the one its
    metadata names, the inference head of a model `incdsl compile` wrote with its training-only
    heads, else the first output. Raises `incdsl.errors.DataError` for a file that is not a model
    or does not load, `SpecError` for a missing model, an unreadable image, a model without fixed-size image
    input, or metadata that names the wrong number of classes."""
    check_predict_files(model_path, images)
    model, meta = load_model(model_path)
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or None in shape:
        raise SpecError(f"{model_path} does not take fixed-size images (input {model.input_shape})")
    x = load_images(images, shape)
    # a few images: one eager call; predict() would first trace the model into a graph, which
    # costs more than the images (Keras' own advice for small batches). Not on JAX: there every
    # op called eagerly compiles its own XLA program (Inception v3: ~11 s of CPU), where one
    # compiled program for the whole forward pass costs ~3 s
    if len(x) > EAGER_UP_TO:
        y = model.predict(x, verbose=0)
    elif keras.backend.backend() == "jax":
        y = model.predict_on_batch(x)
    else:
        y = model(x, training=False)
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
    return ranked(y, meta, model_path, top)
