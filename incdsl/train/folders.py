"""An image folder (one sub-folder per class), scanned and checked before anything heavy starts;
the files `incdsl predict` is handed, checked before Keras loads. PIL only, imported lazily."""
from __future__ import annotations

from pathlib import Path

from ..errors import MissingFileError, SpecError
from ..text import ParamText

# Image files that Keras' image_dataset_from_directory reads (tf.io.decode_image's formats).
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def scan_image_folder(path: str | Path) -> tuple[list[str], list[list[Path]]]:
    """Class names (sorted sub-folder names, as Keras orders them) and each class's image files.

    Every file with an image suffix is opened (header only, fast) so that a file that is not an
    image is reported by name here rather than as a decoder failure halfway through an epoch.
    """
    root = Path(path)
    if not root.exists():
        raise MissingFileError(f"no such data folder: {root}", root, hint=ParamText(
            "pass an image folder with one sub-folder per class, or {data_synthetic}",
            words={"data_synthetic": 'data="synthetic"'}))
    if not root.is_dir():
        raise SpecError(ParamText("{data} {root} is a file; it must be a folder with one sub-folder per class",
                                  root=root))
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = f"only '{classes[0]}'" if classes else "none"
        raise SpecError(f"{root} must have one sub-folder of images per class, at least two; found {found}")
    from ..inputs import check_image

    files: list[list[Path]] = []
    for name in classes:
        images = sorted(p for p in (root / name).rglob("*")
                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise SpecError(f"class folder {root / name} has no images ({', '.join(IMAGE_SUFFIXES)})",
                            hint="remove the empty folder or add images to it")
        for p in images:
            check_image(p)  # the header only: not an image, or a decompression bomb, is named here
        files.append(images)
    return classes, files


def check_predict_files(model_path: str | Path, images) -> None:
    """What `incdsl predict` can check before Keras loads: the model is a Keras archive, every
    image a readable image of sane size (see incdsl.inputs)."""
    from ..inputs import check_image, check_model_file
    check_model_file(model_path)
    for p in images:
        check_image(p)

