"""`incdsl lsp` against hostile clients and workspaces (issue 24 #5, #8): malformed frames, a FIFO
named x.inc, `use "/proc/kmsg"`, a 50 MB buffer, `use` of a secret file, and a clean shutdown.
Buffers go through pytest-lsp's client; malformed frames through a raw writer on the server's
stdin, since no real client can send them. After each bad input the server must answer a
normal request."""
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsp_wire import Pipe, request
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
WORKSPACE = Path(tempfile.mkdtemp(prefix="incdsl-lsp-ws-"))
SPEC = "network n() {\n  input 8x8x3\n  conv(4, 3)\n}\n"

ASYNC = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "incdsl", "lsp"], server_env=ENV))
async def client(lsp_client: LanguageClient):
    os.mkfifo(WORKSPACE / "x.inc")  # a library's users are found by reading the workspace's .inc files
    (WORKSPACE / "secret").write_text("root:$6$SECRETHASH:19000:0:99999:7:::\nsecond secret line\n")
    await lsp_client.initialize_session(t.InitializeParams(capabilities=t.ClientCapabilities(),
                                                           root_uri=WORKSPACE.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def diagnostics(client, name: str, text: str, timeout: float = 60):
    path = WORKSPACE / name
    uri = path.as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(
        uri=uri, language_id="inc", version=1, text=text)))
    await asyncio.wait_for(client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), timeout)
    return uri, [d.message for d in client.diagnostics[uri]]


async def answers(client, uri: str) -> None:
    """The server still answers a request (hover on the buffer) in bounded time."""
    await asyncio.wait_for(client.text_document_hover_async(
        t.HoverParams(t.TextDocumentIdentifier(uri), t.Position(2, 3))), 60)


@ASYNC
async def test_a_fifo_named_x_inc_in_the_workspace_does_not_block_it(client):
    # a library (modules, no network) makes the server read the workspace's .inc files
    uri, msgs = await diagnostics(client, "lib.inc", "module m() {\n  conv(4, 3)\n}\n")
    assert msgs == []
    await answers(client, uri)


@ASYNC
async def test_use_of_a_fifo_or_proc_kmsg_does_not_block_it(client):
    uri, msgs = await diagnostics(client, "f.inc", 'use "x.inc"\n' + SPEC)
    assert any("x.inc is not a regular file" in m for m in msgs), msgs
    uri, msgs = await diagnostics(client, "k.inc", 'use "/proc/kmsg"\n' + SPEC)
    await answers(client, uri)


@ASYNC
async def test_a_50_mb_buffer_gets_a_prompt_diagnostic(client):
    start = time.monotonic()
    uri, msgs = await diagnostics(client, "big.inc", SPEC + "# " + "x" * (50 * 1024 * 1024) + "\n",
                                  timeout=120)
    assert msgs == [
        f"this buffer is {len(SPEC) + 3 + 50 * 1024 * 1024:,} bytes; specs are limited to 4,194,304"], msgs
    assert time.monotonic() - start < 60
    await answers(client, uri)


@ASYNC
async def test_use_of_a_file_that_is_not_a_spec_quotes_none_of_it(client):
    # issue 24 #5: the diagnostic named the file and quoted its first line
    uri, found = await diagnostics(client, "s.inc", 'use "secret"\n' + SPEC)
    assert len(found) == 1 and "secret is not an incdsl spec" in found[0], found
    assert "SECRETHASH" not in found[0] and "root:" not in found[0]
    related = client.diagnostics[uri][0].related_information or []
    assert not any("SECRETHASH" in r.message for r in related)


def test_use_of_a_file_that_is_not_a_spec_on_the_command_line(tmp_path, capsys):
    from incdsl.cli import main as cli
    (tmp_path / "secret").write_text("root:$6$SECRETHASH:19000:0:99999:7:::\n")
    (tmp_path / "n.inc").write_text('use "secret"\n' + SPEC)
    assert cli.main(["check", str(tmp_path / "n.inc")]) == 1
    err = capsys.readouterr().err
    assert (
        "n.inc:1:1: error: " in err and "/secret is not an incdsl spec" in err and "SECRETHASH" not in err
    ), err
    (tmp_path / "bin").write_bytes(b"\x89\xffSECRET\x00KEY")
    (tmp_path / "b.inc").write_text('use "bin"\n' + SPEC)
    assert cli.main(["check", str(tmp_path / "b.inc")]) == 1
    err = capsys.readouterr().err
    assert (
        "b.inc:1:1: error: " in err
        and "/bin is not an incdsl spec: it is not UTF-8 text" in err
        and "SECRET" not in err
    ), err


def test_check_of_a_use_of_a_fifo_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "x.inc")
    (tmp_path / "n.inc").write_text('use "x.inc"\n' + SPEC)
    (tmp_path / "k.inc").write_text('use "/proc/kmsg"\n' + SPEC)
    for name, code in (("n.inc", 1), ("k.inc", 0)):
        r = subprocess.run([sys.executable, "-m", "incdsl", "check", str(tmp_path / name)], env=ENV,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == code, r.stderr


# --- malformed frames, through a raw writer ---------------------------------------------------

class Raw(Pipe):
    """The server on pipes, with frames written byte for byte and answers read with a deadline."""

    def __init__(self):
        super().__init__(ENV)

    request = staticmethod(request)

    def answer(self, id_: int, timeout: float = 60) -> dict:
        msg = super().answer(id_, timeout)
        assert msg is not None, f"no answer to request {id_} (exit code {self.p.poll()})"
        return msg


@pytest.fixture
def raw():
    r = Raw()
    r.send(r.request(1, "initialize", {"capabilities": {}}))
    assert "result" in r.answer(1)
    yield r
    r.close()


BAD = {
    "huge length": b"Content-Length: 99999999999999\r\n\r\n{}",
    "negative length": b'Content-Length: -5\r\n\r\n{"jsonrpc": "2.0", "id": 50, "method": "shutdown"}',
    "length abc": b'Content-Length: abc\r\n\r\n{"jsonrpc": "2.0", "id": 50, "method": "shutdown"}',
    "length longer than the body": b'Content-Length: 500\r\n\r\n{"jsonrpc": "2.0", "method": "initialized"}',
    "no length": b'Content-Type: x\r\n\r\n{"jsonrpc": "2.0"}',
    "junk": b"\x00\xff garbage \r\n\r\n\r\n",
    "not json": b"Content-Length: 5\r\n\r\n{{{{{",
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_malformed_frame_leaves_the_server_answering(raw, case):
    raw.send(BAD[case])
    for k in (2, 3):  # the next request, and the one after it
        raw.send(raw.request(k, "textDocument/completion",
                             {"textDocument": {"uri": (WORKSPACE / "none.inc").as_uri()},
                              "position": {"line": 0, "character": 0}}))
        assert raw.answer(k)["id"] == k
    assert raw.p.poll() is None


def test_shutdown_then_exit_exits_0(raw):
    raw.send(raw.request(9, "shutdown"))
    assert raw.answer(9)["result"] is None
    raw.send(b'Content-Length: 33\r\n\r\n{"jsonrpc":"2.0","method":"exit"}')
    _, err = raw.p.communicate(timeout=60)
    assert raw.p.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err


def test_use_of_a_secret_whose_first_item_parses_quotes_none_of_it(tmp_path, capsys):
    """Review of issue 24: a file whose first item is valid language (here a module) and whose later
    lines are a secret was quoted from its second line on. A `use`d file not named .inc that does
    not parse is not a spec: named, not quoted."""
    from incdsl.cli import main as cli
    (tmp_path / "s10.env").write_text("module m() { conv(8, 3) }\nAKIA hunter2xyz secret stuff\n")
    (tmp_path / "n.inc").write_text('use "s10.env"\n' + SPEC)
    assert cli.main(["check", str(tmp_path / "n.inc")]) == 1
    err = capsys.readouterr().err
    assert "s10.env is not an incdsl spec: its name does not end in .inc and it does not parse" in err, err
    assert "hunter2" not in err and "AKIA" not in err
    # a spec library (.inc) with a typo is still quoted at its line: that is the help its author needs
    (tmp_path / "lib.inc").write_text("module m() { conv(8, 3) }\nmodule k( { }\n")
    (tmp_path / "u.inc").write_text('use "lib.inc"\n' + SPEC)
    assert cli.main(["check", str(tmp_path / "u.inc")]) == 1
    assert "lib.inc:2:" in capsys.readouterr().err
