"""Library messages name parameters, the command line names flags (issue 19 item 6), message by
message: the Python call's text names the parameter (`opset 6 is out of range`), the same error
through `incdsl` names the flag, word for word as the command line said it before
(`--opset 6 is out of range`). SpecErrors and hints carry a `ParamText` that `cli_error` words;
UsageErrors are `OptionError`s that `cli_text` words; both with the one table, `FLAGS`."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import incdsl
from incdsl.cli.commands.flags import cli_error, cli_text
from incdsl.errors import DataError, OptionError, SpecError
from incdsl.text import ParamText

from nets import PLAIN


def test_param_text_reads_as_python_and_words_as_flags():
    t = ParamText("use a lower {lr} (this run: {now:g}), e.g. {lr} {lower:g}", now=0.1, lower=0.01)
    assert (t, t.params) == ("use a lower lr (this run: 0.1), e.g. lr 0.01", ["lr", "lr"])
    assert t.worded({"lr": "--lr"}) == "use a lower --lr (this run: 0.1), e.g. --lr 0.01"
    assert ParamText("pass {resume}", words={"resume": "resume=True"}) == "pass resume=True"
    braces = ParamText("{data} {root} is a file", root="{odd}")  # a value is never read as a template
    assert (braces, braces.worded({"data": "--data"})) == ("data {odd} is a file", "--data {odd} is a file")
    plain = SpecError("no flags here", hint="none either")
    assert cli_error(plain) is plain


def test_opset_out_of_range(tmp_path, plain_spec, cli):
    from incdsl.backends.onnx.convert import MIN_OPSET, export, max_opset
    with pytest.raises(OptionError) as e:
        export(incdsl.loads(PLAIN), tmp_path / "t.onnx", opset=MIN_OPSET - 1, verify=False)
    said = f"{MIN_OPSET - 1} is out of range: direct supports opsets {MIN_OPSET} to {max_opset()} here"
    assert str(e.value) == f"opset {said}"
    assert cli("compile", plain_spec, "--to", "onnx", "--opset", MIN_OPSET - 1).code_err == (
        2, f"incdsl compile: error: --opset {said}\n")
    assert not list(tmp_path.glob("*.onnx"))


def test_strategy_not_available():
    from incdsl.train.placement import check_strategy
    with pytest.raises(OptionError) as e:
        check_strategy("multiworker", "torch")
    said = (" multiworker is not available on the torch backend (KERAS_BACKEND=torch); it runs on "
            "tensorflow or jax")
    assert (str(e.value), cli_text(e.value)) == ("strategy" + said, "--strategy" + said)


def test_bn_recalibrate_needs_batches(tmp_path, plain_spec, cli):
    from incdsl.train import TrainConfig, check_recalibration
    config = TrainConfig(output=tmp_path / "m.keras", data="synthetic", steps_per_epoch=2, bn_recalibrate=5)
    with pytest.raises(SpecError) as e:
        check_recalibration(config, None)
    b = config.batch_size
    assert e.value.render(
        ) == (f"error: bn_recalibrate 5 needs 5 training batches of {b}, and synthetic data gives 2\n"
                                "hint: bn_recalibrate 2 or less, a smaller batch_size, or more images")
    code, err = cli("train", plain_spec, "--data", "synthetic", "--steps-per-epoch", 2, "--bn-recalibrate", 5,
                    "-o", tmp_path / "m.keras").code_err
    assert (code, err) == (
        1,
        f"error: --bn-recalibrate 5 needs 5 training batches of {b}, and synthetic data gives 2\n"
        "hint: --bn-recalibrate 2 or less, a smaller --batch-size, or more images\n",
    )
    assert not list(tmp_path.glob("m*"))


def test_data_folder_that_is_missing_or_a_file(tmp_path, plain_spec, cli):
    from incdsl.train import scan_image_folder
    with pytest.raises(SpecError) as e:
        scan_image_folder(tmp_path / "nope")
    assert e.value.hint == "pass an image folder with one sub-folder per class, or data=\"synthetic\""
    assert cli_error(
        e.value).hint == "pass an image folder with one sub-folder per class, or --data synthetic"
    with pytest.raises(SpecError) as e:
        scan_image_folder(plain_spec)
    assert (
        e.value.message == f"data {plain_spec} is a file; it must be a folder with one sub-folder per class"
    )
    assert cli("train", plain_spec, "--data", plain_spec, "-o", tmp_path / "m.keras").code_err == (
        1, f"error: --data {plain_spec} is a file; it must be a folder with one sub-folder per class\n")


def test_fit_growing_into_an_error_hints_at_the_upper_bound(tmp_path, cli):
    from incdsl.analysis.fitting import fit
    p = tmp_path / "k.inc"
    p.write_text("network t(k=1) {\n  input 8x8x3\n  conv(4, k) -> gap -> dense(2, act=softmax)\n}\n")
    with pytest.raises(SpecError) as e:
        fit(incdsl.Spec(p), "k", "params", 10 ** 9)
    assert e.value.hint == "searching upwards for the budget's edge; bound it with high"
    code, err = cli("fit", p, "--vary", "k", "--params", "1G").code_err
    assert code == 1 and err.endswith(
        "\nhint: searching upwards for the budget's edge; bound it with --max\n"), err
    assert err.split("\n")[:-2] == e.value.render().split("\n")[:-1]  # all but the hint as before


def test_weights_file_of_no_known_kind(tmp_path):
    from incdsl.inputs import check_weights_file
    bad = tmp_path / "w.bin"
    bad.write_text("not weights")
    with pytest.raises(SpecError) as e:
        check_weights_file(bad)
    tail = (
        " takes a .keras archive, a .weights.h5 file, a keras.applications .h5 file or a PyTorch state_dict "
            "(.pth, .pt, .safetensors)")
    assert (e.value.hint, cli_error(e.value).hint) == ("weights" + tail, "--weights" + tail)


def test_interrupted_run_and_diverged_run_name_resume_and_lr(tmp_path):
    from incdsl.train import RunPaths, TrainConfig
    from incdsl.train.callbacks import Diverged
    from incdsl.train.loop import _start_epoch
    from incdsl.train.run.failures import diverged_error
    config = TrainConfig(output=tmp_path / "m.keras", data="synthetic", lr=0.1)
    paths = RunPaths.beside(config.output)
    paths.backup.mkdir()
    with pytest.raises(OptionError) as e:
        _start_epoch(paths, config)
    said = (f"an interrupted run left its state in {paths.backup}: pass {{}} to continue it, or delete that "
            "folder to start afresh")
    assert (str(e.value), cli_text(e.value)) == (said.format("resume=True"), said.format("--resume"))
    paths.best.write_text("")
    e = diverged_error(Diverged(7, 1, 3, math.nan), config, paths)
    said = (f"training diverged: the loss is nan at step 7 (epoch 1, batch 3); {config.output} was not "
            f"written; the "
            f"last finished epoch is kept in {paths.backup} ({{}} continues from it); the best model so far "
            f"is "
            f"{paths.best}")
    assert (e.message, e.hint) == (said.format("resume=True"), "use a lower lr (this run: 0.1), e.g. lr 0.01")
    shown = cli_error(e)
    assert (shown.message, shown.hint) == (said.format("--resume"),
                                           "use a lower --lr (this run: 0.1), e.g. --lr 0.01")


def _image_folder(root, per_class=2):
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / c / f"{i}.png")
    return root


def test_batches_that_do_not_split_over_replicas_and_vanished_images(tmp_path):
    from incdsl.train import scan_image_folder
    from incdsl.train.data import FolderBatches, folder_data
    from incdsl.train.images import plan_folder
    folder = _image_folder(tmp_path / "data")
    plan = plan_folder(folder, *scan_image_folder(folder), 3, 0.0, seed=0)
    with pytest.raises(SpecError) as e:
        folder_data(plan, (8, 8, 3), None, 0, replicas=2, workers=1, reader="pillow")
    assert (e.value.hint, cli_error(e.value).hint) == ("use a batch_size that is a multiple of 2",
                                                       "use a --batch-size that is a multiple of 2")
    reader = FolderBatches(plan, (8, 8, 3), None)
    folder.rename(tmp_path / "elsewhere")
    with pytest.raises(DataError) as e:
        reader[0]
    said = "keep the folder in place until the run ends; then rerun with {}"
    assert (e.value.hint, cli_error(e.value).hint) == (said.format("resume=True"), said.format("--resume"))


def test_tf_config_names_the_strategy(tmp_path, plain_spec, cli, monkeypatch):
    from incdsl.train import read_tf_config
    with pytest.raises(OptionError) as e:
        read_tf_config('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker"}}')
    said = ("TF_CONFIG (the cluster for {0} multiworker) names parameter servers ('ps'); {0} multiworker is "
            "all-reduce between a chief and workers")
    assert (str(e.value), cli_text(e.value)) == (said.format("strategy"), said.format("--strategy"))
    with pytest.raises(OptionError,
                       match=r"^TF_CONFIG \(the cluster for strategy multiworker\): task type must be "
                                          r"'chief' or 'worker', got \{\"a\": 1\}$"):
        read_tf_config('{"cluster": {"worker": ["h:1"]}, "task": {"type": {"a": 1}}}')  # braces in a value
    monkeypatch.setenv("TF_CONFIG",
                       '{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker"}}')
    assert cli("train", plain_spec, "--data", "synthetic", "-o", tmp_path / "m.keras", "--strategy",
               "multiworker").code_err == (2, f"incdsl train: error: {said.format('--strategy')}\n")


def test_several_networks_name_the_network_parameter(tmp_path, cli):
    two = PLAIN + PLAIN.replace("network t()", "network u()")
    with pytest.raises(OptionError) as e:
        incdsl.loads(two)
    assert str(e.value) == "<string> defines several networks (t, u); pick one with network=NAME"
    p = tmp_path / "two.inc"
    p.write_text(two)
    assert cli("check", p).code_err == (2,
                                        f"incdsl check: error: {p} defines several networks (t, u); pick one "
                                          "with --network\n")


def test_tensorboard_folder_in_the_way_names_the_output(tmp_path, plain_spec, cli):
    from incdsl.train import RunPaths
    paths = RunPaths.beside(tmp_path / "m.keras")
    paths.tensorboard.write_text("mine")
    said = (f"cannot write TensorBoard logs to {paths.tensorboard}: it is not a folder; move it, or pick "
            "another {} (the logs go beside the model)")
    with pytest.raises(OptionError) as e:
        paths.check_tensorboard()
    assert str(e.value) == said.format("output")
    assert cli("train", plain_spec, "--data", "synthetic", "-o", tmp_path / "m.keras").code_err == (
        2, f"incdsl train: error: {said.format('-o')}\n")
    assert paths.tensorboard.read_text() == "mine"


def test_classes_hint_names_set(tmp_path):
    from incdsl.train import check_classes
    net = incdsl.loads(
        "network t(classes=2) {\n  input 8x8x3\n  conv(4, 3) -> gap -> dense(classes, act=softmax)\n}\n")
    with pytest.raises(SpecError) as e:
        check_classes(net, ["a", "b", "c"], "the data")
    assert (e.value.hint, cli_error(e.value).hint) == ("build the network with classes=3", "--set classes=3")


def test_target_note_names_backends_as_python_calls_them(plain_spec, cli):
    from incdsl.backends.targets import target_notes
    net = incdsl.loads("network t() {\n  input 33x33x3\n  conv(32, 3, dilation=2, stride=2)\n}\n")
    said = ("conv 'conv_1' has stride 2 with dilation 2, which Keras' layers refuse: {} and {} compute it at "
            "stride 1 and keep one row in 2 and one column in 2 (4x this layer's MACs, the same outputs); {} "
            "(direct) builds it as it is")
    [note] = target_notes(net)
    assert note.message == said.format("backends.keras.export", 'backends.onnx.export(via="tf2onnx")',
                                       "backends.onnx.export")
    plain_spec.write_text("network t() {\n  input 33x33x3\n  conv(32, 3, dilation=2, stride=2)\n}\n")
    assert cli("check", plain_spec).code_err == (0, f"{plain_spec}:3:3: note: "
                                             + said.format("--to keras", "--to onnx --via tf2onnx",
                                                           "--to onnx") + "\n")


def test_weights_without_keras_hint_names_the_weights_parameter(tmp_path, monkeypatch):
    import sys

    from incdsl.backends.onnx.weights import _via_keras
    # as on a machine without incdsl[keras]
    monkeypatch.setitem(sys.modules, "incdsl.backends.keras.build", None)
    with pytest.raises(SpecError) as e:
        _via_keras(incdsl.loads(PLAIN), tmp_path / "w.h5")
    tail = " takes a .keras file compiled by incdsl, or PyTorch .pth/.pt/.safetensors weights"
    assert (e.value.hint, cli_error(e.value).hint) == ("without Keras, weights" + tail,
                                                       "without Keras, --weights" + tail)
