"""Bounds on what a user's weights or model file may make incdsl read: zip members that inflate
without bound (a ~1 MB `.keras` whose model.weights.h5 inflates to 1 GiB), and HDF5 files that name
other files (external datasets, external links, virtual datasets: a kernel whose bytes are
/etc/passwd or ~/.ssh/id_rsa).

The limits (checked before anything inflates or a library such as Keras, h5py or torch reads):
- a JSON member (config.json, metadata.json, incdsl_spec.json) or a pickle's data.pkl: JSON_LIMIT;
- any other member (model.weights.h5, a .pth data record): `weights_limit(net)`, 8 bytes per
  parameter of the network plus SLACK (float64 is the widest dtype the readers accept), or without
  a network (`incdsl import`, `incdsl predict`) the larger of FALLBACK_LIMIT and RATIO times its
  compressed size (weights are floats, which deflate hardly at all; a bomb's ratio is ~1,000).
Python's zipfile (also Keras' reader) never returns more than a member's declared size, but a
`read()` of a whole member decompresses all its compressed bytes at once: so each compressed member
is also inflated once in 1 MiB steps, to see that it holds what it declares (`_inflate_within`);
`read_member` reads in chunks with the cap. h5py is imported lazily (the front end never needs it).
"""
from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

from .errors import SpecError, shorten

JSON_LIMIT = 16 * 1024 * 1024  # Inception-ResNet-v2's config.json is about 1 MB
SLACK = 16 * 1024 * 1024  # HDF5's groups and attributes, a state_dict's pickle
FALLBACK_LIMIT = 512 * 1024 * 1024
RATIO = 20
_SMALL = (".json", ".pkl")  # members that are metadata, whatever the network
WEIGHTS_H5 = "model.weights.h5"


def _limit(info: zipfile.ZipInfo, weights: int | None) -> int:
    if info.filename.endswith(_SMALL):
        return JSON_LIMIT
    return weights if weights is not None else max(FALLBACK_LIMIT, RATIO * info.compress_size)


def _why(weights: int | None) -> str:
    return ("8 bytes per parameter of the network, plus 16 MiB" if weights is not None
            else f"{FALLBACK_LIMIT // 2**20} MiB or {RATIO} times its compressed size")


def check_zip(path: str | Path, weights: int | None = None) -> None:
    """Refuse a zip archive (`.keras`, a torch.save `.pth`) any of whose members would inflate
    beyond its limit (module docstring), from the archive's directory, before anything inflates.
    `weights`: `weights_limit(net)` when the network is known. Raises SpecError naming the member;
    a file that is not a zip archive passes (its own reader says what it is)."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return
    total = 0
    for info in infos:
        limit = _limit(info, weights)
        total += info.file_size
        if info.file_size > limit:
            kind = "metadata" if info.filename.endswith(_SMALL) else "weights"
            raise SpecError(
                f"{path}: its member {shorten(info.filename, 80)} would inflate to {info.file_size:,} "
                            f"bytes from {info.compress_size:,}; {kind} are limited to {limit:,} bytes here "
                            f"({'16 MiB' if kind == 'metadata' else _why(weights)})",
                            hint="the file is damaged, or built to exhaust memory (a zip bomb)")
    with zipfile.ZipFile(path) as z:
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                _inflate_within(z, info, path)
    if weights is not None and total > weights + len(infos) * JSON_LIMIT:
        raise SpecError(f"{path}: its members would inflate to {total:,} bytes in all; the network's weights "
                        f"are limited to {weights:,} bytes", hint="were the weights saved from another spec?")


def _inflate_within(z: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> None:
    """Inflate a compressed member in 1 MiB steps, keeping nothing, to see that its data is what its
    directory entry declares: a member that declares 700 bytes and inflates to 1 GiB passes the
    size check, and Keras' and torch's own `read()` would inflate the whole of it at once (zipfile
    hands decompress() every compressed byte when asked for all). zipfile stops at the declared
    size and the CRC then fails: refused here, in constant memory, before those readers run."""
    try:
        with z.open(info) as f:
            while f.read(1 << 20):
                pass
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError,
            zlib.error) as e:
        raise SpecError(
            f"{path}: its member {shorten(info.filename, 80)} does not inflate to the {info.file_size:,} "
                        f"bytes its directory declares ({shorten(str(e), 80)})",
                        hint="the file is damaged, or built to exhaust memory (a zip bomb)") from None


def read_member(z: zipfile.ZipFile, name: str, limit: int, path) -> bytes:
    """The member `name` of the open archive `z`, read in 1 MiB chunks and refused (SpecError) as
    soon as it passes `limit` bytes, whatever its directory entry says."""
    out = io.BytesIO()
    copy_member(z, name, limit, path, out)
    return out.getvalue()


def copy_member(z: zipfile.ZipFile, name: str, limit: int, path, out) -> None:
    """Copy the member `name` of the open archive `z` into the binary file object `out`, in 1 MiB
    chunks, refused (SpecError) as soon as it passes `limit` bytes, whatever its directory entry
    says (`read_member`, without holding the member in memory)."""
    info = z.getinfo(name)
    if info.file_size > limit:
        raise SpecError(
            f"{path}: its {name} would inflate to {info.file_size:,} bytes; the limit is {limit:,}",
                        hint="the file is damaged, or built to exhaust memory (a zip bomb)")
    size = 0
    try:
        with z.open(info) as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)
                size += len(chunk)
                if size > limit:
                    raise SpecError(f"{path}: its {name} inflates beyond {limit:,} bytes",
                                    hint="the file is damaged, or built to exhaust memory (a zip bomb)")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError, zlib.error) as e:
        raise SpecError(f"{path} is a damaged zip archive: its {shorten(name, 80)} cannot be read "
                        f"({shorten(str(e), 120)})") from None


def member_limit(z: zipfile.ZipFile, name: str, weights: int | None = None) -> int:
    """The most bytes the member `name` of the open archive `z` may inflate to (module docstring);
    `weights` as for `check_zip`."""
    return _limit(z.getinfo(name), weights)


def check_h5(source, shown, limit: int | None = None) -> None:
    """Refuse an HDF5 file (a path, or the bytes of a `.keras` archive's model.weights.h5) that
    stores a dataset outside itself (external storage, a virtual dataset) or holds an external
    link, and one whose datasets would take more than `limit` bytes once read (a compressed
    dataset can inflate like a zip member; without a limit, FALLBACK_LIMIT or RATIO times the
    file's size). `shown` names the file in the SpecError. A file h5py
    cannot open passes: its reader says what is wrong with it."""
    import h5py

    if limit is None:  # no network to size it by: as for a zip member without one
        size = len(source) if isinstance(source, (bytes, bytearray)) else Path(source).stat().st_size
        limit = max(FALLBACK_LIMIT, RATIO * size)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        f = h5py.File(source, "r")
    except (OSError, ValueError):
        return
    try:
        with f:
            _walk(f, shown, limit)
    except SpecError:
        raise
    except Exception as e:  # noqa: BLE001 - h5py raises RuntimeError, KeyError, ... for a damaged file
        raise SpecError(f"{shown} is a damaged HDF5 file "
                        f"({shorten(str(e).splitlines()[0] if str(e) else type(e).__name__, 120)})",
                        hint="save the weights again") from None


def _walk(f, shown, limit: int) -> None:
    import h5py

    total, seen, todo = 0, set(), [f]
    while todo:
        group = todo.pop()
        for name in group:
            link = group.get(name, getlink=True)
            where = f"{group.name.rstrip('/')}/{name}"
            if isinstance(link, h5py.ExternalLink):
                raise SpecError(
                    f"{shown}: {where} is an HDF5 external link to {shorten(link.filename, 120)}; "
                                f"incdsl reads only the file it was given",
                                hint="save the weights again with Keras, which stores every array inside")
            if isinstance(link, h5py.SoftLink):
                continue  # names an object of this file, reached by its own hard link
            obj = group.get(name)
            if obj is None or obj.id in seen:  # a group hard-linked twice (or into itself)
                continue
            seen.add(obj.id)
            if isinstance(obj, h5py.Group):
                todo.append(obj)
            elif isinstance(obj, h5py.Dataset):
                total += _dataset_bytes(obj, where, shown)
                if limit is not None and total > limit:
                    raise SpecError(f"{shown}: its datasets would take more than {limit:,} bytes once read, "
                                    f"the limit for this network's weights",
                                    hint="the file is damaged, or built to exhaust memory")


def _dataset_bytes(ds, where: str, shown) -> int:
    import h5py

    plist = ds.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise SpecError(
            f"{shown}: dataset {where} is an HDF5 virtual dataset, whose data lies in other files; "
                        f"incdsl reads only the file it was given",
                        hint="save the weights again with Keras, which stores every array inside")
    if plist.get_external_count() > 0:
        target = plist.get_external(0)[0].decode(errors="replace")
        raise SpecError(
            f"{shown}: dataset {where} keeps its data in another file ({shorten(target, 120)}: HDF5 "
                        f"external storage); incdsl reads only the file it was given",
                        hint="save the weights again with Keras, which stores every array inside")
    return int(ds.size) * ds.dtype.itemsize


def check_weights_archive(path: str | Path, weights: int | None = None) -> None:
    """`check_zip`, then `check_h5` on a `.keras` archive's model.weights.h5 (read with the cap):
    what Keras or our own reader will open is checked before they do. Non-zip files pass."""
    check_zip(path, weights)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return
    with z:
        if WEIGHTS_H5 not in z.namelist():
            return
        info = z.getinfo(WEIGHTS_H5)
        data = read_member(z, WEIGHTS_H5, _limit(info, weights), path)
    check_h5(data, f"{path} ({WEIGHTS_H5})", weights)


def check_weights_input(path: str | Path, limit: int | None = None) -> None:
    """Every check above that applies to the file at `path`, by what it is: a zip archive
    (`.keras`, a torch.save `.pth`) or an HDF5 file (`.h5`, `.weights.h5`). `limit`, when the
    network is known, is its size limit in bytes (`weights.arrays.weights_limit(net)`)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError:
        return  # the reader names what is wrong
    if magic.startswith(b"PK"):
        check_weights_archive(path, limit)
    elif magic == b"\x89HDF\r\n\x1a\n":
        check_h5(str(path), str(path), limit)
