"""Users' files other than specs (weights, models, images): checked before any heavy library
loads, and when refused, the message says what the file is and why.

Light on purpose: no Keras, TensorFlow or h5py; PIL only when an image is checked.
"""
from __future__ import annotations

import json
import os
import stat
import threading
import warnings
import zipfile
from pathlib import Path

from .errors import MissingFileError, SpecError, shorten
from .text import ParamText, first_line
from .untrusted import JSON_LIMIT, read_member

# Held while check_image lifts PIL's process-wide MAX_IMAGE_PIXELS, and by a thread that opens an
# image meanwhile (train/scan.py's threads): Image.open reads the limit twice (`is None`, then
# `2 * MAX_IMAGE_PIXELS`), and lifted in between it raises a TypeError, which Image.open reports as
# "cannot identify image file" (a good PNG called damaged, seen on a loaded machine, Pillow 13).
PIL_LIMIT_LOCK = threading.Lock()

SPEC_ENTRY = "incdsl_spec.json"  # what `incdsl compile --to keras` adds to the .keras zip

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAGIC = (  # the start of common files, to name what a refused file is
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"), (b"PK\x03\x04", "a zip archive"), (b"PK\x05\x06", "an empty zip archive"),
    (HDF5_MAGIC, "an HDF5 file"), (b"%PDF", "a PDF document"), (b"\x7fELF", "an executable"),
    (b"\x1f\x8b", "a gzip file"), (b"RIFF", "a RIFF (WebP/WAV) file"),
)


def describe(path: str | Path) -> str:
    """What `path` is, in words: 'missing', 'a directory', 'a device node', 'a PNG image', ..."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return "missing" if not p.is_symlink() else f"a symbolic link to {os.readlink(p)}, which is missing"
    except OSError as e:
        return "a symbolic link that loops" if e.errno == 40 else f"unreadable ({e.strerror or e})"
    if stat.S_ISDIR(st.st_mode):
        return "a directory"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "a device node"
    if stat.S_ISFIFO(st.st_mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(st.st_mode):
        return "a socket"
    if st.st_size == 0:
        return "an empty file"
    try:
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    try:
        text = head.decode("utf-8")
        if not any(c < " " and c not in "\t\n\r\f" for c in text):
            return "a text file"
    except UnicodeDecodeError:
        pass
    return f"a file of {st.st_size:,} bytes in no format incdsl knows"


def regular_file(path: str | Path, role: str) -> Path:
    """`path` if it is a readable regular file (through symlinks), else a SpecError naming what it is."""
    p = Path(path)
    what = describe(p)
    if what == "missing":
        raise MissingFileError(f"no such {role}: {shorten(str(p), 200)}", p)
    try:
        ok = p.is_file() and os.access(p, os.R_OK)
    except OSError:
        ok = False
    if not ok:
        raise SpecError(f"{role} {shorten(str(p), 200)} is {what}, not a readable regular file")
    return p


def check_weights_file(path: str | Path) -> Path:
    """A `--weights` file: a .keras zip archive with a readable config.json, an HDF5 file
    (.weights.h5, or a keras.applications .h5), or a PyTorch file (.pth, .pt, .safetensors, whose
    contents incdsl/weights/torch.py checks). Anything else is refused by what it is."""
    p = regular_file(path, "weights file")
    what = describe(p)
    takes = ParamText("{weights} takes a .keras archive, a .weights.h5 file, a keras.applications .h5 file "
                      "or a PyTorch state_dict (.pth, .pt, .safetensors)")
    if p.suffix in (".pth", ".pt", ".safetensors"):  # incdsl/weights/torch.py reads and checks these
        return p
    if p.suffix == ".keras":
        if what != "a zip archive":
            raise SpecError(
                f"weights file {p} is {what}, not a Keras archive (.keras files are zip archives)",
                            hint=takes)
        _check_keras_zip(p)
    elif p.suffix == ".h5":
        if what != "an HDF5 file":
            raise SpecError(f"weights file {p} is {what}, not an HDF5 file", hint=takes)
        from .untrusted import check_h5
        check_h5(str(p), str(p))  # external datasets and links, virtual datasets
    else:
        raise SpecError(f"weights file {p} is {what}, not a weights file", hint=takes)
    return p


MAX_CONFIG_BYTES = 64 * 1024 * 1024  # a .keras file's config.json, inflated


def _check_keras_zip(p: Path) -> None:
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            if "config.json" not in names:
                raise SpecError(f"{p} is a zip archive but not a Keras model: it has no config.json")
            from .untrusted import check_weights_archive
            check_weights_archive(p)  # every member's size, and model.weights.h5's external storage
            # a zip bomb is refused from its directory, before anything inflates (a Keras config is
            # kilobytes; Inception-ResNet-v2's is about 1 MB)
            size = z.getinfo("config.json").file_size
            if size > MAX_CONFIG_BYTES:
                raise SpecError(
                    f"{p} is not a usable Keras model: its config.json would inflate to {size:,} bytes "
                                f"(the limit is {MAX_CONFIG_BYTES:,})")
            config = json.loads(z.read("config.json"))
            if not isinstance(config, dict):
                raise SpecError(f"{p} is not a usable Keras model: its config.json is not a JSON object")
    except SpecError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError,
            NotImplementedError) as e:
        raise SpecError(f"{p} is a damaged zip archive ({shorten(str(e), 120)})") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        raise SpecError(f"{p} is not a usable Keras model: its config.json is not valid JSON "
                        f"({shorten(str(e), 120)})") from None


def check_model_file(path: str | Path) -> Path:
    """A model for `incdsl predict`: a .keras zip archive with a readable config.json."""
    p = regular_file(path, "model file")
    what = describe(p)
    if what != "a zip archive":
        raise SpecError(f"model file {p} is not a Keras model: it is {what} (.keras files are zip archives)")
    _check_keras_zip(p)
    return p


def image_limit() -> int:
    """Pixels an image may have: PIL's decompression-bomb limit (Image.MAX_IMAGE_PIXELS, 89.5 M)."""
    from PIL import Image
    return Image.MAX_IMAGE_PIXELS or 1 << 62


def check_image(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header; a SpecError for anything that is not a
    readable image or has more pixels than `image_limit()` (decoding it could take gigabytes)."""
    from PIL import Image, UnidentifiedImageError

    p = regular_file(path, "image")
    with PIL_LIMIT_LOCK:  # the limit is PIL's, for every thread: no other may open an image meanwhile
        # read under the lock: another thread's check_image may have lifted it (None) this moment, and
        # a bomb read past it then was called "damaged" by the decode check (CI, stop 35)
        limit = image_limit()
        pil_limit = Image.MAX_IMAGE_PIXELS
        try:
            # PIL refuses a bomb in open() itself, before saying its size: read the header without
            # PIL's check, then apply the same limit here with the size in the message
            Image.MAX_IMAGE_PIXELS = None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(p) as im:
                    w, h = im.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise SpecError(f"image {p} is not a readable image: it is {describe(p)} "
                            f"({shorten(first_line(e), 120)})",
                            hint="remove or replace the file") from None
        finally:
            Image.MAX_IMAGE_PIXELS = pil_limit
    if w * h > limit:
        raise SpecError(f"image {p} is {w:,}x{h:,} pixels ({w * h:,}); images are limited to {limit:,} "
                        f"pixels (PIL's decompression-bomb limit)", hint="shrink the image first")
    return w, h


def read_spec_meta(path: Path) -> dict | None:
    """The network name, parameters and heads a compiled .keras file carries (None elsewhere)."""
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(read_member(z, SPEC_ENTRY, JSON_LIMIT,
                                          path)) if SPEC_ENTRY in z.namelist() else None
    except (zipfile.BadZipFile, OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep
        return None
