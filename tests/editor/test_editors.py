"""editors/: the TextMate grammar and the VS Code extension folder stay in step with the language."""
import json
import re
from pathlib import Path

from incdsl.editor.lsp_complete import KEYWORDS
from incdsl.ops import ACTIVATIONS, OPS

ROOT = Path(__file__).resolve().parents[2]
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
    assert "extensions" not in lang and (VSCODE / lang["configuration"]).is_file()
    assert (VSCODE / pkg["contributes"]["grammars"][0]["path"]).is_file()
    assert pkg["contributes"]["configuration"]["properties"]["incdsl.command"]["default"] == ["incdsl", "lsp"]


PHP_INC = "<?php\n// config.inc\n$db_host = 'localhost';\nfunction module($x) { return $x; }\n?>\n"
NASM_INC = "; macros.inc\n%macro network 1\n  mov eax, %1\n%endmacro\nmodule equ 4\n"
FORTRAN_INC = "! params.inc\n      integer network\n      parameter (network = 3)\n      use module_a\n"


def test_vscode_extension_claims_specs_by_content_not_every_inc_file():
    """`.inc` is also PHP's, assembly's and Fortran's: the extension claims a file by what it says.
    detect.js (what extension.js calls on an opened .inc file) runs under node on every spec and on
    PHP, NASM and Fortran include files; package.json's firstLine regex (VS Code's match for any
    file, untitled buffers too) must not take those either."""
    import subprocess

    pkg = json.loads((VSCODE / "package.json").read_text())
    first_line = re.compile(pkg["contributes"]["languages"][0]["firstLine"])
    specs = sorted((ROOT / "specs").rglob("*.inc"))
    others = {"php": PHP_INC, "nasm": NASM_INC, "fortran": FORTRAN_INC}
    texts = [p.read_text() for p in specs] + list(others.values())
    js = ("const {isIncdsl} = require(process.argv[1]); let d = '';"
          "process.stdin.on('data', c => d += c).on('end', () =>"
          " console.log(JSON.stringify(JSON.parse(d).map(isIncdsl))));")
    got = json.loads(subprocess.run(["node", "-e", js, str(VSCODE / "detect.js")], input=json.dumps(texts),
                                    capture_output=True, text=True, check=True).stdout)
    assert got == [True] * len(specs) + [False] * len(others)
    for text in others.values():
        assert not first_line.search(text.split("\n")[0])
    assert first_line.search('module v3_a(pool) {') and first_line.search('use "lib/inception_v3.inc"')
    ext = (VSCODE / "extension.js").read_text()
    assert '{ scheme: "untitled", language: "incdsl" }' in ext and "isIncdsl(doc.getText())" in ext
