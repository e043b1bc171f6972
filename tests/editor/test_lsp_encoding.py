"""`incdsl lsp` with a client that offers UTF-32 positions: the server takes them (pygls negotiates
the client's first supported encoding) and its columns are then code points, as `incdsl check`
prints them. The UTF-16 default is in tests/editor/test_lsp_library.py."""
import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "incdsl", "lsp"], server_env=ENV))
async def client(lsp_client: LanguageClient):
    caps = t.ClientCapabilities(general=t.GeneralClientCapabilities(
        position_encodings=[t.PositionEncodingKind.Utf32, t.PositionEncodingKind.Utf16]))
    result = await lsp_client.initialize_session(t.InitializeParams(capabilities=caps,
                                                                    root_uri=ROOT.as_uri()))
    assert result.capabilities.position_encoding == t.PositionEncodingKind.Utf32
    yield
    await lsp_client.shutdown_session()


async def test_utf32_positions_are_code_points_after_an_emoji(client, tmp_path):
    path = tmp_path / "emoji.inc"
    uri = path.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(
        uri=uri, language_id="inc", version=1, text='use "\U0001F600.inc" foo\n')))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    (d,) = client.diagnostics[uri]
    assert (d.range.start.character, d.range.end.character) == (12, 15)  # check says 1:13
