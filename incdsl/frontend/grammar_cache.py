"""The grammar's LALR tables, cached as JSON in a private per-user folder.

Lark's own `cache=True` pickles the tables to `$TMPDIR/.lark_cache_<user>_<hash>_3_11.tmp`: a name
anyone can predict, in a folder anyone can write, and loading a pickle runs whatever code it
names (issue 12: a planted file ran `os.system` on the next `incdsl check`). Here:

- the tables are stored as JSON (Lark's own `memo_serialize` data): loading JSON builds lists and
  dicts and runs nothing, whatever the file holds;
- in `$XDG_CACHE_HOME/incdsl` (default `~/.cache/incdsl`), used only when it is a real folder (not
  a symlink) owned by this user with no access for group or others (0700), and each file only
  when it is a regular file owned by this user that only they can write;
- anything else (no home, a shared or foreign folder, a damaged file) costs the ~70 ms of
  building the tables in memory, never an error.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
from pathlib import Path

import lark
from lark import Lark
from lark.grammar import Rule
from lark.lark import _LOAD_ALLOWED_OPTIONS
from lark.lexer import TerminalDef

FORMAT = 1  # bump when what is stored changes


def cache_dir(create: bool = True) -> Path | None:
    """This user's private cache folder for incdsl, or None when there is no safe one."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec: a relative value is to be ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    folder = Path(base) / "incdsl"
    if create:
        with contextlib.suppress(OSError):
            os.makedirs(base, mode=0o700, exist_ok=True)
            os.mkdir(folder, 0o700)
    try:
        st = os.lstat(folder)
    except OSError:
        return None
    private = (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
               and not st.st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    return folder if private else None


def _key(grammar: str, options: dict) -> str:
    text = "\n".join([grammar, repr(sorted(options.items())), lark.__version__, sys.version.split()[0],
                      str(FORMAT)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _int_keys(d: dict) -> dict:
    # JSON keys are strings; Lark's tables key states and tokens by int
    return {int(k) if k.isdigit() else k: v for k, v in d.items()}


def _read(path: Path) -> dict | None:
    try:  # O_NONBLOCK: a FIFO planted there must not block the open; fstat then rejects it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder or a FIFO: build the tables in memory
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid()
                or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or st.st_size > 16 * 1024 * 1024):
            return None
        try:
            return json.loads(f.read(), object_hook=_int_keys)
        except ValueError:
            return None


def _write(path: Path, tables: dict) -> None:
    data = json.dumps(tables, separators=(",", ":")).encode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tables.", dir=path.parent)  # mode 0600
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def open_parser(grammar_file: Path, *, transformer, postlex, **options) -> Lark:
    """A LALR `Lark` for `grammar_file` with `options`, from the private cache when it holds
    tables for exactly this grammar, these options, this Lark and this Python."""
    grammar = grammar_file.read_text(encoding="utf-8")
    folder = cache_dir()
    path = folder / f"grammar-{_key(grammar, options)}.json" if folder else None
    tables = _read(path) if path else None
    if tables is not None:
        try:
            return Lark._load_from_dict(tables["data"], tables["memo"], transformer=transformer,
                                        postlex=postlex)
        except Exception:  # damaged or foreign tables: build afresh below
            pass
    parser = Lark(grammar, parser="lalr", transformer=transformer, postlex=postlex, cache=False, **options)
    if path is not None:
        data, memo = parser.memo_serialize([TerminalDef, Rule])
        data["options"] = {k: v for k, v in data["options"].items() if k not in _LOAD_ALLOWED_OPTIONS}
        _write(path, {"data": data, "memo": memo})
    return parser
