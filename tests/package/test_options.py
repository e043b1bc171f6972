"""The library speaks Python, the command line speaks flags (issue 19 item 6): a library error names
the parameter (`TrainConfig(epochs=0)`: "epochs must be at least 1"), the same error through
`incdsl train ... --epochs 0` names the flag, word for word as before, and every parameter a
library error can name has its flag in the one table (incdsl/cli/commands/flags.py)."""
from __future__ import annotations

import argparse
import ast
import functools
import re
import string
from pathlib import Path

import pytest

from incdsl.cli.commands.flags import FLAGS
from incdsl.cli.main import main
from incdsl.errors import OptionError, UsageError
from incdsl.train import TrainConfig

from nets import PLAIN

PKG = Path(__file__).resolve().parents[2] / "incdsl"


def test_train_config_epochs_0_names_the_parameter():
    with pytest.raises(OptionError) as caught:
        TrainConfig(epochs=0)
    assert str(caught.value) == "epochs must be at least 1"
    assert isinstance(caught.value, UsageError) and caught.value.params == ["epochs"]


@pytest.mark.parametrize("kw, said", [
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"optimizer": "sgdd"}, "optimizer must be one of sgd, rmsprop, adam"),
    ({"weight_decay": -1.0}, "weight_decay must be a finite number, 0 or more, got -1.0"),
    ({"label_smoothing": 1.0}, "label_smoothing must be in [0, 1)"),
])
def test_train_config_other_values_name_their_parameters(kw, said):
    with pytest.raises(OptionError) as caught:
        TrainConfig(**kw)
    assert str(caught.value) == said


def test_cli_epochs_0_still_names_the_flag(tmp_path, capsys):
    spec = tmp_path / "t.inc"
    spec.write_text(PLAIN)
    code = main(["train", str(spec), "--data", "synthetic", "-o", str(tmp_path / "m.keras"), "--epochs", "0"])
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", "incdsl train: error: --epochs must be at least 1\n")
    code = main(["train", str(spec), "--data", "synthetic", "-o", str(tmp_path / "m.keras"), "--batch-size",
                 "0"])
    assert (code, capsys.readouterr().err) == (2, "incdsl train: error: --batch-size must be at least 1\n")
    assert not list(tmp_path.glob("m*"))


def test_backend_options_name_parameters_and_flags(tmp_path, capsys):
    import incdsl
    from incdsl.backends import dot
    from incdsl.backends.onnx import convert as onnx
    net = incdsl.loads(PLAIN)
    with pytest.raises(OptionError, match=r"^layout must be nchw or nhwc, got nhcw$"):
        onnx.export(net, tmp_path / "t.onnx", layout="nhcw")
    with pytest.raises(OptionError, match=r"^depth must be at least 1$"):
        dot.export(net, tmp_path / "t.dot", depth=0)
    with pytest.raises(OptionError, match=r"^only nope: no module call of that name \(module calls: none\)$"):
        dot.export(net, tmp_path / "t.dot", only="nope")
    spec = tmp_path / "t.inc"
    spec.write_text(PLAIN)
    assert main(["compile", str(spec), "--to", "dot", "--depth", "0"]) == 2
    assert capsys.readouterr().err == "incdsl compile: error: --depth must be at least 1\n"
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("*.dot"))


@functools.cache  # read only: each module parsed once for the three tests, not once per error found
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _option_errors():
    """(path, line, parameters) of every OptionError and ParamText with a literal template."""
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(_tree(path)):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("OptionError", "ParamText")
                    and node.args and isinstance(node.args[0], ast.Constant)):
                given = {k.arg for k in node.keywords}
                fields = [f for _, f, _, _ in string.Formatter().parse(node.args[0].value) if f]
                yield path, node.lineno, [f for f in fields if f not in given]


def test_every_parameter_a_library_error_names_has_its_flag():
    found = list(_option_errors())
    assert len(found) >= 25  # TrainConfig's checks, the ONNX, Keras and drawing exports, fit
    missing = [f"{p.relative_to(PKG.parent)}:{line}: {name}" for p, line, names in found for name in names
               if name not in FLAGS]
    assert not missing, "add these parameters to incdsl/cli/commands/flags.py FLAGS:\n" + "\n".join(missing)


def test_library_modules_name_no_flags_in_option_errors():
    for path, line, _ in _option_errors():
        node = next(n for n in ast.walk(_tree(path))
                    if isinstance(n, ast.Call) and getattr(n, "lineno", 0) == line
                    and getattr(n.func, "id", None) in ("OptionError", "ParamText"))
        assert "--" not in node.args[0].value, f"{path.name}:{line} names a flag; use a {{parameter}} field"


def test_report_and_group_counts_check_their_options_in_python_words():
    """Found in review: `report(batch=0)` ran and `report(precision="fp7")` raised a bare KeyError."""
    import incdsl
    from incdsl.errors import ArgumentError, OptionError
    net = incdsl.load("googlenet")
    cases = [(dict(batch=0), "batch must be an int of at least 1, got 0"),
             (dict(precision="fp7"), "precision 'fp7' is not one of float32, mixed_bfloat16"),
             (dict(optimizer="sgdx"), "optimizer 'sgdx' is not one of sgd, momentum")]
    for options, text in cases:
        with pytest.raises(OptionError) as e:
            net.report(**options)
        assert str(e.value).startswith(text) and "--" not in str(e.value)
    with pytest.raises(ArgumentError, match="depth must be None or an int of at least 1"):
        net.group_counts(-3)
    assert net.report(batch=2)["memory"] != net.report(batch=1)["memory"]


FLAG = re.compile(r"(?<![\w-])--[a-z]")  # `--epochs`, not `a--b` or an em dash drawn as `--`


def _message_parts(tree):
    """The expressions a library message or hint is written in: an exception's constructor (any
    `...Error(...)`, `NothingFits(...)`), what a `raise` raises, a `hint=` argument, and a value
    assigned to `hint` or `x.hint`."""
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name.endswith(("Error", "Fits")):
                yield n
            yield from (k.value for k in n.keywords if k.arg == "hint")
        elif isinstance(n, ast.Raise) and n.exc is not None:
            yield n.exc
        elif isinstance(n, ast.Assign) and any(getattr(t, "id", getattr(t, "attr", None)) == "hint"
                                               for t in n.targets):
            yield n.value


def test_library_messages_name_no_flags():
    """Outside the command line (incdsl/cli/main.py, incdsl/cli/commands/) no error message or hint is
    written with a flag: it names the parameter (`OptionError`, `ParamText`) and the command line
    words it with `FLAGS`."""
    found = set()
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("cli/"):
            continue
        for part in _message_parts(_tree(path)):
            found |= {f"{rel}:{c.lineno}: {c.value!r}" for c in ast.walk(part)
                      if isinstance(c, ast.Constant) and isinstance(c.value, str) and FLAG.search(c.value)}
    assert not found, "these messages name flags; name the parameter instead:\n" + "\n".join(sorted(found))


def test_to_onnx_checks_its_options_once_in_python_words(tmp_path):
    """The issue's case `to_onnx(..., opset=3)` and its neighbours: one check (backends/onnx.py
    `export`), OptionError naming the parameter, nothing written."""
    import incdsl
    from incdsl.errors import OptionError
    net = incdsl.loads("network n() {\n  input 8x8x3\n  conv(4, 3) -> gap -> dense(2)\n}\n")
    cases = [(dict(opset=3), "opset 3 is out of range: direct supports opsets 13 to "),
             (dict(opset="18"), "opset must be an int, got '18'"),
             (dict(batch=True), "batch must be None (dynamic) or an int, got True"),
             (dict(batch=0), "batch must be None (dynamic) or an integer from 1 to"),
             (dict(layout="nhcw"), "layout must be nchw or nhwc, got nhcw"),
             (dict(via="x"), "via must be direct or tf2onnx, got x")]
    for options, text in cases:
        with pytest.raises(OptionError) as e:
            net.to_onnx(tmp_path / "m.onnx", verify=False, **options)
        assert str(e.value).startswith(text) and "--" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module, package, extra",
                         [("PIL", "Pillow", "incdsl[jax]"), ("matplotlib", "matplotlib", "incdsl[plot]"),
                                                     ("keras.src.x", "keras", "incdsl[jax]")])
def test_a_missing_optional_package_is_bad_usage_naming_the_extra(monkeypatch, capsys, module, package,
                                                                  extra):
    """A command that reaches an optional package its extra did not install (train or predict after
    `tools/demo`'s incdsl[onnx] alone: Pillow; compare --plot: matplotlib) says what to install,
    exit 2, instead of an internal error; a missing module of incdsl's own stays a bug (exit 3)."""
    from incdsl.cli import main as cli

    def run(args):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)
    assert cli._run(argparse.Namespace(run=run, command="train")) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"incdsl train: error: this needs {package}, which is not installed: pip install '{extra}'"), err

    def bug(args):
        raise ModuleNotFoundError("No module named 'incdsl.nothing'", name="incdsl.nothing")
    assert cli._run(argparse.Namespace(run=bug, command="train")) == 3
    assert "internal error" in capsys.readouterr().err
