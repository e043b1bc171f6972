"""`incdsl lsp` as a process on pipes, framed by hand (LSP's base protocol: a Content-Length header,
a blank line, the JSON body), for the tests that send what no real client would: malformed frames
(tests/editor/test_lsp_robust.py) and fuzzed messages (tests/fuzzing_lsp.py)."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path


def frame(body: bytes) -> bytes:
    """One LSP message: the header that gives the body's length in bytes, then the body."""
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(id_: int, method: str, params=None) -> bytes:
    """A framed JSON-RPC request."""
    return frame(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}}).encode())


class Pipe:
    """An `incdsl lsp` process on pipes: `send` writes bytes as they are, `answer` reads frames until
    the one answering request `id_`."""

    def __init__(self, env: dict, cwd: Path | None = None, stderr=subprocess.PIPE):
        self.p = subprocess.Popen([sys.executable, "-m", "incdsl", "lsp"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=cwd)
        self.buf = b""

    def send(self, raw: bytes) -> bool:
        """Write `raw`; False when the server has closed its input."""
        try:
            self.p.stdin.write(raw)
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def answer(self, id_: int, timeout: float):
        """The message answering request `id_`, or None when none comes within `timeout` seconds or
        the server exits first."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\r\n\r\n" in self.buf:
                head, rest = self.buf.split(b"\r\n\r\n", 1)
                n = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
                if len(rest) < n:
                    break
                msg, self.buf = json.loads(rest[:n]), rest[n:]
                if isinstance(msg, dict) and msg.get("id") == id_:
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                return None
            ready, _, _ = select.select([self.p.stdout], [], [], left)
            if ready:
                data = os.read(self.p.stdout.fileno(), 1 << 16)
                if not data:
                    return None
                self.buf += data

    def close(self) -> None:
        """Kill the server if it still runs, and reap it."""
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate()
