"""Fuzzing of `incdsl lsp` with malformed and mutated messages (issue 24 #8): broken framing
(lengths that are huge, negative, not numbers, too long or too short for the body), JSON that is
not JSON-RPC, unknown methods, wrong parameter types, and didOpen/didChange of mutated specs.
After each input the server must still answer a plain request within the bound: otherwise a
`hang`, or `internal` when it has exited. Used by tools/fuzz.py and tests/cli/test_fuzz_files.py.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

from lsp_wire import Pipe, frame

from fuzzing import mutate

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["textDocument/hover", "textDocument/completion", "textDocument/definition", "textDocument/didOpen",
           "textDocument/didChange", "textDocument/didClose", "workspace/symbol", "nothere",
           "$/cancelRequest",
           "initialize", "textDocument/didSave"]


class Server(Pipe):
    """An `incdsl lsp` process on pipes, initialized; `alive(bound)` says whether it still answers."""

    def __init__(self, workspace: Path):
        super().__init__(dict(os.environ, PYTHONPATH=str(ROOT)), cwd=workspace, stderr=subprocess.DEVNULL)
        self.ws, self.next_id = workspace, 1000
        self.send(frame(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                    "params": {"capabilities": {}, "rootUri": workspace.as_uri()}}).encode()))
        assert self.answer(1, 120) is not None, "the server did not start"

    def alive(self, bound: float) -> bool:
        self.next_id += 1
        uri = (self.ws / "probe.inc").as_uri()
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": "textDocument/hover",
                "params": {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}}
        return self.send(frame(json.dumps(body).encode())) and self.answer(self.next_id, bound) is not None

    def peak(self) -> int:
        """The server's peak resident memory in bytes so far (VmHWM), 0 once it has exited."""
        try:
            with open(f"/proc/{self.p.pid}/status") as f:
                return 1024 * int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
        except (OSError, StopIteration, ValueError):
            return 0


def message(rng: random.Random, corpus: list[str], ws: Path) -> bytes:
    """One hostile input: a framing error, a JSON or JSON-RPC error, or a mutated spec in a buffer."""
    uri = (ws / rng.choice(["a.inc", "b.inc", "lib.inc", "x.inc"])).as_uri()
    text = corpus[rng.randrange(len(corpus))]
    for _ in range(rng.randint(0, 4)):
        text = mutate(rng, text)
    method = rng.choice(METHODS)
    params = {"textDocument": {"uri": uri, "languageId": "inc", "version": rng.randint(-2, 9), "text": text},
              "position": {"line": rng.choice([0, 3, -1, 2**31, 10**12]),
                           "character": rng.choice([0, 5, -3, 2**40])},
              "contentChanges": [{"text": text}]}
    if rng.random() < 0.2:  # wrong types
        params = rng.choice([None, [], 5, "x", {"textDocument": 3}, {"textDocument": {"uri": 7}}])
    msg = {"jsonrpc": "2.0", "method": method, "params": params}
    if rng.random() < 0.5:
        msg["id"] = rng.choice([rng.randint(1, 900), "s", None, 1.5, [1]])
    body = json.dumps(msg).encode()
    kind = rng.random()
    if kind < 0.55:
        return frame(body)
    if kind < 0.7:  # broken JSON
        cut = rng.randrange(len(body))
        return frame(body[:cut] + rng.randbytes(rng.randint(0, 8)))
    head = rng.choice([b"Content-Length: 99999999999999", b"Content-Length: -5", b"Content-Length: abc",
                       b"Content-Length: %d" % (len(body) + rng.randint(1, 400)),
                       b"Content-Length: %d" % max(len(body) - rng.randint(1, 20), 1), b"Content-Length:",
                       b"Content-Type: x", b"content-length: 2", b""])
    return head + rng.choice([b"\r\n\r\n", b"\n\n", b"\r\n", b""]) + body
