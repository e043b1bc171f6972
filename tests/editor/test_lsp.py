"""`incdsl lsp`, driven by pytest-lsp's client over stdio: diagnostics that follow the buffer (the
same messages and places as `incdsl check`), hover, go to definition, completion, and a fuzz with
the error corpus that the server must survive."""
import os
import random
import re
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
ERRORS = ROOT / "tests" / "errors"
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "incdsl", "lsp"], server_env=ENV))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(t.InitializeParams(capabilities=t.ClientCapabilities(),
                                                           root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def open_doc(client, path: Path, text: str | None = None, version: int = 1):
    uri = path.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(
        uri=uri, language_id="inc", version=version, text=path.read_text() if text is None else text)))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


async def change(client, uri: str, text: str, version: int):
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        t.VersionedTextDocumentIdentifier(version=version, uri=uri),
        [t.TextDocumentContentChangeWholeDocument(text)]))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


async def test_diagnostics_follow_the_buffer_like_check(client, tmp_path, capsys):
    from incdsl.cli import main as cli

    path = SPECS / "googlenet.inc"
    good = path.read_text()
    uri = await open_doc(client, path)
    assert list(client.diagnostics[uri]) == []
    bad = good.replace("conv(int(c1 * width), 1)", "conv(int(c1 * width), 1, stride=2)")
    diags = await change(client, uri, bad, 2)
    # what `incdsl check` says about the same text
    copy = tmp_path / "googlenet.inc"
    copy.write_text(bad)
    assert cli.main(["check", str(copy)]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    line, col, message = re.match(rf"{re.escape(str(copy))}:(\d+):(\d+): error: (.*)", first).groups()
    assert len(diags) == 1 and diags[0].severity == t.DiagnosticSeverity.Error
    d = diags[0]
    assert (d.range.start.line + 1, d.range.start.character + 1) == (int(line), int(col)) == (39, 11)
    assert d.message.split("\n")[0].startswith(message.split(" (")[0])
    assert message.startswith("concat inputs disagree on spatial size: 14x14 vs 28x28")
    notes = [(r.message, r.location.range.start.line + 1) for r in d.related_information]
    assert ("branch 1 gives 14x14x64", 14) in notes
    assert await change(client, uri, good, 3) == []  # the edited buffer re-parses from scratch


async def test_hover_shows_shape_params_and_macs(client):
    path = SPECS / "inception_v3.inc"
    text = path.read_text()
    uri = await open_doc(client, path)
    line = next(i for i, l in enumerate(text.split("\n")) if re.match(r"\s*mixed9 = ", l))
    h = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri),
                                                             t.Position(line, 4)))
    import incdsl
    net = incdsl.load(path)
    assert (
        f"`mixed9` = v3_e(...): output 8x8x2048, {net.group_counts()['mixed9'].params:,} params"
        in h.contents.value
    )
    g = SPECS / "googlenet.inc"
    guri = await open_doc(client, g)
    gl = g.read_text().split("\n")
    row = next(i for i, l in enumerate(gl) if "conv(int(c3r * width), 1)" in l)
    h = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(guri),
                                                             t.Position(row, gl[row].index("conv") + 1)))
    assert h.contents.value.startswith("9 instances:")  # a layer in a module body: one per call
    assert (
        "`inception3a/b2/conv_1` conv 1x1 relu: output 28x28x96, 18,528 params, 14,450,688 MACs"
        in h.contents.value
    )


async def test_go_to_definition_of_module_calls_and_use_paths(client):
    path = SPECS / "inception_v3.inc"
    text = path.read_text().split("\n")
    uri = await open_doc(client, path)
    lib = SPECS / "lib" / "inception_v3.inc"
    row = next(i for i, l in enumerate(text) if re.match(r"\s*mixed9 = ", l))
    loc = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), t.Position(row, text[row].index("v3_e") + 1)))
    want = next(i for i, l in enumerate(lib.read_text().split("\n")) if l.startswith("module v3_e"))
    assert loc.uri == lib.resolve().as_uri() and loc.range.start.line == want
    row = next(i for i, l in enumerate(text) if l.startswith("use "))
    loc = await client.text_document_definition_async(t.DefinitionParams(
        t.TextDocumentIdentifier(uri), t.Position(row, text[row].index('"') + 2)))
    assert loc.uri == lib.resolve().as_uri() and loc.range.start.line == 0


async def test_completion_of_ops_arguments_and_modules(client):
    path = SPECS / "inception_v3.inc"
    text = path.read_text()
    uri = await open_doc(client, path)
    lines = text.split("\n")
    row = next(i for i, l in enumerate(lines) if "conv(" in l)
    col = lines[row].index("conv(") + len("conv(")
    got = await client.text_document_completion_async(t.CompletionParams(t.TextDocumentIdentifier(uri),
                                                                         t.Position(row, col)))
    items = {i.label: i for i in got.items}
    assert {"filters=", "kernel=", "stride=", "pad=", "bn=", "act="} <= set(items)
    got = await client.text_document_completion_async(t.CompletionParams(t.TextDocumentIdentifier(uri),
                                                                         t.Position(row, 0)))
    items = {i.label: i for i in got.items}
    assert items[
        "conv"].documentation == "2-D convolution, optionally followed by batch norm and an activation"
    assert "v3_e" in items and items["v3_e"].kind == t.CompletionItemKind.Module


def _expected(case: Path):
    """(line, col, message) of the first error line of a corpus case whose golden is a plain check."""
    text = case.read_bytes().decode("utf-8", "replace")
    if "# ARGS:" in text or "# EXIT:" in text:
        return None
    first = next((l[len("# CHECK: "):] for l in text.splitlines() if l.startswith("# CHECK: ")), "")
    m = re.match(rf"{re.escape(case.name)}:(\d+):(\d+): error: (.*)", first)
    return (int(m.group(1)), int(m.group(2)), m.group(3)) if m else None


async def test_never_dies_on_the_error_corpus(client):
    rng = random.Random(15)
    cases = sorted(ERRORS.glob("*.inc"))
    checked = 0
    for n, case in enumerate(cases):
        text = case.read_bytes().decode("utf-8", "replace")
        uri = await open_doc(client, case, text)
        diags = client.diagnostics[uri]
        want = _expected(case)
        if want is not None and "\ufffd" not in text:
            assert diags and diags[0].severity == t.DiagnosticSeverity.Error, case.name
            d = diags[0]
            assert (d.range.start.line + 1, d.range.start.character + 1) == want[:2], case.name
            # the server runs from the repo root
            shown = d.message.split("\n")[0].replace("tests/errors/", "")
            assert shown.startswith(want[2].split(" (")[0]), (case.name, d.message, want[2])
            checked += 1
        for v in range(2, 5):  # mangled edits: cut the text, drop or double a character
            cut = rng.randrange(len(text) + 1)
            mangled = (text[:cut], text[:cut] + text[cut + 1:],
                       text[:cut] + text[cut:cut + 1] + text[cut:])[v - 2]
            await change(client, uri, mangled, v)
        await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), t.Position(2, 3)))
        await client.text_document_completion_async(t.CompletionParams(t.TextDocumentIdentifier(uri),
                                                                       t.Position(2, 3)))
    assert checked >= 60
    uri = await open_doc(client, SPECS / "xception.inc")  # still alive, and still right
    assert list(client.diagnostics[uri]) == []
