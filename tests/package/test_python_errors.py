"""Issue 28 item 5: Python that speaks Python. A missing file (weights, spec, data folder) raises
`FileNotFoundError` (incdsl's `MissingFileError`, which is also a `SpecError`, so the command line
prints it as before); TensorFlow's native start-up lines do not reach stderr from `to_keras()`."""
import os
import subprocess
import sys

import pytest

import incdsl
from incdsl.cli.main import main
from incdsl.errors import MissingFileError, SpecError

from conftest import ROOT

TINY = """network tiny(classes=3) {
  input 32x32x3
  conv(8, 3, stride=2) -> gap -> dense(classes)
}
"""


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "tiny.inc").write_text(TINY)
    return incdsl.load(str(tmp_path / "tiny.inc"))


def test_missing_file_error_is_both():
    assert issubclass(MissingFileError, FileNotFoundError) and issubclass(MissingFileError, SpecError)


def test_missing_spec(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        incdsl.load(str(tmp_path / "nope.inc"))
    assert e.value.filename == str(tmp_path / "nope.inc") and "no such file" in str(e.value)


def test_missing_used_file(tmp_path):
    (tmp_path / "n.inc").write_text('use "lib/none.inc"\n' + TINY)
    with pytest.raises(FileNotFoundError):
        incdsl.load(str(tmp_path / "n.inc"))


def test_missing_weights_file_to_keras(tiny, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        tiny.to_keras(weights=str(tmp_path / "missing.weights.h5"))
    assert "weights file" in str(e.value) and e.value.filename.endswith("missing.weights.h5")


def test_missing_weights_file_to_onnx_and_exports(tiny, tmp_path):
    from incdsl.backends.keras import export as keras_export
    with pytest.raises(FileNotFoundError):
        tiny.to_onnx(str(tmp_path / "t.onnx"), weights=str(tmp_path / "missing.keras"), verify=False)
    with pytest.raises(FileNotFoundError):
        keras_export.export(tiny, str(tmp_path / "t.keras"), weights=str(tmp_path / "missing.keras"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.inc"]


def test_missing_data_folder(tiny, tmp_path):
    from incdsl.train import TrainConfig, train
    with pytest.raises(FileNotFoundError) as e:
        train(tiny, TrainConfig(str(tmp_path / "m.keras"), data=str(tmp_path / "photos")))
    assert "no such data folder" in str(e.value)


def test_the_cli_prints_them_as_before(tmp_path, capsys):
    (tmp_path / "tiny.inc").write_text(TINY)
    assert main(["check", str(tmp_path / "nope.inc")]) == 1
    assert f"error: no such file: {tmp_path / 'nope.inc'}" in capsys.readouterr().err
    assert main(["compile", str(tmp_path / "tiny.inc"), "--to", "onnx", "--no-verify", "--weights",
                 str(tmp_path / "w.keras"), "-o", str(tmp_path / "t.onnx")]) == 1
    err = capsys.readouterr().err
    assert f"error: no such weights file: {tmp_path / 'w.keras'}" in err, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_tensorflow_start_up_lines_stay_off_stderr_from_python(tmp_path):
    """A fresh process (TensorFlow not yet imported), TF_CPP_MIN_LOG_LEVEL unset: `import incdsl`
    then `to_keras()` prints nothing on stderr; with INCDSL_VERBOSE=1 the lines come through, so
    the check can fail."""
    code = ("import sys, incdsl\n"
            "net = incdsl.load('googlenet', width=0.25, size=96, aux=False)\n"
            "model = net.to_keras()\n"
            "print('ours', file=sys.stderr)\n"
            "print(model.count_params() == net.count_params())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "INCDSL_VERBOSE")}
    env.update(PYTHONPATH=str(ROOT), KERAS_BACKEND="tensorflow")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert done.stderr == "ours\n"
    env["INCDSL_VERBOSE"] = "1"
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert loud.returncode == 0 and "ours\n" in loud.stderr
    assert any(marker in loud.stderr for marker in ("absl::InitializeLog", "cpu_feature_guard",
                                                    "rebuild TensorFlow"))
