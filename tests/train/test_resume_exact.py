"""`--resume` goes on as if the run had not stopped (README, "Start from pretrained weights"), with
dropout and with precise BN too. Before, a resumed run drew its first epoch's dropout masks again
(the layers' random states were not in the backup: incdsl/train/rng_state.py; googlenet_tv: epoch
2's loss 2% off the uninterrupted run's), and precise BN recalibrated on the batches where the
resumed stream began rather than those an uninterrupted run reads (run/data.py's `recalibration`),
so the saved model's statistics differed. Both found by tests/train/test_multiworker_jax.py's
resumed job."""
from __future__ import annotations

import csv
import shutil

import h5py
import numpy as np
import pytest

from incdsl import load
from incdsl.train import TrainConfig, train
from incdsl.train.rng_state import GROUP

from test_train import _Interrupt  # a callback that fails as an epoch begins

pytestmark = pytest.mark.slow  # trains (in this process, a few seconds)

# rate 0.5 on 8 features: each epoch's masks change the gradients a lot
DROPOUT = """network drop(classes=4) {
  input(8, 8, 3)
  conv(8, 3, act=relu) -> gap -> dropout(0.5) -> dense(classes)
}
"""

# batch norm and dropout, for the digits at 16x16
BN_DROPOUT = """network bn_drop(classes=10) {
  defaults conv(bias=false, bn=true, act=relu)
  input(16, 16, 3)
  conv(8, 3, stride=2) -> conv(16, 3) -> gap -> dropout(0.5) -> dense(classes)
}
"""


def _train(spec, out, **kw):
    """A run of the dropout network; its layers' seed generators seeded as --deterministic seeds
    them (keras.utils.set_random_seed), so that two runs in this process draw the same masks."""
    import keras
    keras.utils.set_random_seed(5)
    return train(load(spec), _config(out, **kw))


def _config(out, **kw) -> TrainConfig:
    settings = dict(data="synthetic", epochs=3, steps_per_epoch=3, batch_size=4, seed=5, progress="off",
                    tensorboard=False, bn_recalibrate="off")
    return TrainConfig(output=out, **{**settings, **kw})


def _losses(log) -> list[str]:
    with open(log, newline="") as f:
        return [r["loss"] for r in csv.DictReader(f)]


def _weights(path) -> list[np.ndarray]:
    import keras
    return [np.asarray(w) for w in keras.saving.load_model(path, compile=False).weights]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(the spec, an uninterrupted run's output, the folder of a run stopped as epoch 3 began)."""
    root = tmp_path_factory.mktemp("dropout")
    spec = root / "drop.inc"
    spec.write_text(DROPOUT)
    whole = root / "whole" / "m.keras"
    _train(spec, whole)
    cut = root / "cut"
    with pytest.raises(RuntimeError, match="interrupted for the test"):
        _train(spec, cut / "m.keras", callbacks=[_Interrupt(2)])
    return spec, whole, cut


@pytest.fixture
def cut(runs, tmp_path):
    """A fresh copy of the interrupted run's folder."""
    shutil.copytree(runs[2], tmp_path / "cut")
    return tmp_path / "cut"


def test_a_resumed_run_with_dropout_ends_as_the_uninterrupted_one(runs, cut):
    spec, whole, _ = runs
    with h5py.File(cut / "m.backup" / "latest.weights.h5", "r") as f:
        assert len(f[GROUP]) == 1  # the one dropout layer's seed generator, named by its layer's path
        assert f[GROUP]["0"].attrs["layer"].startswith("drop_train/drop/dropout")  # the training model's
    result = _train(spec, cut / "m.keras", resume=True)  # the seed's masks again, then the backup's state
    assert result.initial_epoch == 2
    assert _losses(cut / "m.log.csv") == _losses(whole.with_suffix(".log.csv"))
    for got, want in zip(_weights(cut / "m.keras"), _weights(whole), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("damage, message", [
    (lambda g: g.copy("0", "1"), "it holds 2 random states and the network has 1"),
    (lambda g: g["0"].attrs.__setitem__("layer", "drop/dense"), "its random state 0 is drop/dense "),
    (lambda g: (g.__delitem__("0"), g.create_group("0")),
     "its random state 0 is not an array, the network's is "),
])
def test_random_states_of_another_network_are_refused(runs, cli, cut, damage, message):
    spec = runs[0]
    with h5py.File(cut / "m.backup" / "latest.weights.h5", "a") as f:
        damage(f[GROUP])
    code, _, err = cli("train", spec, "--data", "synthetic", "--epochs", 3, "--steps-per-epoch", 3,
                       "--batch-size", 4, "--seed", 5, "--progress", "off", "--no-tensorboard",
                       "--bn-recalibrate", "off", "-o", cut / "m.keras", "--resume")
    assert code == 1 and "Traceback" not in err
    assert (f"cannot resume: {cut / 'm.backup' / 'latest.weights.h5'} does not restore the network being "
            f"trained ({message}") in err
    assert not (cut / "m.keras").exists() and (cut / "m.backup").is_dir()


def test_a_backup_without_random_states_resumes_with_a_note(runs, cut, capsys):
    spec = runs[0]
    with h5py.File(cut / "m.backup" / "latest.weights.h5", "a") as f:
        del f[GROUP]  # as an incdsl from before wrote it
    result = train(load(spec), _config(cut / "m.keras", resume=True))
    assert result.initial_epoch == 2 and (cut / "m.keras").exists()
    assert "holds no random state (an earlier incdsl wrote it): the resumed run's dropout draws other " \
           "masks" in capsys.readouterr().err


def test_a_resumed_run_with_precise_bn_ends_as_the_uninterrupted_one(tmp_path):
    # An image folder (each epoch its own batches), precise BN over 2 batches before each
    # validation: stopped as epoch 3 begins and resumed, the log (validation included) and every
    # weight of the saved model (the recalibrated moving statistics included) are the uninterrupted
    # run's. Before, the resumed run recalibrated on the stream's first batches, those of epoch 3.
    import sys
    from pathlib import Path
    tools = str(Path(__file__).resolve().parents[2] / "tools")
    sys.path.insert(0, tools)
    try:
        from digits_folder import write_digits
    finally:
        sys.path.remove(tools)
    spec = tmp_path / "bn_drop.inc"
    spec.write_text(BN_DROPOUT)
    digits, _ = write_digits(tmp_path / "digits", size=16)
    folder = dict(data=str(digits), batch_size=16, val_split=0.1, bn_recalibrate=2)
    whole = tmp_path / "whole" / "m.keras"
    _train(spec, whole, **folder)
    cut = tmp_path / "cut" / "m.keras"
    with pytest.raises(RuntimeError, match="interrupted for the test"):
        _train(spec, cut, callbacks=[_Interrupt(2)], **folder)
    assert _train(spec, cut, resume=True, **folder).initial_epoch == 2

    def log(path):
        keys = ("epoch", "loss", "val_loss", "val_accuracy")
        with open(path.with_suffix(".log.csv"), newline="") as f:
            return [{k: r[k] for k in keys} for r in csv.DictReader(f)]

    assert log(cut) == log(whole)
    for got, want in zip(_weights(cut), _weights(whole), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
