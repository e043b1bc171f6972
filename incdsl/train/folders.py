"""An image folder (one sub-folder per class), scanned and checked before anything heavy starts;
the files `incdsl predict` is handed, checked before Keras loads. PIL only, imported lazily."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import MissingFileError, SpecError
from ..text import ParamText

# Image files that Keras' image_dataset_from_directory reads (tf.io.decode_image's formats).
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def scan_image_folder(path: str | Path, follow_symlinks: bool = False,
                      workers: int | None = None) -> tuple[list[str], list[list[Path]]]:
    """Class names (sorted sub-folder names, as Keras orders them) and each class's image files.

    Nothing outside the folder is read unless `follow_symlinks` (a symbolic link leaving it is
    refused, naming it: incdsl.train.scan). Every file with an image suffix is checked before
    training starts, in `workers` threads (None: every core, at most 16): its header (not an
    image, a decompression bomb) and that it decodes (a format the readers do not take, such as a
    TIFF named .png; a truncated JPEG or PNG). Raises SpecError naming the file or folder.
    """
    root = Path(path)
    if not root.exists():
        raise MissingFileError(f"no such data folder: {root}", root, hint=ParamText(
            "pass an image folder with one sub-folder per class, or {data_synthetic}",
            words={"data_synthetic": 'data="synthetic"'}))
    if not root.is_dir():
        raise SpecError(
            ParamText("{data} {root} is a file; it must be a folder with one sub-folder per class",
                                  root=root))
    from .scan import check_all, check_decodes, class_folders, image_files
    classes = class_folders(root, follow_symlinks)
    if len(classes) < 2:
        found = f"only '{classes[0]}'" if classes else "none"
        raise SpecError(f"{root} must have one sub-folder of images per class, at least two; found {found}")
    from ..inputs import check_image

    files: list[list[Path]] = []
    for name in classes:
        images = image_files(root, root / name, IMAGE_SUFFIXES, follow_symlinks)
        if not images:
            raise SpecError(f"class folder {root / name} has no images ({', '.join(IMAGE_SUFFIXES)})",
                            hint="remove the empty folder or add images to it")
        files.append(images)

    def check(p: Path) -> None:
        check_image(p)  # the header: not an image, or a decompression bomb, is named here
        check_decodes(p)  # the data: found now rather than as a decoder failure halfway through an epoch

    check_all([p for group in files for p in group], check,
              workers if workers is not None else max(1, min(os.cpu_count() or 1, 16)))
    return classes, files


def check_predict_files(model_path: str | Path, images) -> None:
    """What `incdsl predict` can check before Keras loads: the model is a Keras archive, every
    image a readable image of sane size (see incdsl.inputs)."""
    from ..inputs import check_image, check_model_file
    check_model_file(model_path)
    for p in images:
        check_image(p)

