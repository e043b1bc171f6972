"""The Pillow reader's image cache (issue 31 item 4, incdsl/train/image_cache.py): each file decoded
once while the whole folder fits the budget; batches the same bit for bit as decoding every epoch;
a file changed after its first read is not read again (the documented choice); errors of files not
yet read are as before. Everything here runs in this process (numpy, Pillow; the PyDatasets are
backend-agnostic)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from incdsl.errors import DataError, OptionError
from incdsl.train import TrainConfig, scan_image_folder
from incdsl.train.data import FolderBatches, FolderValBatches, folder_data, folder_input
from incdsl.train.image_cache import image_cache
from incdsl.train.images import plan_folder, read_image

from test_train import colour_folder

SHAPE = (20, 20, 3)


@pytest.fixture
def folder(tmp_path) -> Path:
    """3 classes x 5 PNGs of 24-48 px: each resized down to 20x20 when read."""
    return colour_folder(tmp_path / "data", 5, seed=7)


def _plan(folder: Path, augment: bool = True, val_split: float = 0.2):
    return plan_folder(folder, *scan_image_folder(folder), 4, val_split, seed=1, augment=augment)


def test_cached_batches_are_the_decoded_ones_bit_for_bit(folder):
    plan = _plan(folder)
    cache = image_cache(plan, SHAPE, 1)
    assert cache is not None
    cached, decoded = FolderBatches(plan, SHAPE, None, cache=cache), FolderBatches(plan, SHAPE, None)
    # three epochs (the first fills the cache, the others read it), flips included
    assert plan.epoch(0)[1].any()
    for k in range(3 * plan.steps):
        (xa, ya), (xb, yb) = cached[k], decoded[k]
        assert xa.dtype == xb.dtype == np.uint8 and xa.shape == xb.shape == (4, *SHAPE)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    val_c, val_d = FolderValBatches(plan, SHAPE, None, 4, False, cache=cache), FolderValBatches(plan, SHAPE,
                                                                                                None,
                                                                                             4, False)
    assert len(val_c) == len(val_d) == 1
    assert np.array_equal(val_c[0][0], val_d[0][0])
    assert cache.ready.all()  # every file read: train and validation share one cache


def test_the_memory_budget_is_respected(folder, monkeypatch):
    plan = _plan(folder)
    need = len(plan.paths) * int(np.prod(SHAPE))  # 15 files x 20 x 20 x 3 bytes = 18,000
    fits = image_cache(plan, SHAPE, need / 2**20)
    assert fits is not None and fits.nbytes == need
    assert image_cache(plan, SHAPE, (need - 1) / 2**20) is None  # one byte short: decode every epoch
    assert image_cache(plan, SHAPE, 0) is None
    # folder_input on the Pillow reader (the JAX and PyTorch backends) follows TrainConfig.image_cache_mb
    import keras
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    scanned = scan_image_folder(folder)
    for budget, cached in ((1024, True), (need / 2**20 * 0.99, False), (0, False)):
        config = TrainConfig(data=str(folder), batch_size=4, val_split=0.2, image_cache_mb=budget, workers=1)
        train, val, _, described, _ = folder_input(scanned, config, SHAPE, None, 1, 0)
        assert (train.cache is not None) == cached and val.cache is train.cache
        assert ("decoded once" in described) == cached
    with pytest.raises(OptionError, match=r"^image_cache_mb must be 0 \(off\) or more \(MiB\), got -1"):
        TrainConfig(image_cache_mb=-1)


def test_the_cli_flag_names_itself(tmp_path, capsys):
    from incdsl.cli.main import main

    from nets import TINY_INCEPTION
    spec = tmp_path / "tiny.inc"
    spec.write_text(TINY_INCEPTION)
    code = main(["train", str(spec), "--data", "synthetic", "-o", str(tmp_path / "m.keras"), "--image-cache",
                 "-5"])
    err = capsys.readouterr().err
    assert (
        code == 2 and "--image-cache must be 0 (off) or more (MiB), got -5" in err and "Traceback" not in err
    )
    assert not (tmp_path / "m.keras").exists()


def test_a_file_changed_after_its_first_read_is_not_read_again(folder, tmp_path):
    from PIL import Image
    plan = _plan(folder, augment=False)  # 12 training images, 3 batches of 4: all of them every epoch
    cache = image_cache(plan, SHAPE, 1)
    reader = FolderBatches(plan, SHAPE, None, cache=cache)
    first = [reader[k][0] for k in range(plan.steps)]  # epoch 0: every training image read once
    idx = plan.train_batch(0)[0]
    changed = Path(plan.paths[idx[0]])
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(changed)  # black now
    assert read_image(changed, SHAPE[:2], 3).max() == 0
    # epoch 1 holds the same images in another order: the changed one still as first read
    again = {int(i): x for k in range(plan.steps, 2 * plan.steps)
             for i, x in zip(plan.train_batch(k)[0], reader[k][0])}
    assert np.array_equal(again[int(idx[0])], first[0][0]) and first[0][0].max() > 0
    # the folder gone after the first epoch: cached images are served, nothing raises
    folder.rename(tmp_path / "gone")
    assert np.array_equal(reader[plan.steps][0],
                          np.stack([again[int(i)] for i in plan.train_batch(plan.steps)[0]]))


def test_files_not_yet_read_raise_as_without_the_cache(folder, tmp_path):
    plan = _plan(folder, val_split=0.0)
    reader = FolderBatches(plan, SHAPE, None, cache=image_cache(plan, SHAPE, 1))
    broken = Path(plan.paths[plan.train_batch(0)[0][0]])
    broken.write_bytes(broken.read_bytes()[:-200])
    with pytest.raises(DataError, match=f"{broken} is a damaged image"):
        reader[0]
    assert not reader.cache.ready[plan.train_batch(0)[0][0]]  # nothing half-kept for the damaged file
    folder.rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match=f"the data folder {folder} vanished during training"):
        reader[1]


def test_folder_data_shares_one_cache(folder):
    plan = _plan(folder)
    cache = image_cache(plan, SHAPE, 1)
    train, val, _ = folder_data(plan, SHAPE, None, 0, 1, 1, "pillow", cache)
    assert train.cache is cache and val.cache is cache


JAX_CACHE_RUN = r"""
import json, sys
from pathlib import Path
from incdsl import load
from incdsl.train import TrainConfig, train
spec, data, out = sys.argv[1:4]
losses = {}
for budget in (1024, 0):
    cfg = TrainConfig(output=Path(out) / f"c{budget}.keras", data=data, epochs=2, batch_size=4, val_split=0.2,
                      progress="off", tensorboard=False, seed=3, workers=2, image_cache_mb=budget,
                      bn_recalibrate="off")
    r = train(load(spec), cfg)
    losses[budget] = r.history["loss"] + r.history["val_loss"]
print("RESULT " + json.dumps(losses))
"""


@pytest.mark.slow
def test_a_jax_run_trains_the_same_with_and_without_the_cache(folder, tmp_path):
    # The whole run on JAX (a subprocess: the backend is chosen once per process): 2 epochs with the
    # cache (epoch 2 and both validations after the first read memory) and without (every epoch
    # decodes), the same losses bit for bit.
    import json
    import os
    import subprocess
    import sys

    from nets import TINY_INCEPTION
    root = Path(__file__).resolve().parents[2]
    spec = tmp_path / "tiny.inc"
    spec.write_text(TINY_INCEPTION)
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-c", JAX_CACHE_RUN, str(spec), str(folder), str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("each image decoded once and kept") == 1  # the run with the cache says so
    losses = json.loads(next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    assert len(losses["1024"]) == 4 and losses["1024"] == losses["0"]
