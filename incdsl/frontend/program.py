"""Files -> a Program: read spec files (checked: UTF-8, size, no NUL byte), follow `use` imports
(relative paths, shipped library files, cycles, depth), and collect the modules, networks, defaults
and variants visible from the root file.

Each file is parsed with `parse.parse_source` into spans that point to its own `Source`; nothing is
kept between loads.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissingFileError, Note, Span, SpecError, shorten
from ..source import Source
from . import ast, library
from .parse import parse_source

MAX_FILE_BYTES = 4 * 1024 * 1024


class NotRegular(OSError):
    """`read_regular` opened something that is not a regular file (a FIFO, a device, a socket)."""


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of `path`, which must be a regular file: opened without blocking (a FIFO named
    `x.inc` or a device would otherwise wait for ever) and checked with fstat on the open descriptor
    (no race with a rename); at most `limit` + 1 bytes are read. A file whose size reads as 0 (an
    empty file, or a kernel pseudo-file such as /proc/kmsg, which reading would consume) gives b"".
    Raises NotRegular, BlockingIOError or another OSError."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(errno.EINVAL, "not a regular file", str(path))
        if st.st_size == 0:
            return b""
        chunks, left = [], min(st.st_size, limit) + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_source(path: Path, span: Span | None = None, shown: str | None = None) -> str:
    """The text of the spec file `path`, checked: UTF-8, a leading byte-order mark dropped, no NUL byte.

    `span` is the `use` that imports it (for the error's place and notes) and `shown` the name used in
    messages (default `str(path)`). Raises `SpecError`, with file:line:col where there is one, for a
    missing file, a directory, a non-regular file, a symbolic-link loop, an unreadable file, more
    than MAX_FILE_BYTES bytes, bytes that are not UTF-8 or a NUL byte.
    """
    shown = shown or str(path)
    try:
        path.stat()  # a symlink loop or a missing file, before any other question
        if path.is_dir():
            raise SpecError(f"{shown} is a directory, not a spec file", span)
        if path.exists() and not path.is_file():  # /dev/zero or a pipe would never end
            raise SpecError(f"{shown} is not a regular file", span)
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(f"{shown} is {size:,} bytes; specs are limited to {MAX_FILE_BYTES:,}", span)
        data = read_regular(path, MAX_FILE_BYTES)
    except NotRegular:  # it became a pipe or a device between the checks above and the open
        raise SpecError(f"{shown} is not a regular file", span) from None
    except BlockingIOError:
        raise SpecError(f"cannot read {shown}: it would block (a kernel or device file, not a spec)",
                        span) from None
    except FileNotFoundError:
        hint = ("a `use` path is relative to the directory of the file that uses it, or names a shipped "
                "library file (lib/inception_v3.inc, ...)" if span else
                "`incdsl list` names the reference specs that ship with incdsl (e.g. incdsl check "
                "inception_v3)")
        raise MissingFileError(f"no such file: {shown}", path, span, hint=hint) from None
    except PermissionError:
        raise SpecError(f"cannot read {shown}: permission denied", span) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SpecError(f"cannot read {shown}: it is a symbolic link that loops (to itself, or through "
                            f"other links back to itself)", span) from None
        raise SpecError(f"cannot read {shown}: {e.strerror or e}", span) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(f"{shown} is {len(data):,} bytes; specs are limited to {MAX_FILE_BYTES:,}", span)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = len(data[data.rfind(b"\n", 0, e.start) + 1: e.start].decode("utf-8", "replace")) + 1
        if span is not None and not _starts_like_a_spec(data.decode("utf-8", "replace"), shown):
            # an imported file that is not a spec at all: no line of it is quoted (a key, a password)
            raise SpecError(
                f"{shown} is not an incdsl spec: it is not UTF-8 text (byte 0x{data[e.start]:02x} at "
                            f"line {line}, column {col})", span,
                            hint="`use` imports spec files (.inc), saved as UTF-8")
        damaged = Source(shown, data.decode("utf-8", "replace"))  # the line, with U+FFFD for the bad byte
        raise SpecError(f"{shown} is not UTF-8 text: byte 0x{data[e.start]:02x} cannot be decoded",
                        Span(damaged, line, col, line, col + 1),
                        notes=[Note("imported here", span)] if span else [],
                        hint="save the file as UTF-8") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some Windows editors write
    nul = text.find("\x00")
    if nul != -1:
        line = text.count("\n", 0, nul) + 1
        col = nul - (text.rfind("\n", 0, nul) + 1) + 1
        if span is not None and not _starts_like_a_spec(text.replace("\x00", "\ufffd"), shown):
            raise SpecError(
                f"{shown} is not an incdsl spec: it contains a NUL byte (line {line}, column {col}), "
                            f"as binary files do", span,
                            hint="`use` imports spec files (.inc), which are UTF-8 text")
        damaged = Source(shown, text.replace("\x00", "\ufffd"))
        raise SpecError(f"{shown} contains a NUL byte (U+0000): it looks like a binary file, not a spec",
                        Span(damaged, line, col, line, col + 1),
                        notes=[Note("imported here", span)] if span else [],
                        hint="a spec is UTF-8 text; remove the NUL byte")
    return text


@dataclass
class Program:
    """Everything visible from a spec file: its own items and, through `use`, its imports' modules."""
    path: str
    modules: dict[str, tuple[ast.Definition, str]] = field(default_factory=dict)
    networks: list[ast.Definition] = field(default_factory=list)  # the root file's own
    defaults: list[ast.Defaults] = field(default_factory=list)  # the root file's own
    variants: list[ast.Variant] = field(default_factory=list)
    # every file read from disk (the spec and what it `use`s): outputs must never replace them
    files: list[Path] = field(default_factory=list)


def load_program(path: str | Path, overlays: dict[Path, str] | None = None) -> Program:
    """Read a spec and everything it `use`s. `path` may name a shipped spec (`inception_v3`, `v3`).
    `overlays` maps resolved paths to text read instead of the file (an editor's unsaved buffer)."""
    root = library.resolve(path)
    prog = Program(str(root))
    _load_file(root, prog, stack=[], seen=set(), span=None, is_root=True, overlays=overlays or {})
    return prog


def load_program_text(text: str, name: str = "<string>") -> Program:
    """A program from spec text in memory; its `use` paths are relative to the working directory."""
    prog = Program(name)
    _load_file(Path(name), prog, stack=[], seen=set(), span=None, is_root=True, text=text)
    return prog


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, RuntimeError, OSError):
        return str(path)


def _starts_like_a_spec(text: str, shown: str) -> bool:
    """False when `text` (a file's text, bad bytes replaced) fails to parse on its first line that is
    not blank or a comment: then it is no spec, and its errors quote none of it."""
    try:
        parse_source(Source(shown, text))
    except SpecError as e:
        return not _first_line_fails(e, shown, text)
    return True


def _first_line_fails(e: SpecError, file: str, text: str) -> bool:
    """True when the syntax error `e` in `file` lies on its first line that is not blank or a comment."""
    if e.span is None or e.span.file != file:
        return False
    first = next((i for i, line in enumerate(text.split("\n"),
                                             1) if line.strip() and not line.lstrip().startswith("#")), 1)
    return e.span.line <= first


def _exists(path: Path) -> bool:
    """Path.exists, but False for a name the system refuses (too long): read_source says why."""
    try:
        return path.exists()
    except OSError:
        return False


def _overlaid(path: Path, overlays: dict[Path, str] | None) -> bool:
    """Whether `overlays` gives the text of `path` (keyed by resolved path)."""
    try:
        return bool(overlays) and path.resolve() in overlays
    except (RuntimeError, OSError):
        return False


# `use` chains deeper than this are refused (each level is a Python call; 1,000 overflowed).
MAX_IMPORT_DEPTH = 200


def _load_file(path: Path, prog: Program, stack: list[Path], seen: set[Path], span: Span | None,
               is_root: bool,
               text: str | None = None, overlays: dict[Path, str] | None = None):
    if len(stack) >= MAX_IMPORT_DEPTH:
        raise SpecError(f"`use` imports nest more than {MAX_IMPORT_DEPTH} files deep", span,
                        hint="import the libraries from one file instead of each from the one before")
    try:
        real = path.resolve()
    except (RuntimeError, OSError) as e:  # Python 3.11: RuntimeError("Symlink loop ..."); later: OSError
        shown = shorten(str(path) if is_root else _display(path), 200)
        if isinstance(e, OSError) and e.errno != errno.ELOOP:  # a name too long, ...
            raise SpecError(f"cannot read {shown}: {e.strerror or e}", span) from None
        raise SpecError(f"cannot read {shown}: it is a symbolic link that loops (to itself, or through "
                        f"other links back to itself)", span) from None
    if real in stack:
        cycle = " -> ".join(_display(p) for p in stack[stack.index(real):] + [real])
        raise SpecError(f"import cycle: {cycle}", span,
                        hint="move the shared modules into a file that both can `use`")
    if real in seen:
        return
    seen.add(real)
    file = str(path) if is_root else _display(path)
    text = text if text is not None else (overlays or {}).get(real)
    if text is None:
        text = read_source(path, span, file)
        prog.files.append(path)
    try:
        f = parse_source(Source(file, text))
    except SpecError as e:
        if span is not None and (_first_line_fails(e, file, text) or path.suffix != ".inc"):
            # an imported file whose first item is not the language, or one not named .inc that does
            # not parse, is not a spec: say so where it is imported, without quoting a line of it
            # (it may be a key or a password, whose first line happened to parse)
            why = ("its first line that is not blank or a comment is not a `use`, `module`, `network`, "
                   "`defaults` or `variant` item" if _first_line_fails(e, file, text)
                   else "its name does not end in .inc and it does not parse")
            raise SpecError(f"{file} is not an incdsl spec: {why}", span,
                            hint="`use` imports spec files (.inc) of modules") from None
        raise
    stack.append(real)
    for item in f.items:
        if isinstance(item, ast.Use):
            target = (path.parent / item.path)
            # a shipped library file: `use "lib/inception_v3.inc"` anywhere (a file given in
            # `overlays` exists, whether or not it is on disk)
            if not _exists(target) and not _overlaid(target, overlays):
                target = library.shipped_import(item.path) or target
            _load_file(target, prog, stack, seen, item.span, is_root=False, overlays=overlays)
        elif isinstance(item, ast.Definition) and item.kind == "module":
            if item.name in prog.modules:
                first = prog.modules[item.name][0]
                raise SpecError(f"module '{item.name}' is defined twice", item.span,
                                notes=[Note("first defined here", first.span)])
            prog.modules[item.name] = (item, file)
        elif isinstance(item, ast.Defaults) and not is_root:
            # defaults are dynamic: at the top of a library they would reach no layer at all
            raise SpecError("defaults at the top of an imported file apply to nothing", item.span,
                            notes=[Note("imported here", span)] if span else [],
                            hint="put them in the body of the module that needs them, or in the network")
        elif is_root:
            if isinstance(item, ast.Definition):
                prog.networks.append(item)
            elif isinstance(item, ast.Defaults):
                prog.defaults.append(item)
            elif isinstance(item, ast.Variant):
                prog.variants.append(item)
    stack.pop()
