"""`incdsl lsp` on the cases a new user met: a library file (modules only) checked on its own and
through the networks that use it, an error in a `use`d file shown where the network file leads
there, a byte-order mark, positions in UTF-16 units after an emoji, argument docs in completion,
and a dangling layer's place. Driven by pytest-lsp over stdio, as tests/editor/test_lsp.py."""
import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient

from incdsl.cli import main as cli
from incdsl.ops import OPS

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
LIB = SPECS / "lib" / "inception_v3.inc"
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "incdsl", "lsp"], server_env=ENV))
async def client(lsp_client: LanguageClient):
    # no position encoding offered: LSP's default, UTF-16 code units
    await lsp_client.initialize_session(t.InitializeParams(capabilities=t.ClientCapabilities(),
                                                           root_uri=SPECS.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def publish(client, path: Path, text: str, version: int = 1):
    uri = path.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(
        uri=uri, language_id="inc", version=version, text=text)))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri, list(client.diagnostics[uri])


def start(d) -> tuple[int, int]:
    return d.range.start.line + 1, d.range.start.character + 1


async def test_library_file_unknown_argument_at_its_place(client):
    text = LIB.read_text()
    lines = text.split("\n")
    row = next(i for i, l in enumerate(lines) if l.startswith("  conv(depth(64, width, min_depth), 3)"))
    close = lines[row].index("3)") + 1
    lines[row] = lines[row][:close] + ", foo=1" + lines[row][close:]
    uri, diags = await publish(client, LIB, "\n".join(lines))
    assert diags, "a library buffer with an unknown argument must not be silent"
    d = diags[0]
    assert d.severity == t.DiagnosticSeverity.Error and d.message.startswith("conv has no argument 'foo'")
    assert start(d) == (row + 1, close + 3)  # the `foo=1` itself, not 1:1
    # the unchanged library: no diagnostics, and hover on a layer shows its instances in v3
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        t.VersionedTextDocumentIdentifier(version=2, uri=uri),
        [t.TextDocumentContentChangeWholeDocument(text)]))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri]) == []
    v3e = next(i for i, l in enumerate(text.split("\n")) if l.startswith("module v3_e"))
    row = next(i for i in range(v3e, v3e + 10) if "conv(" in text.split("\n")[i])
    col = text.split("\n")[row].index("conv(") + 1
    h = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri),
                                                             t.Position(row, col)))
    assert h is not None and "mixed9/" in h.contents.value and "params" in h.contents.value


async def test_error_in_a_used_file_sits_on_the_call_and_points_to_the_library(client, tmp_path):
    (tmp_path / "lib.inc").write_text("module blk(c) {\n  conv(c, 1, foo=1) -> conv(c, 3)\n}\n")
    net = "use \"lib.inc\"\n\nnetwork n() {\n  input 8x8x3\n  b = blk(4)\n}\n"
    uri, diags = await publish(client, tmp_path / "net.inc", net)
    assert len(diags) == 1 and start(diags[0]) == (5, 7)  # the call `blk(4)`, not 1:1
    rel = diags[0].related_information[0]
    assert rel.location.uri == (tmp_path / "lib.inc").resolve().as_uri()
    assert (rel.location.range.start.line + 1, rel.location.range.start.character + 1) == (2, 14)
    # a syntax error in the library: on the `use` line
    (tmp_path / "lib2.inc").write_text("module blk(c) {\n  conv(c, 1\n}\n")
    uri, diags = await publish(client, tmp_path / "net2.inc", net.replace("lib.inc", "lib2.inc"))
    assert len(diags) == 1 and start(diags[0]) == (1,
                                                   1) and diags[
                                                       0].range.end.character == len('use "lib2.inc"')
    assert diags[0].related_information[0].location.range.start.line == 2


async def test_byte_order_mark_is_dropped_as_the_file_reader_does(client, tmp_path):
    text = (SPECS / "googlenet.inc").read_text()
    (tmp_path / "bom.inc").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert cli.main(["check", str(tmp_path / "bom.inc")]) == 0
    _, diags = await publish(client, tmp_path / "bom.inc", "\ufeff" + text)
    assert diags == []


async def test_positions_are_utf16_units_after_an_emoji(client, tmp_path, capsys):
    text = 'use "\U0001F600.inc" foo\n'
    _, diags = await publish(client, tmp_path / "emoji.inc", text)
    # `foo` starts at code point 13 (1-based, as `incdsl check` says) but UTF-16 unit 14: the emoji
    # is a surrogate pair
    assert cli.main(["check", str(tmp_path / "missing.inc")]) == 1  # (check's columns: code points)
    (tmp_path / "emoji.inc").write_text(text)
    assert cli.main(["check", str(tmp_path / "emoji.inc")]) == 1
    assert f"{tmp_path / 'emoji.inc'}:1:13: error: unexpected 'foo'" in capsys.readouterr().err
    assert len(diags) == 1 and start(diags[0]) == (1, 14) and diags[0].range.end.character == 16


async def test_argument_completions_carry_the_op_tables_docs(client):
    text = (SPECS / "inception_v3.inc").read_text()
    uri, _ = await publish(client, SPECS / "inception_v3.inc", text)
    lines = text.split("\n")
    row = next(i for i, l in enumerate(lines) if "conv(" in l)
    col = lines[row].index("conv(") + len("conv(")
    got = await client.text_document_completion_async(t.CompletionParams(t.TextDocumentIdentifier(uri),
                                                                         t.Position(row, col)))
    items = {i.label: i for i in got.items}
    for arg in OPS["conv"].args:
        item = items[f"{arg.name}="]
        assert item.documentation == arg.doc and arg.doc, arg.name
        assert arg.kind in item.detail
    assert items["filters="].detail == "conv argument: count, required"
    assert items["stride="].detail == "conv argument: size, default 1"
    assert items["act="].detail == "conv argument: act, default none"


async def test_dangling_layer_warning_has_its_span(client, tmp_path, capsys):
    text = ("network n() {\n  input 8x8x3\n  stem = conv(4, 1)\n  tap = stem -> conv(4, 1)\n"
            "  output y = stem -> conv(4, 3)\n}\n")
    path = tmp_path / "dangle.inc"
    path.write_text(text)
    assert cli.main(["check", str(path)]) == 0
    assert f"{path}:4:17: warning: 'tap' reaches no output and is left out" in capsys.readouterr().err
    _, diags = await publish(client, path, text)
    assert len(diags) == 1 and diags[0].severity == t.DiagnosticSeverity.Warning
    assert start(diags[0]) == (4, 17) and diags[0].range.end.line == 3
