"""Writing outputs without ever destroying a file, and the record of what a command read.

The promises (README, "Errors"): an output never replaces an input of the same command (the spec,
a file it imports with `use`, a weights file), nor anything that is not a regular file (a device
node, a FIFO, a symbolic link, a directory), nor a file its owner made read-only; a failed or
interrupted write leaves nothing behind: no partial file, no temp file, no new folder.

How: the writer fills a hidden temp file `.incdsl-<pid>-<random>.<name>` in the deepest folder
of the target that already exists; only on success are the missing folders created and the temp
file renamed onto the target (`os.replace`, atomic on POSIX). A temp file left by a process that
was killed with SIGKILL (nothing can clean up after that) is removed by the next write to the
same place: its pid no longer runs. SIGTERM and SIGHUP unwind like Ctrl-C (see `cli.main`).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import UsageError

# Every file the running command reads as an input (its spec files, --weights): (st_dev, st_ino)
# -> the path as the user gave it, and the resolved paths. The commands note them (the library
# never does: a Python user passes a network's own `input_files`); `cli.main` clears them at the
# start of each command.
_INPUTS: dict[tuple[int, int], str] = {}
_INPUT_PATHS: dict[Path, str] = {}

_TEMP = re.compile(r"\.incdsl-(\d+)-[0-9a-f]+\.(.+)")


def note_input(path: str | Path) -> None:
    """Remember that this command reads `path`, so that no output of the command replaces it."""
    try:
        st = os.stat(path)
        _INPUTS[(st.st_dev, st.st_ino)] = str(path)
        _INPUT_PATHS[Path(path).resolve()] = str(path)
    except (OSError, RuntimeError):  # unreadable or a symlink loop: the reader reports it
        pass


def inputs_of(net, *files) -> tuple[str | Path, ...]:
    """What an export of `net` must never replace: the spec files it was read from
    (`Network.input_files`) and those of `files` that are paths (a weights file; a weights dict or
    None is skipped)."""
    return tuple(getattr(net, "input_files", ())) + tuple(f for f in files if isinstance(f,
                                                                                         (str, os.PathLike)))


def forget_inputs() -> None:
    """Forget every path `note_input` recorded (`cli.main` calls it at the start of each command,
    so that commands run in one process, as in the test suite, do not see the last one's inputs)."""
    _INPUTS.clear()
    _INPUT_PATHS.clear()


def check_output(target: str | Path, rewrite: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """The output path `target` as a Path, or a UsageError that says why it must not be written.

    Refused: a name ending in '/', a directory, a symbolic link, anything that is not a regular
    file (device node, FIFO, socket), a file without write permission (even for root), an input of
    this command (compared through symlinks, `..` and hard links), and a path under a file.
    `rewrite=True` is for a command whose job is to replace its input (`incdsl fmt`): the input
    check is skipped, and a symbolic link is followed to the file it names (the link stays).
    `inputs` are files to refuse besides those the command noted (`note_input`)."""
    text = str(target)
    if not text:
        raise UsageError("the output file name is empty")
    if text.endswith(("/", os.sep)) or text.endswith(("/.", "/..")) or text in (".", ".."):
        raise UsageError(f"cannot write {text}: the name ends in '/', so it names a directory; "
                         f"give a file name")
    path = Path(text)
    if rewrite:
        path = Path(os.path.realpath(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # a parent is a file: reported below
    except OSError as e:
        raise UsageError(f"cannot write {text}: {e.strerror or e}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"cannot write {text}: it is a directory")
        if stat.S_ISLNK(st.st_mode):
            raise UsageError(f"cannot write {text}: it is a symbolic link (to {os.readlink(path)}); "
                             f"incdsl replaces only regular files: name the file itself")
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"cannot write {text}: it is {_kind(st.st_mode)}, not a regular file; "
                             f"incdsl writes only regular files")
        same = None if rewrite else _INPUTS.get((st.st_dev, st.st_ino)) or next(
            (str(p) for p in inputs if _same_file(p, st)), None)
        if same is not None:
            raise UsageError(f"cannot write {text}: it is {_input_words(same, text)}; "
                             f"writing it would destroy it")
        if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise UsageError(f"cannot write {text}: the file is read-only")
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop in a parent
        raise UsageError(f"cannot write {text}: {getattr(e, 'strerror', None) or e}") from None
    given = _INPUT_PATHS.get(real) or next((str(p) for p in inputs if _resolved(p) == real), None)
    if given is not None and not rewrite:
        raise UsageError(f"cannot write {text}: it is {_input_words(given, text)}; "
                         f"writing it would destroy it")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UsageError(f"cannot write {text}: {blocking} is a file, not a directory")
    return path


def _same_file(path: str | Path, st: os.stat_result) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


def _resolved(path: str | Path) -> Path | None:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return None


def _input_words(source: str, target: str) -> str:
    return "an input of this command" if source == target else f"an input of this command ({source})"


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _existing_parent(path: Path) -> Path:
    parent = path.parent
    while not parent.is_dir():
        parent = parent.parent
    return parent


def _remove(p: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink()


def clean_stale(folder: Path, name: str) -> list[Path]:
    """Remove the temp files for `name` in `folder` that a killed incdsl left (named
    `.incdsl-PID-XXXXXXXX.NAME`, their PID no longer running); returns the paths removed (empty
    when `folder` cannot be listed). Another user's live process keeps its files."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.fullmatch(entry.name)
        if m is None or m.group(2) != name or _alive(int(m.group(1))):
            continue
        try:  # our temp outputs are regular files of our own: never a folder, a link or another user's
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            continue
        _remove(Path(entry.path))
        removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:  # kill(0, 0) asks about our own process group and succeeds: no writer has pid 0
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except (OverflowError, ValueError):  # a number too large to be a pid
        return False
    return True


@contextlib.contextmanager
def atomic_path(path: str | Path, rewrite: bool = False, inputs: Iterable[str | Path] = ()):
    """Yield a temporary path (ending in the target's own name, so writers that check the
    suffix, like Keras, accept it); on success it replaces `path`, on any failure, Ctrl-C or
    SIGTERM it is removed. Raises UsageError for a target `check_output` refuses (`rewrite`,
    `inputs`: see there)."""
    path = check_output(path, rewrite, inputs)
    home = _existing_parent(path)
    clean_stale(home, path.name)
    tmp = home / f".incdsl-{os.getpid()}-{secrets.token_hex(4)}.{path.name}"
    try:  # can we write here at all? (a writer's own error for a read-only folder may be anything)
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(tmp)  # some writers (Keras) refuse to overwrite an existing file: let them create it
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e} (in {home})") from None
    created: list[Path] = []
    try:
        yield tmp
        if not tmp.exists():
            raise UsageError(f"cannot write {path}: the writer produced no file")
        check_output(path, rewrite)  # the target may have changed while the writer ran
        with contextlib.suppress(OSError):
            os.chmod(tmp, _mode_for(path))
        for parent in reversed(path.parents):
            if not parent.exists():
                parent.mkdir()
                created.append(parent)
        os.replace(tmp, path)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        _remove(tmp)
        if created and not path.exists():
            for parent in reversed(created):
                with contextlib.suppress(OSError):
                    parent.rmdir()


def _mode_for(path: Path) -> int:
    """The mode the target keeps, or what a new file gets under the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: str | Path, data: bytes | str, inputs: Iterable[str | Path] = ()) -> None:
    """Write `data` to `path` through `atomic_path` (refusing `inputs` too)."""
    with atomic_path(path, inputs=inputs) as tmp:
        Path(tmp).write_bytes(data.encode() if isinstance(data, str) else data)
