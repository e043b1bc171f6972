"""editors/: the TextMate grammar and the VS Code extension folder stay in step with the language."""
import json
import re
from pathlib import Path

from incdsl.lsp import KEYWORDS
from incdsl.ops import ACTIVATIONS, OPS

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"


def _patterns(node):
    if isinstance(node, dict):
        if "match" in node:
            yield node["name"] if "name" in node else "", node["match"]
        for v in node.values():
            yield from _patterns(v)
    elif isinstance(node, list):
        for v in node:
            yield from _patterns(v)


def test_grammar_covers_every_op_keyword_and_activation():
    grammar = json.loads((VSCODE / "syntaxes" / "inc.tmLanguage.json").read_text())
    assert grammar["scopeName"] == "source.incdsl"
    pats = list(_patterns(grammar["repository"]))
    for _, p in pats:
        re.compile(p)  # the patterns use only what Oniguruma and Python share
    ops = re.compile(next(p for n, p in pats if n == "support.function.op.incdsl"))
    for name in list(OPS) + list(ACTIVATIONS) + ["identity"]:
        assert ops.fullmatch(name), name
    words = " ".join(p for _, p in pats)
    for k in KEYWORDS:
        assert re.search(rf"\b{k}\b", words), k


def test_vscode_extension_points_at_files_that_exist():
    pkg = json.loads((VSCODE / "package.json").read_text())
    assert (VSCODE / pkg["main"]).is_file()
    lang = pkg["contributes"]["languages"][0]
    assert lang["extensions"] == [".inc"] and (VSCODE / lang["configuration"]).is_file()
    assert (VSCODE / pkg["contributes"]["grammars"][0]["path"]).is_file()
    assert pkg["contributes"]["configuration"]["properties"]["incdsl.command"]["default"] == ["incdsl", "lsp"]
