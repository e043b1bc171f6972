"""Fuzzing of the files incdsl reads besides specs (issue 24): `.keras` archives, HDF5 weights
(`.weights.h5`), PyTorch `.pth` and `.safetensors` state_dicts and ONNX models, each mutated at the
byte level, inside the zip (one member's bytes, a member dropped, a zip bomb) or inside the HDF5
file (a dataset made external, an external link, a virtual dataset, a new shape or dtype), then
read the way users read them: `incdsl compile SPEC --to onnx --weights FILE` and `incdsl import`.

Findings, as tests/fuzzing.py counts them: `internal` (exit 3, a traceback), `hang` (over the CPU
bound), and `leak`: an output that holds the bytes of the secret file the mutations point at.
Used by tools/fuzz.py (long runs) and tests/cli/test_fuzz_files.py (a small budget).
"""
from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fuzzing import Outcome, mutate, run_argv

SPEC = "network k() {\n  input 8x8x3\n  conv(4, 3, bn=true)\n  gap\n  dense(3)\n}\n"
SECRET = b"FUZZ-SECRET-0123" * 16  # what a mutation points external storage at; never in an output
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 2**63 - 1]


@dataclass(frozen=True)
class Seeds:
    """The seed files (suffix -> bytes), the spec they fit, and the secret file, in folder `root`."""
    root: Path
    spec: Path
    secret: Path
    files: dict


def make_seeds(root: Path) -> Seeds:
    """Write the spec and one valid file of each kind (Keras, torch, onnx and safetensors needed)."""
    import numpy as np
    import torch
    from safetensors.numpy import save_file

    from incdsl.cli import main as cli

    root.mkdir(parents=True, exist_ok=True)
    spec = root / "k.inc"
    spec.write_text(SPEC)
    secret = root / "secret.bin"
    secret.write_bytes(SECRET)
    import h5py
    with h5py.File(secret.with_suffix(".h5"), "w") as f:  # what external links and virtual datasets name
        f["x"] = np.frombuffer(SECRET, np.float32)
    assert cli.main(["compile", str(spec), "--to", "keras", "-o", str(root / "k.keras")]) == 0
    assert cli.main(["compile", str(spec), "--to", "onnx", "-o", str(root / "k.onnx")]) == 0
    with zipfile.ZipFile(root / "k.keras") as z:
        h5 = z.read("model.weights.h5")
    state = {"conv_1.weight": np.zeros((4, 3, 3, 3), np.float32), "bn_1.weight": np.ones(4, np.float32),
             "bn_1.bias": np.zeros(4, np.float32), "bn_1.running_mean": np.zeros(4, np.float32),
             "bn_1.running_var": np.ones(4, np.float32), "dense_1.weight": np.zeros((3, 4), np.float32),
             "dense_1.bias": np.zeros(3, np.float32)}
    save_file(state, str(root / "k.safetensors"))
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, root / "k.pth")
    files = {".keras": (root / "k.keras").read_bytes(), ".weights.h5": h5,
             ".pth": (root / "k.pth").read_bytes(),
             ".safetensors": (root / "k.safetensors").read_bytes(), ".onnx": (root / "k.onnx").read_bytes()}
    return Seeds(root, spec, secret, files)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """One byte-level edit: flip bits, overwrite with an interesting integer, truncate, insert,
    duplicate or delete a chunk."""
    b = bytearray(data)
    if not b:
        return bytes(rng.randbytes(rng.randint(1, 64)))
    kind = rng.choice(["flip", "flip", "int", "truncate", "insert", "duplicate", "delete"])
    at = rng.randrange(len(b))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "int":
        size = rng.choice([1, 2, 4, 8])
        b[at:at + size] = (rng.choice(INTERESTING) % (1 << (8 * size))).to_bytes(size,
                                                                                 rng.choice(["little",
                                                                                             "big"]))
    elif kind == "truncate":
        del b[at:]
    elif kind == "insert":
        b[at:at] = rng.randbytes(rng.randint(1, 32))
    elif kind == "duplicate":
        n = rng.randint(1, 256)
        b[at:at] = b[at:at + n]
    else:
        del b[at:at + rng.randint(1, 256)]
    return bytes(b)


def mutate_h5(rng: random.Random, data: bytes, secret: Path) -> bytes:
    """One structural edit of an HDF5 weights file made with h5py: a dataset's data moved to the
    secret file (external storage), replaced by an external link or a virtual dataset over another
    file, given another shape or dtype, a huge compressed shape, deleted, or a `name` attribute changed."""
    import h5py
    import numpy as np

    buf = io.BytesIO(data)
    try:
        with h5py.File(buf, "r+") as f:
            sets = []
            f.visititems(lambda n, o: sets.append(n) if isinstance(o, h5py.Dataset) else None)
            groups = []
            f.visititems(lambda n, o: groups.append(n) if isinstance(o, h5py.Group) else None)
            if not sets:
                return mutate_bytes(rng, data)
            k = rng.choice(sets)
            shape, dtype = f[k].shape, f[k].dtype
            kind = rng.choice(["external", "link", "virtual", "shape", "dtype", "huge", "delete", "name"])
            if kind != "name":
                del f[k]
            if kind == "external":
                f.create_dataset(k, shape=shape, dtype=dtype,
                                 external=[(str(secret), 0, int(np.prod(shape)) * 4)])
            elif kind == "link":
                f[k] = h5py.ExternalLink(str(secret.with_suffix(".h5")), "/x")
            elif kind == "virtual":
                layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
                layout[...] = h5py.VirtualSource(str(secret.with_suffix(".h5")), "x", shape=shape)
                f.create_virtual_dataset(k, layout)
            elif kind == "shape":
                f[k] = np.zeros(tuple(rng.randint(0, 5) for _ in range(rng.randint(0, 5))), np.float32)
            elif kind == "dtype":
                f[k] = np.zeros(shape, rng.choice([np.float64, np.int8, np.bool_, "S3"]))
            elif kind == "huge":
                f.create_dataset(k, shape=(1 << 28,), dtype="f4", chunks=(1 << 18,), compression="gzip")
            elif kind == "name" and groups:
                f[rng.choice(groups)].attrs["name"] = rng.choice(["", "x\ny", "a-b-c", "conv_1", "\x1b[2J",
                                                                  "q" * 5000])
    except Exception:  # noqa: BLE001 - h5py raises many kinds for a damaged file: mutate its bytes instead
        return mutate_bytes(rng, data)
    return buf.getvalue()


def mutate_zip(rng: random.Random, data: bytes, secret: Path) -> bytes:
    """One edit of a zip archive's members: a member's bytes mutated (JSON as text, HDF5 as HDF5),
    a member dropped or duplicated, or replaced by a 64 MiB zip bomb."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [(i, z.read(i)) for i in z.infolist()]
    except Exception:  # noqa: BLE001 - a damaged archive (zlib.error, BadZipFile, ...): mutate its bytes
        return mutate_bytes(rng, data)
    if not members:
        return mutate_bytes(rng, data)
    i = rng.randrange(len(members))
    info, body = members[i]
    kind = rng.choice(["member", "member", "member", "drop", "duplicate", "bomb"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as z:
        for j, (inf, b) in enumerate(members):
            if j == i:
                if kind == "drop":
                    continue
                if kind == "bomb":
                    with z.open(inf.filename, "w", force_zip64=True) as w:
                        for _ in range(64):
                            w.write(bytes(1 << 20))
                    continue
                if kind == "member":
                    # repeated lines grow it 1,000-fold
                    if inf.filename.endswith(".json") and len(b) < 1 << 20:
                        b = mutate(rng, b.decode("utf-8", "replace")).encode("utf-8",
                                                                             "surrogatepass")[:4 << 20]
                    elif inf.filename.endswith(".h5"):
                        b = mutate_h5(rng, b, secret)
                    else:
                        b = mutate_bytes(rng, b)
                if kind == "duplicate":
                    z.writestr(inf.filename + rng.choice(["", "/", "x"]), b)
            z.writestr(inf.filename, b)
    return out.getvalue()


def mutant(rng: random.Random, seeds: Seeds) -> tuple[str, bytes]:
    """(suffix, bytes) of one mutated file: 1 to 3 edits of a seed, by what the file is."""
    suffix = rng.choice(list(seeds.files))
    data = seeds.files[suffix]
    for _ in range(rng.randint(1, 3)):
        if suffix in (".keras", ".pth") and rng.random() < 0.7:
            data = mutate_zip(rng, data, seeds.secret)
        elif suffix == ".weights.h5" and rng.random() < 0.6:
            data = mutate_h5(rng, data, seeds.secret)
        else:
            data = mutate_bytes(rng, data)
    return suffix, data


def run_file(seeds: Seeds, suffix: str, data: bytes, bound: float, rng: random.Random) -> Outcome:
    """Read a mutated file as users do (compile --to onnx --weights, or import for .onnx/.keras)
    under the CPU `bound`; a `leak` when an output holds the secret's bytes."""
    case = seeds.root / f"case{suffix}"
    case.write_bytes(data)
    out = seeds.root / ("out.inc" if suffix == ".onnx" else "out.onnx")
    if suffix == ".onnx" or (suffix == ".keras" and rng.random() < 0.3):
        out = seeds.root / "out.inc"
        argv = ["import", str(case), "-o", str(out)]
    else:
        argv = ["compile", str(seeds.spec), "--to", "onnx", "--weights", str(case), "-o", str(out)]
    try:
        res = run_argv(argv, bound, " ".join(argv[:1] + argv[2:3]))
        if out.exists() and SECRET[:16] in out.read_bytes():
            return Outcome(res.code, res.seconds, f"{argv[0]}: the output holds the secret file's bytes",
                           "leak")
        return res
    finally:
        case.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
