"""What a user gets from the package and the `incdsl` program: the shipped reference library (in a
wheel installed into an empty virtual environment, used from another folder) and commands whose
stderr holds only incdsl's own lines."""
from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import ROOT
from nets import PLAIN_LOGITS


def _run(argv, cwd, env=None):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_three_commands_print_only_our_lines(tmp_path):
    (tmp_path / "t.inc").write_text(PLAIN_LOGITS)
    exe = str(Path(sys.executable).with_name("incdsl"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "INCDSL_"))}
    for argv, wrote in ((["check", "t.inc"], None),
                        (["compile", "t.inc", "--to", "keras", "-o", "t.keras"], "t.keras"),
                        (["compile", "t.inc", "--to", "onnx", "-o", "t.onnx"], "t.onnx")):
        done = _run([exe, *argv], tmp_path, env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", f"incdsl {' '.join(argv)} printed on stderr:\n{done.stderr}"
        if wrote:
            assert (tmp_path / wrote).is_file() and f"wrote {wrote}" in done.stdout
    # --verbose lets TensorFlow's own start-up lines through (proof the filter is what hides them)
    loud = _run([exe, "--verbose", "compile", "t.inc", "--to", "keras", "-o", "u.keras"], tmp_path, env)
    assert loud.returncode == 0 and "absl::InitializeLog" in loud.stderr
    # errors still get through the filter, whole and in order
    bad = _run([exe, "check", "missing.inc"], tmp_path, env)
    assert bad.returncode == 1 and bad.stderr.startswith(
        "error: no such file: missing.inc\nhint: `incdsl list`")


@pytest.mark.slow
def test_wheel_ships_the_reference_library(tmp_path):
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                  "-w", str(wheels), str(ROOT)], tmp_path)
    assert built.returncode == 0, built.stderr
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    wheel = next(wheels.glob("incdsl-*.whl"))
    # lark, networkx from the index
    inst = _run([str(py), "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    assert inst.returncode == 0, inst.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exe = str(env_dir / "bin" / "incdsl")

    out = _run([exe, "summary", "inception_v3", "--json"], elsewhere)
    assert out.returncode == 0, out.stderr
    assert '"total": 23851784' in out.stdout  # keras.applications InceptionV3's count_params()
    for name, params in (("v1", "6,998,552"), ("v3", "23,851,784"), ("v4", "42,742,984"),
                         ("irv2", "55,873,736")):
        done = _run([exe, "check", name], elsewhere)
        assert done.returncode == 0 and f"{params} params" in done.stdout, (name, done.stdout, done.stderr)
    listed = _run([exe, "list"], elsewhere)
    assert listed.returncode == 0
    assert all(n in listed.stdout for n in ("googlenet", "inception_v3", "inception_resnet_v2", "xception"))
    assert "keras.applications `InceptionV3`" in listed.stdout

    (elsewhere / "mine.inc").write_text(
        'use "lib/inception_v3.inc"\nnetwork mine() {\n  input 35x35x192\n  v3_a(32)\n  gap -> dense(10)\n}\n'
    )
    mine = _run([exe, "check", "mine.inc"], elsewhere)
    assert mine.returncode == 0, mine.stderr
    api = _run([str(py), "-c", "import incdsl; print(incdsl.load('inception_v3').count_params())"], elsewhere)
    assert api.returncode == 0 and api.stdout.strip() == "23851784", api.stderr
    # the installed package, not this checkout, answered
    where = _run([str(py), "-c", "import incdsl; print(incdsl.__file__)"], elsewhere)
    assert str(env_dir) in where.stdout


def test_short_names_resolve_in_a_checkout(capsys):
    from incdsl.cli.main import main

    assert main(["check", str(ROOT / "specs" / "v3.inc")]) == 0
    assert "network inception_v3" in capsys.readouterr().out
    assert main(["check", "irv2"]) == 0
    assert "network inception_resnet_v2" in capsys.readouterr().out
    assert main(["check", str(ROOT / "nowhere" / "v3.inc")]) == 1  # only the library's own folder
    assert "no such file" in capsys.readouterr().err
