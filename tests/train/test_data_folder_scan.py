"""Issue 24 items 6 and 11: the scan of `--data` reads nothing outside the folder unless told to,
and an image that does not decode is named before training starts. No Keras: the scan runs first."""
from __future__ import annotations

import io

import numpy as np
import pytest

from incdsl.errors import SpecError
from incdsl.train import scan_image_folder

from fake_images import png_header

SPEC = "network t(classes=2) {\n  input 8x8x3\n  conv(4, 3) -> gap -> dense(classes)\n}\n"


def _png(path, seed=0):
    from PIL import Image
    img = np.random.default_rng(seed).integers(0, 255, size=(12, 12, 3)).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """data/a, data/b with two PNGs each, outside/ with more images, s.inc (2 classes)."""
    monkeypatch.chdir(tmp_path)
    for cls in ("a", "b"):
        for i in range(2):
            _png(tmp_path / "data" / cls / f"{i}.png", seed=i)
    for i in range(3):
        _png(tmp_path / "outside" / "imgs" / f"{i}.png", seed=10 + i)
    (tmp_path / "s.inc").write_text(SPEC)
    return tmp_path


# --- item 6: symbolic links that leave the data folder -------------------------------------------

def test_a_class_folder_linked_outside_is_refused(folders, cli):
    """The issue's case (training read 4,959 images from /usr/share): a class folder that is a
    link to a folder outside the data folder is not followed by default."""
    (folders / "data" / "c").symlink_to(folders / "outside" / "imgs")
    code, text = cli("train", "s.inc", "--data", "data", "--set", "classes=3", "-o", "m.keras").code_output
    assert code == 1
    assert f"data/c is a symbolic link to {folders / 'outside' / 'imgs'}, outside the data folder" in text
    assert "--follow-symlinks" in text and "training t (" not in text and not (folders / "m.keras").exists()
    with pytest.raises(SpecError, match="pass follow_symlinks=True"):  # the library names its parameter
        scan_image_folder(folders / "data")


def test_an_image_linked_outside_is_refused(folders, cli):
    (folders / "data" / "b" / "x.png").symlink_to(folders / "outside" / "imgs" / "0.png")
    (folders / "data" / "b" / "deep").symlink_to(folders / "outside")  # a folder below a class too
    code, text = cli("train", "s.inc", "--data", "data", "-o", "m.keras").code_output
    assert code == 1 and "outside the data folder" in text and "data/b/" in text
    (folders / "data" / "b" / "deep").unlink()
    with pytest.raises(SpecError, match=r"data/b/x\.png is a symbolic link to .*outside/imgs/0\.png"):
        scan_image_folder("data")


def test_follow_symlinks_follows_them(folders, cli):
    (folders / "data" / "c").symlink_to(folders / "outside" / "imgs")
    (folders / "data" / "b" / "x.png").symlink_to(folders / "outside" / "imgs" / "0.png")
    (folders / "outside" / "imgs" / "loop").symlink_to(folders / "outside")  # read once, not forever
    classes, files = scan_image_folder("data", follow_symlinks=True)
    assert classes == ["a", "b", "c"]
    assert [len(f) for f in files] == [2, 3, 3]  # c: imgs once, though the loop leads back to it
    # the flag reaches the scan: with it, the run gets past the scan to the class count check
    code, text = cli("train", "s.inc", "--data", "data", "--follow-symlinks", "-o", "m.keras").code_output
    assert code == 1 and "outside the data folder" not in text and "3" in text and "class" in text


def test_links_inside_the_folder_are_followed(folders):
    (folders / "data" / "b" / "again.png").symlink_to(folders / "data" / "a" / "0.png")
    (folders / "data" / "b" / "sub").symlink_to(folders / "data" / "a")
    classes, files = scan_image_folder("data")
    assert classes == ["a", "b"] and len(files[1]) == 2 + 1 + 2


# --- item 11: an image that passes the header check but does not decode -------------------------

def _tiff_named_png(path):
    from PIL import Image
    Image.fromarray(np.zeros((12, 12, 3), "uint8")).save(path, format="TIFF")


def _truncated_jpeg(path):
    from PIL import Image
    buf = io.BytesIO()
    img = np.random.default_rng(0).integers(0, 255, size=(64, 64, 3)).astype("uint8")
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


@pytest.mark.parametrize("name, make, says", [("x.png", _tiff_named_png, "is a TIFF image"),
                                              ("y.jpg", _truncated_jpeg, "is a damaged image")])
def test_an_image_that_does_not_decode_is_named_before_training(folders, cli, name, make, says):
    """The issue's files: a TIFF saved as .png, a truncated JPEG. Both pass the header check
    (incdsl.inputs.check_image); the scan finds them, naming the file, and nothing trains."""
    from incdsl.inputs import check_image
    bad = folders / "data" / "b" / name
    make(bad)
    check_image(bad)  # the header alone does not tell
    code, text = cli("train", "s.inc", "--data", "data", "-o", "m.keras").code_output
    assert code == 1 and f"data/b/{name} {says}" in text
    assert "training t (" not in text and not (folders / "m.keras").exists()


def test_a_truncated_png_is_found_too(folders):
    good = folders / "data" / "a" / "1.png"
    good.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(SpecError, match=r"data/a/1\.png is a damaged image"):
        scan_image_folder("data", workers=2)


def test_opening_an_image_waits_while_the_header_check_lifts_pils_limit(folders):
    # check_image lifts PIL's process-wide pixel limit for a moment; a scan thread that opened an image
    # then hit Pillow's `2 * None` (a TypeError it reports as "cannot identify image file"): a good PNG
    # of the digits called damaged. check_decodes opens under the same lock.
    import threading

    from incdsl.inputs import PIL_LIMIT_LOCK
    from incdsl.train.scan import check_decodes

    done = threading.Event()
    with PIL_LIMIT_LOCK:
        t = threading.Thread(target=lambda: (check_decodes(folders / "data" / "a" / "0.png"), done.set()))
        t.start()
        assert not done.wait(0.5)
    t.join(10)
    assert done.is_set()


def test_the_header_check_reads_pils_limit_only_while_it_holds_the_lock(folders):
    # The CI failure of stop 35: a scan thread read the limit (image_limit) while another thread's
    # check_image had lifted it to None, so a 20,000x20,000 PNG passed the header check and was then
    # called "damaged" by Pillow's bomb check in check_decodes, instead of named with its size.
    import threading

    from PIL import Image

    from incdsl.inputs import PIL_LIMIT_LOCK, check_image

    big = folders / "big.png"
    big.write_bytes(png_header(20000, 20000))
    raised: list[BaseException] = []

    def header_check():
        try:
            check_image(big)
        except SpecError as e:
            raised.append(e)

    with PIL_LIMIT_LOCK:  # what another thread's check_image does for a moment
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        t = threading.Thread(target=header_check)
        t.start()
        t.join(0.5)  # time for the thread to reach the lock (and, before the fix, read the lifted limit)
        Image.MAX_IMAGE_PIXELS = saved
    t.join(10)
    assert not t.is_alive()
    assert len(raised) == 1 and "is 20,000x20,000 pixels (400,000,000)" in str(raised[0])


def test_check_image_reads_the_limit_while_holding_the_lock(folders, monkeypatch):
    # The same fault as above without timing: image_limit() must be called with the lock held.
    from incdsl import inputs

    held = []
    real = inputs.image_limit
    monkeypatch.setattr(inputs, "image_limit", lambda: held.append(inputs.PIL_LIMIT_LOCK.locked()) or real())
    assert inputs.check_image(folders / "data" / "a" / "0.png") == (12, 12)
    assert held == [True]
