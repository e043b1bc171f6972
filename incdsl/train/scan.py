"""The files of an image folder's classes, found without leaving the folder, and each checked to decode.

Symbolic links: by default the scan reads nothing outside the data folder. A class folder, a
folder below it or an image that is a symbolic link resolving outside the data folder is refused,
naming the link and where it points; `follow_symlinks=True` (`--follow-symlinks`) follows such
links (a folder reached twice, as through a link loop, is read once). A link that stays inside the
folder is followed either way; a dangling link is skipped, as before.

Decoding: an image must be in a format both training readers decode (tf.io.decode_image and
Pillow: BMP, GIF, JPEG, PNG; a TIFF saved as `.png` is not one) and its data must be whole. The
check is cheap and runs in threads (Pillow releases the GIL while decoding): a JPEG is decoded in
Pillow's draft mode (libjpeg's DCT scaling to 1/8: every coded byte is still read, so a truncated
file fails, at a fraction of a full decode), a PNG's chunks are read with their CRCs checked
(`Image.verify`, no inflating), GIF and BMP decoded in full (they are small and cheap).
tools/bench_scan.py measures what it costs against the header-only scan.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import SpecError
from ..text import ParamText, first_line

# Pillow's names of what tf.io.decode_image reads (MPO: a JPEG)
DECODABLE = {"BMP", "GIF", "JPEG", "MPO", "PNG"}
FOLLOW = {"follow_symlinks": "follow_symlinks=True"}  # how the library's messages name the parameter


def _refuse_outside(link: Path, root: Path, follow: bool) -> None:
    """A link whose target resolves outside `root` (both resolved) is refused unless `follow`."""
    if follow:
        return
    target = Path(os.path.realpath(link))
    if target != root and root not in target.parents:
        raise SpecError(ParamText("{link} is a symbolic link to {target}, outside the data folder {root}; "
                                  "training reads only what is inside it", link=link, target=target,
                                  root=root),
                        hint=ParamText("copy the files into the folder, or pass {follow_symlinks} to follow "
                                       "links that leave it", words=FOLLOW))


def class_folders(root: Path, follow: bool = False) -> list[str]:
    """The sub-folders of `root` that are classes (sorted names; hidden ones left out), a link to
    a folder outside `root` refused unless `follow`."""
    real = Path(os.path.realpath(root))
    names = []
    for entry in os.scandir(root):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if entry.is_symlink():
            _refuse_outside(Path(entry.path), real, follow)
        names.append(entry.name)
    return sorted(names)


def image_files(root: Path, folder: Path, suffixes: tuple[str, ...], follow: bool = False) -> list[Path]:
    """Every file under `folder` (a class of the data folder `root`) whose suffix is in `suffixes`,
    sorted, as the path under `folder` (links kept as named). A link leaving `root` is refused
    unless `follow`; a folder reached twice is read once."""
    real_root = Path(os.path.realpath(root))
    found, seen, stack = [], set(), [folder]
    while stack:
        d = stack.pop()
        key = os.path.realpath(d)
        if key in seen:
            continue
        seen.add(key)
        try:
            entries = list(os.scandir(d))
        except OSError as e:
            raise SpecError(f"cannot read the folder {d}: {e.strerror or e}") from None
        for entry in entries:
            p = Path(entry.path)
            if entry.is_symlink():
                if not os.path.exists(p):
                    continue  # dangling: nothing to read
                _refuse_outside(p, real_root, follow)
            if entry.is_dir():
                stack.append(p)
            elif entry.is_file() and p.suffix.lower() in suffixes:
                found.append(p)
    return sorted(found)


def check_decodes(path: Path) -> None:
    """Raise SpecError naming `path` unless it is an image both training readers decode, whole
    (see the module's docstring for what is read of each format)."""
    from PIL import Image

    from ..inputs import PIL_LIMIT_LOCK
    try:
        with PIL_LIMIT_LOCK:  # the header (cheap) not while check_image lifts PIL's limit; decoding after
            im = Image.open(path)
        with im:
            fmt = im.format
            if fmt not in DECODABLE:
                raise SpecError(f"{path} is a {fmt} image; training reads BMP, GIF, JPEG and PNG images "
                                f"(whatever the file's name says)", hint="convert the file, or remove it")
            if fmt in ("JPEG", "MPO"):
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
            elif fmt == "PNG":
                im.verify()
            else:
                with PIL_LIMIT_LOCK:  # GIF's frames check PIL's limit as they load
                    im.load()
    except SpecError:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, struct.error... for bad data
        raise SpecError(f"{path} is a damaged image ({first_line(e)})",
                        hint="remove or replace the file") from None


def check_all(paths: list[Path], check_one, workers: int) -> None:
    """Run `check_one(path)` (header checks, then `check_decodes`) over `paths` in `workers` threads;
    the first failure in `paths`' order is raised."""
    if workers <= 1 or len(paths) < 2:
        for p in paths:
            check_one(p)
        return
    from PIL import Image
    Image.init()  # every format plugin, once: Pillow loads them lazily, and threads racing to do it were seen
    # to call a good PNG unidentifiable ("cannot identify image file", Pillow 13, a loaded machine)
    pool = ThreadPoolExecutor(workers)
    try:
        for future in [pool.submit(check_one, p) for p in paths]:
            future.result()  # in order: the first bad file of the folder is the one named
    finally:
        pool.shutdown(cancel_futures=True)  # after a failure, the files not yet checked are not


__all__ = ["DECODABLE", "FOLLOW", "class_folders", "image_files", "check_decodes", "check_all"]
