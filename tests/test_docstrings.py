"""Every public module, class, function and method in the listed files has a docstring of a few
words (issue 16 item 2): `help(incdsl)` and the pdoc reference (tools/api_docs.py) read them.

The check is `ast`-based, so it imports nothing (no TensorFlow, no torch) and runs in well under a
second. Public means the name does not start with `_`; a name nested inside a function is not
public. The list of files grows as each part of the package is documented.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "incdsl"

# Files (or folders, meaning every .py in them) whose public names must be documented.
DOCUMENTED = [
    "graph.py", "errors.py", "io.py", "inputs.py", "guard.py", "literals.py", "grammar_cache.py",
    "weights.py", "initializers.py", "targets.py", "library.py", "quiet.py",
    "passes/__init__.py", "passes/count.py", "passes/min_input.py", "passes/outputs.py",
    "passes/receptive_field.py", "passes/shapes.py",
    "backends/__init__.py", "backends/keras.py", "backends/keras_apps.py", "backends/keras_file.py",
    "backends/keras_layers.py", "backends/keras_register.py", "backends/keras_weights.py",
    "backends/onnx.py", "backends/onnx_direct.py", "backends/onnx_tf2onnx.py",
    "backends/onnx_verify.py", "backends/onnx_weights.py", "backends/numpy_ref.py",
    "train/",
]
MODULE_DOC_ONLY = ["commands/"]   # command modules: a module docstring is enough
MIN_WORDS = 3


def _files(entries: list[str]) -> list[Path]:
    out: list[Path] = []
    for entry in entries:
        path = PKG / entry
        out.extend(sorted(path.glob("*.py")) if entry.endswith("/") else [path])
    return out


def _public_defs(tree: ast.Module):
    """(qualified name, node) for every public class, function and method, not nested in a def."""
    def walk(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name.startswith("_"):
                    continue
                yield prefix + node.name, node
                if isinstance(node, ast.ClassDef):
                    yield from walk(node.body, prefix + node.name + ".")
    yield from walk(tree.body, "")


def _short(doc: str | None) -> bool:
    return doc is None or len(doc.split()) < MIN_WORDS


def missing_docstrings(path: Path, module_only: bool = False) -> list[str]:
    """The public names in one file whose docstring is missing or shorter than MIN_WORDS."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    bad = [f"{rel}: module"] if _short(ast.get_docstring(tree)) else []
    if not module_only:
        bad += [f"{rel}:{node.lineno}: {name}" for name, node in _public_defs(tree)
                if _short(ast.get_docstring(node))]
    return bad


def test_listed_files_exist():
    for path in _files(DOCUMENTED) + _files(MODULE_DOC_ONLY):
        assert path.is_file(), path
    assert len(_files(["train/"])) > 5


@pytest.mark.parametrize("path", _files(DOCUMENTED), ids=lambda p: str(p.relative_to(PKG)))
def test_public_names_have_docstrings(path):
    bad = missing_docstrings(path)
    assert not bad, "public names without a docstring of a few words:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", _files(MODULE_DOC_ONLY), ids=lambda p: str(p.relative_to(PKG)))
def test_command_modules_have_docstrings(path):
    bad = missing_docstrings(path, module_only=True)
    assert not bad, "\n".join(bad)


def test_the_checker_catches_a_missing_docstring(tmp_path):
    src = tmp_path / "m.py"
    src.write_text('"""A module that is documented."""\n'
                   'class A:\n    """An A with a docstring."""\n    def run(self):\n        pass\n'
                   'def _private():\n    pass\n'
                   'def f():\n    "x"\n', encoding="utf-8")
    names = [line.rsplit(": ", 1)[1] for line in missing_docstrings(src)]
    assert names == ["A.run", "f"]  # "x" is too short; _private and the module's own are fine
    src.write_text("def g():\n    pass\n", encoding="utf-8")
    assert [line.rsplit(": ", 1)[1] for line in missing_docstrings(src)] == ["module", "g"]
