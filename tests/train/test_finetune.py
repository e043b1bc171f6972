"""Issue 13, item 2: fine-tuning. `incdsl train --weights W --freeze NAME|backbone` keeps the frozen
layers bit-identical (batch norms in inference mode, as Keras runs trainable=False ones) while the
new head learns; `--unfreeze-after N` trains everything after N epochs at a lower rate."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import incdsl
from incdsl.backends.keras.build import build_model
from incdsl.backends.keras.weights import from_keras
from incdsl.errors import UsageError
from incdsl.train import TrainConfig, train
from incdsl.train.finetune import backbone, frozen_nodes

from test_train import _Interrupt  # a callback that fails as an epoch begins

TINY = """network tiny(classes=10) {
  defaults conv(bias=false, bn=true, act=relu)
  input(16, 16, 3)
  stem = conv(8, 3, stride=2)
  block = concat {
    conv(8, 1)
    conv(8, 3)
  }
  output fc = flatten -> dense(classes)        # 1024 features: 32 synthetic images are separable
}
"""


@pytest.fixture
def pretrained(spec_file, tmp_path):
    """A 10-class model with random weights and batch-norm statistics, saved as .keras."""
    path = spec_file(TINY)
    net10 = incdsl.load(path)
    model = build_model(net10, seed=3)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if hasattr(layer, "moving_mean"):
            layer.moving_mean.assign(rng.normal(0, 0.3, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape).astype("float32"))
    out = tmp_path / "pre.keras"
    model.save(out)
    return path, out, from_keras(model, net10)


def _final_weights(net, result):
    import keras
    return from_keras(keras.models.load_model(result.output, compile=False), net)


def _run(net, tmp_path, pre, **kw):
    config = TrainConfig(output=tmp_path / "ft.keras", data=kw.pop("data", "synthetic"),
                         epochs=kw.pop("epochs", 3),
                         batch_size=8,
                         steps_per_epoch=4, optimizer="adam", lr=kw.pop("lr", 0.01), tensorboard=False,
                         progress="off",
                         weights=str(pre), **kw)
    return train(net, config)


def test_backbone_is_everything_but_the_heads(spec_file):
    net = incdsl.load("specs/googlenet_tv.inc")
    bb = backbone(net)
    assert "inception5b/concat_1" in bb and "fc" not in bb and not any(n.startswith("aux") for n in bb)
    assert frozen_nodes(net,
                        "inception4a") == {n for n in net.layers if n.startswith(("conv", "maxpool1",
                                                                                  "maxpool2",
                                                "inception3", "maxpool3", "inception4a", "input"))}
    with pytest.raises(UsageError, match="no layer or module call"):
        frozen_nodes(net, "inception9z")


@pytest.mark.slow
def test_frozen_backbone_stays_bit_identical_while_the_new_head_learns(pretrained, tmp_path):
    spec, pre, before = pretrained
    net = incdsl.load(spec, classes=3)  # a new head: 3 classes where the file has 10
    result = _run(net, tmp_path, pre, freeze="backbone", epochs=4, lr=0.01)
    after = _final_weights(net, result)
    # kernels, gamma, beta and batch-norm statistics
    for node in ("stem", "block/b1/conv_1", "block/b2/conv_1"):
        for key, arr in before[node].items():
            np.testing.assert_array_equal(after[node][key], arr, err_msg=f"{node} {key}")
    assert after["fc"]["kernel"].shape == (1024, 3)
    losses = result.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses  # the head learns (the synthetic batches repeat)


@pytest.mark.slow
def test_unfreeze_after_trains_everything_at_a_lower_rate(pretrained, tmp_path):
    spec, pre, before = pretrained
    net = incdsl.load(spec, classes=3)
    result = _run(net, tmp_path, pre, freeze="block", unfreeze_after=1, epochs=2)
    after = _final_weights(net, result)
    assert not np.array_equal(after["stem"]["kernel"], before["stem"]["kernel"])  # trained in phase 2
    assert not np.array_equal(after["stem"]["moving_mean"], before["stem"]["moving_mean"])
    with open(tmp_path / "ft.log.csv") as f:
        rates = [float(r["lr"]) for r in csv.DictReader(f)]
    assert rates == pytest.approx([0.01, 0.001]), rates


class _OptimizerState:
    """Records the optimizer's variables (by name) when a fit ends and when the next one begins."""

    def __new__(cls):
        import keras

        class Record(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.ends, self.begins = [], []

            def _state(self):
                return {
                    v.name: np.array(keras.ops.convert_to_numpy(v)) for v in self.model.optimizer.variables}

            def on_train_begin(self, logs=None):
                self.begins.append(self._state())

            def on_train_end(self, logs=None):
                self.ends.append(self._state())

        return Record()


@pytest.mark.slow
def test_unfreezing_keeps_the_step_count_schedule_and_momentum(pretrained, tmp_path):
    spec, pre, _ = pretrained
    net = incdsl.load(spec, classes=3)
    record = _OptimizerState()
    _run(net, tmp_path, pre, freeze="block", unfreeze_after=1, epochs=3, callbacks=[record])
    with open(tmp_path / "ft.log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(float(r["step"])) for r in rows] == [4, 8, 12]  # the step column goes on (was 4, 4, 8)
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.01, 0.001, 0.001])
    (end1, _), (_, begin2) = record.ends, record.begins
    assert int(begin2["iteration"]) == int(end1["iteration"]) == 4
    head = [k for k in end1 if k in ("fc_kernel_momentum", "fc_kernel_velocity")]
    assert len(head) == 2, list(end1)  # Adam's two moving averages of the head's kernel
    for k in head:
        assert np.abs(end1[k]).sum() > 0
        np.testing.assert_array_equal(begin2[k], end1[k])  # carried over, not restarted
    fresh = [k for k in begin2 if k not in end1 and k != "learning_rate"]
    assert fresh and all(not np.any(begin2[k]) for k in fresh)  # the newly trainable start at zero


@pytest.mark.slow
def test_every_phase_prints_its_epoch_headers(pretrained, tmp_path, capsys):
    from incdsl.cli.main import main
    spec, pre, _ = pretrained
    code = main([str(a) for a in ("train", spec, "--set", "classes=3", "--data", "synthetic", "--epochs", 3,
                                  "--batch-size", 8, "--steps-per-epoch", 4, "--weights", pre, "--freeze",
                                  "block",
                                  "--unfreeze-after", 1, "--progress", "epoch", "--no-tensorboard",
                                  "-o", tmp_path / "m.keras")])
    out = capsys.readouterr().out
    assert code == 0
    assert [ln for ln in out.splitlines() if ln.startswith("Epoch ")] == ["Epoch 1/3", "Epoch 2/3",
                                                                          "Epoch 3/3"]
    with open(tmp_path / "m.log.csv") as f:
        assert [int(float(r["step"])) for r in csv.DictReader(f)] == [4, 8, 12]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [1, 2, 3])
def test_a_run_stopped_in_either_phase_resumes_as_if_it_had_not_stopped(pretrained, tmp_path, stop):
    # --unfreeze-after 2 of 4 epochs, stopped as epoch `stop` begins: in the first phase (1), as the
    # second begins (2: the backup holds the first phase's optimizer) and inside it (3). Before, the
    # first phase's end deleted the backup (a stop in the second phase kept nothing, and the log was
    # removed as if no epoch had finished), and a run resumed in the first phase trained its epoch
    # `stop` twice (the restored start epoch outlived the first fit).
    spec, pre, _ = pretrained
    net = incdsl.load(spec, classes=3)
    phases = dict(freeze="block", unfreeze_after=2, epochs=4)
    whole = _run(net, tmp_path / "whole", pre, **phases)
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError, match="interrupted for the test"):
        _run(net, cut, pre, callbacks=[_Interrupt(stop)], **phases)
    assert (cut / "ft.backup").is_dir() and not (cut / "ft.keras").exists()
    with open(cut / "ft.log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(stop))
    resumed = _run(net, cut, pre, resume=True, **phases)
    assert resumed.initial_epoch == stop and resumed.epochs_run == 4 - stop
    assert not (cut / "ft.backup").exists()
    with open(cut / "ft.log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert [int(float(r["step"])) for r in rows] == [4, 8, 12, 16]
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    got, want = _final_weights(net, resumed), _final_weights(net, whole)
    assert got.keys() == want.keys()
    for node in want:
        assert got[node].keys() == want[node].keys()
        for key in want[node]:
            np.testing.assert_allclose(got[node][key], want[node][key], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{node} {key}")


@pytest.mark.slow
def test_the_second_phase_reads_on_where_the_first_stopped(pretrained, tmp_path):
    # An image folder (synthetic batches are the same every epoch): each fit starts a stream at its
    # item 0, so the second phase read the first phase's batches again (epochs 3-4 trained on epochs
    # 1-2's order and flips), and a run resumed in the second phase, which starts at its epoch's
    # batch, could never equal an uninterrupted one (the reviewer: weights 0.007-0.03 apart).
    # Stopped as epoch 3 begins and resumed, the run ends with the uninterrupted run's weights, the
    # statistics precise BN recalibrates before each validation included (the same batches in both
    # runs: run/data.py's `recalibration`).
    import sys
    tools = str(Path(__file__).resolve().parents[2] / "tools")
    sys.path.insert(0, tools)
    try:
        from digits_folder import write_digits
    finally:
        sys.path.remove(tools)
    spec, pre, _ = pretrained
    train_dir, _ = write_digits(tmp_path / "digits", size=16)
    net = incdsl.load(spec, classes=10)
    phases = dict(freeze="block", unfreeze_after=2, epochs=4, data=str(train_dir), seed=1)  # precise BN on
    whole = _run(net, tmp_path / "whole", pre, **phases)
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError, match="interrupted for the test"):
        _run(net, cut, pre, callbacks=[_Interrupt(3)], **phases)
    resumed = _run(net, cut, pre, resume=True, **phases)
    assert resumed.initial_epoch == 3
    with open(tmp_path / "whole" / "ft.log.csv") as f, open(cut / "ft.log.csv") as g:
        assert [r["loss"] for r in csv.DictReader(f)] == [r["loss"] for r in csv.DictReader(g)]
    got, want = _final_weights(net, resumed), _final_weights(net, whole)
    for node in want:
        for key in want[node]:
            np.testing.assert_allclose(got[node][key], want[node][key], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{node} {key}")
