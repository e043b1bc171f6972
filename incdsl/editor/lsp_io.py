"""The language server's standard input, framed defensively: whatever a client (or a fuzzer) sends,
the server stays alive and answers every later well-formed message.

pygls reads `Content-Length: N` headers and then exactly N bytes. On its own, a length of
99999999999999 made it allocate until MemoryError (the server ended); `-5` or `abc` left it reading
the next message's body as headers, one message behind for ever; a length longer than the body
swallowed the following messages while waiting for bytes that never came. `FrameReader` sits in
between: it parses each frame itself and hands pygls only well-formed ones.

- A header block without a valid length (missing, negative, not a number, or over MAX_FRAME) is
  dropped, and so is everything up to the next `Content-Length:` header.
- A body that would run into the next header (`Content-Length: 12\\r\\n` can only appear raw in
  the stream as a header: JSON escapes line breaks inside strings) ends there: the length was too
  long, and the next message is read as it was sent.
Bytes are read as they arrive (`os.read` on the descriptor), never waiting for more than a message
needs. The framing follows the LSP base protocol (Content-Length, then \\r\\n\\r\\n, then the body).
"""
from __future__ import annotations

import os
import re

MAX_FRAME = 128 * 1024 * 1024  # a didOpen of a 50 MB buffer still arrives (and gets its diagnostic)
_HEADER = re.compile(rb"Content-Length:[ \t]*(\S*)[ \t]*\r?\n", re.I)
_NEXT = re.compile(rb"Content-Length:[ \t]*\d+[ \t]*\r?\n", re.I)
_END = re.compile(rb"\r?\n\r?\n")
_CHUNK = 1 << 20
_MAX_HEADER = 64 * 1024


class FrameReader:
    """What pygls reads instead of stdin (its `readline()` and `read(n)`), serving one well-formed
    frame at a time from the raw descriptor `fd`. `dropped` counts the malformed frames thrown away."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()  # raw bytes read but not yet framed
        self.out = b""          # the current well-formed frame, as pygls will read it
        self.eof = False
        self.dropped = 0

    def _fill(self) -> bool:
        """Append what the descriptor has (waiting for at least one byte); False at end of input."""
        while not self.eof:
            try:
                data = os.read(self.fd, _CHUNK)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                self.eof = True
                break
            self.buf += data
            return True
        return False

    def _skip_to_next_header(self) -> None:
        """Drop everything before the next `Content-Length: <digits>` header, reading on until one
        arrives or input ends (memory stays bounded: only a short tail is kept while skipping)."""
        while True:
            m = _NEXT.search(self.buf)
            if m:
                del self.buf[:m.start()]
                return
            del self.buf[:max(len(self.buf) - 64, 0)]  # a tail that may be the start of a header
            if not self._fill():
                self.buf.clear()
                return

    def _frame(self) -> bytes:
        """The next well-formed frame (header and body), or b"" at the end of input."""
        while True:
            end = _END.search(self.buf)
            while end is None:
                if len(self.buf) > _MAX_HEADER:  # this long, it is no header block: resync
                    self.dropped += 1
                    del self.buf[:1]
                    self._skip_to_next_header()
                elif not self._fill():
                    return b""
                end = _END.search(self.buf)
            valid = list(_NEXT.finditer(self.buf, 0, end.start() + 2))
            if valid and valid[-1].start() > 0 and not _HEADER.match(self.buf):
                # junk, or a bad header whose body ran into this one: this frame starts at the last
                # valid length header
                self.dropped += 1
                del self.buf[:valid[-1].start()]
                continue
            m = _HEADER.search(self.buf, 0, end.start() + 2)
            length = int(m.group(1)) if m and m.group(1).isdigit() else -1
            if valid and (length < 0 or m.start() < valid[-1].start()):  # two lengths: the last valid one
                length = int(valid[-1].group().split(b":")[1])
            del self.buf[:end.end()]
            if not 0 < length <= MAX_FRAME:
                self.dropped += 1
                self._skip_to_next_header()
                continue
            scanned = 0
            while True:  # the body: `length` bytes, unless the next header comes first
                nxt = _NEXT.search(self.buf, max(0, scanned - 64), min(len(self.buf), length + 64))
                if nxt and nxt.start() < length:  # the length was too long
                    cut = nxt.start()
                    self.dropped += 1
                    break
                if len(self.buf) >= length:
                    cut = length
                    break
                scanned = len(self.buf)
                if not self._fill():
                    return b""
            body = bytes(self.buf[:cut])
            del self.buf[:cut]
            if body.strip():
                return b"Content-Length: %d\r\n\r\n" % len(body) + body

    def readline(self) -> bytes:
        """One header line of the current frame (pygls' reader interface)."""
        if not self.out:
            self.out = self._frame()
            if not self.out:
                return b""
        i = self.out.find(b"\n")
        line, self.out = (self.out[:i + 1], self.out[i + 1:]) if i >= 0 else (self.out, b"")
        return line

    def read(self, n: int) -> bytes:
        """`n` bytes of the current frame's body (pygls asks for exactly the length we wrote)."""
        data, self.out = self.out[:n], self.out[n:]
        return data
