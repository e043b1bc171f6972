"""Weights and model files that try to make incdsl read what it was not given or exhaust memory
(issue 24 #4, #7, #12): HDF5 external datasets, external links and virtual datasets inside a
`.keras`, a `.weights.h5` or a legacy `.h5`; zip members that inflate to 1 GiB; a stored network
name that is not an identifier. Each is refused with a clear error, exit 1, and no output."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from incdsl.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="jax")
SPEC = "network k() {\n  input 8x8x3\n  conv(4, 3)\n  gap\n  dense(3)\n}\n"
SECRET = b"TOPSECRET-BYTES!" * 64  # 1,024 bytes: 256 float32s, of which a kernel would take 108
GIB = 1 << 30


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The spec, a good .keras compiled from it, its model.weights.h5 alone, and a secret file."""
    d = tmp_path_factory.mktemp("untrusted")
    (d / "spec.inc").write_text(SPEC)
    assert cli.main(["compile", str(d / "spec.inc"), "--to", "keras", "-o", str(d / "good.keras")]) == 0
    with zipfile.ZipFile(d / "good.keras") as z:
        (d / "good.weights.h5").write_bytes(z.read("model.weights.h5"))
    (d / "secret").write_bytes(SECRET)
    return d


def _kernel(f: h5py.File) -> str:
    """The path of the conv kernel (the only 4-D dataset) in a Keras 3 weights file."""
    found = []
    f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 4 else None)
    return found[0]


def evil_h5(made: Path, kind: str, out: Path) -> Path:
    """A copy of the good weights whose conv kernel reads the secret file: as external storage, an
    external link, or a virtual dataset over another HDF5 file holding the secret."""
    out.write_bytes((made / "good.weights.h5").read_bytes())
    with h5py.File(out, "r+") as f:
        k = _kernel(f)
        shape, dtype = f[k].shape, f[k].dtype
        del f[k]
        if kind == "external":
            f.create_dataset(k, shape=shape, dtype=dtype,
                             external=[(str(made / "secret"), 0, int(np.prod(shape)) * 4)])
        else:
            other = made / f"other-{out.stem}.h5"
            with h5py.File(other, "w") as o:
                o["x"] = np.frombuffer(SECRET, np.float32)[: int(np.prod(shape))].reshape(shape)
            if kind == "link":
                f[k] = h5py.ExternalLink(str(other), "/x")
            else:
                layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
                layout[...] = h5py.VirtualSource(str(other), "x", shape=shape)
                f.create_virtual_dataset(k, layout)
    return out


def repack(src: Path, out: Path, replace: dict) -> Path:
    """`src` (a zip) with some members' bytes replaced (name -> bytes, or -> a callable that writes
    the member to a file object, for members too big to hold)."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as o:
        for info in z.infolist():
            new = replace.get(info.filename, z.read(info))
            if callable(new):
                with o.open(info.filename, "w", force_zip64=True) as w:
                    new(w)
            else:
                o.writestr(info.filename, new)
    return out


def _no_secret_anywhere(d: Path) -> None:
    for p in d.iterdir():
        if p.is_file() and p.name != "secret" and not p.name.startswith("other-"):
            assert SECRET[:32] not in p.read_bytes(), p


KINDS = {"external": "HDF5 external storage", "link": "HDF5 external link", "virtual": "HDF5 virtual dataset"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_compile_to_onnx_refuses_a_keras_file_whose_kernel_is_stored_elsewhere(made, tmp_path, capsys, kind):
    # the exact case: incdsl compile spec.inc --to onnx --weights evil.keras
    h5 = evil_h5(made, kind, tmp_path / "evil.weights.h5")
    evil = repack(made / "good.keras", tmp_path / "evil.keras", {"model.weights.h5": h5.read_bytes()})
    out = tmp_path / "m.onnx"
    code = cli.main(["compile", str(made / "spec.inc"), "--to", "onnx", "--weights", str(evil), "-o",
                     str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert KINDS[kind] in err and "incdsl reads only the file it was given" in err
    assert "Traceback" not in err and "internal error" not in err
    assert not out.exists()
    _no_secret_anywhere(tmp_path)


@pytest.mark.parametrize("kind", list(KINDS))
def test_library_onnx_weights_reader_refuses_it_too(made, tmp_path, kind):
    import incdsl
    from incdsl.backends.onnx.weights import load_weights
    from incdsl.errors import SpecError
    h5 = evil_h5(made, kind, tmp_path / "evil.weights.h5")
    evil = repack(made / "good.keras", tmp_path / "evil.keras", {"model.weights.h5": h5.read_bytes()})
    net = incdsl.load(made / "spec.inc")
    for path in (evil, h5):  # the .keras read with h5py, the .weights.h5 handed to Keras
        with pytest.raises(SpecError, match=KINDS[kind]):
            load_weights(net, path)


@pytest.mark.parametrize("command", ["onnx", "keras"])
def test_a_weights_h5_with_an_external_kernel_is_refused_by_both_backends(made, tmp_path, capsys, command):
    h5 = evil_h5(made, "external", tmp_path / "evil.weights.h5")
    out = tmp_path / f"m.{command}"
    code = cli.main(["compile", str(made / "spec.inc"), "--to", command, "--weights", str(h5), "-o",
                     str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "HDF5 external storage" in err and str(made / "secret") in err, err
    assert not out.exists()


def test_a_legacy_h5_with_an_external_link_is_refused(made, tmp_path, capsys):
    legacy = tmp_path / "legacy.h5"
    with h5py.File(legacy, "w") as f:  # keras.applications' layout, with one weight elsewhere
        f.attrs["layer_names"] = [b"conv"]
        g = f.create_group("conv")
        g.attrs["weight_names"] = [b"conv/kernel:0"]
        with h5py.File(made / "other-legacy.h5", "w") as o:
            o["k"] = np.frombuffer(SECRET, np.float32)[:108].reshape(3, 3, 3, 4)
        g["conv/kernel:0"] = h5py.ExternalLink(str(made / "other-legacy.h5"), "/k")
    code = cli.main(["compile", str(made / "spec.inc"), "--to", "onnx", "--weights", str(legacy),
                     "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 1 and "HDF5 external link" in err, err


def test_import_and_predict_refuse_the_evil_keras_file(made, tmp_path, capsys):
    h5 = evil_h5(made, "virtual", tmp_path / "evil.weights.h5")
    evil = repack(made / "good.keras", tmp_path / "evil.keras", {"model.weights.h5": h5.read_bytes()})
    code = cli.main(["import", str(evil), "-o", str(tmp_path / "i.inc")])
    err = capsys.readouterr().err
    assert code == 1 and "HDF5 virtual dataset" in err, err
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    code = cli.main(["predict", str(evil), str(tmp_path / "a.png")])
    err = capsys.readouterr().err
    assert code == 1 and "HDF5 virtual dataset" in err, err
    _no_secret_anywhere(tmp_path)


def test_a_stored_network_name_that_is_not_an_identifier_says_what_is_wrong(made, tmp_path, capsys):
    # issue 24 #12: "a bug in incdsl import" before
    meta = json.loads(zipfile.ZipFile(made / "good.keras").read("incdsl_spec.json"))
    meta["network"] = "two words\nerror: forged"
    bad = repack(made / "good.keras", tmp_path / "bad.keras", {"incdsl_spec.json": json.dumps(meta).encode()})
    code = cli.main(["import", str(bad), "-o", str(tmp_path / "b.inc")])
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "its incdsl_spec.json names the network 'two words\\nerror: forged', which is not an identifier"
        in err
    )
    assert "bug in incdsl" not in err and not [l for l in err.splitlines() if l.startswith("error: forged")]


@pytest.mark.parametrize("word", ["network", "module", "concat", "repeat", "output"])
def test_a_stored_network_name_that_is_a_keyword_says_what_is_wrong(made, tmp_path, capsys, word):
    """Review of issue 24: a keyword for a name passed the identifier check and ended in "a bug in
    incdsl import"."""
    meta = json.loads(zipfile.ZipFile(made / "good.keras").read("incdsl_spec.json"))
    meta["network"] = word
    bad = repack(made / "good.keras", tmp_path / "bad.keras", {"incdsl_spec.json": json.dumps(meta).encode()})
    assert cli.main(["import", str(bad), "-o", str(tmp_path / "b.inc")]) == 1
    err = capsys.readouterr().err
    assert f"names the network '{word}', a word of the language" in err and "bug in incdsl" not in err, err


# --- zip bombs (issue 24 #7) ----------------------------------------------------------------------

def _zeros(size: int):
    def write(w):
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            w.write(chunk)
    return write


@pytest.fixture(scope="module")
def bombs(made):
    """~1 MB files each of whose named member inflates to 1 GiB."""
    d = made / "bombs"
    d.mkdir()
    out = {}
    for member in ("incdsl_spec.json", "model.weights.h5", "config.json"):
        out[member] = repack(made / "good.keras", d / f"{member.split('.')[0]}.keras", {member: _zeros(GIB)})
    import torch
    state = {"conv_1.weight": torch.zeros(4, 3, 3, 3), "conv_1.bias": torch.zeros(4),
             "dense_1.weight": torch.zeros(3, 4), "dense_1.bias": torch.zeros(3)}
    torch.save(state, d / "good.pth")
    record = next(n for n in zipfile.ZipFile(d / "good.pth").namelist() if "/data/" in n)
    out["pth"] = repack(d / "good.pth", d / "bomb.pth", {record: _zeros(GIB)})
    for p in out.values():
        assert p.stat().st_size < 2 * 1024 * 1024, p
    return out


# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of a big pytest process
# would report the parent's size; VmHWM is the new program's own
_PEAK = """
import sys
from incdsl.cli import main as cli
code = cli.main(sys.argv[1:])
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print("PEAK", int(hwm) * 1024, "CODE", code, file=sys.stderr)
"""
BOUND = 900 * 1024 * 1024  # the program itself (Keras, torch) takes less; 1 GiB inflated would not fit


def _peak(args) -> tuple[int, int, str]:
    r = subprocess.run([sys.executable, "-c", _PEAK, *map(str, args)], capture_output=True, text=True,
                       env=ENV, timeout=600)
    last = r.stderr.strip().splitlines()[-1].split()
    return int(last[1]), int(last[3]), r.stderr


@pytest.mark.slow  # four subprocesses that load Keras or torch, and 4 GiB deflated once
@pytest.mark.parametrize("which, command", [
    ("incdsl_spec.json", ["import", "{f}", "-o", "{d}/x.inc"]),
    ("model.weights.h5", ["compile", "{spec}", "--to", "onnx", "--weights", "{f}", "-o", "{d}/x.onnx"]),
    ("model.weights.h5", ["import", "{f}", "-o", "{d}/x.inc"]),
    ("config.json", ["predict", "{f}", "{d}/a.png"]),
    ("pth", ["compile", "{spec}", "--to", "onnx", "--weights", "{f}", "-o", "{d}/x.onnx"]),
])
def test_zip_bombs_are_refused_in_bounded_memory(made, bombs, tmp_path, which, command):
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    args = [a.format(f=bombs[which], d=tmp_path, spec=made / "spec.inc") for a in command]
    peak, code, err = _peak(args)
    assert code == 1, err
    assert "would inflate to 1,073,741,824 bytes" in err and "zip bomb" in err, err
    assert peak < BOUND, f"peak memory {peak:,} bytes"
    assert not any(p.suffix in (".inc", ".onnx") for p in tmp_path.iterdir())


def test_a_bomb_in_a_pth_is_refused_from_the_directory_in_process(made, tmp_path):
    # the library path (load_torch_weights via the ONNX backend), with a small record that lies
    import torch

    import incdsl
    from incdsl.backends.onnx.weights import load_weights
    from incdsl.errors import SpecError
    torch.save({"conv_1.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "good.pth")
    record = next(n for n in zipfile.ZipFile(tmp_path / "good.pth").namelist() if "/data/" in n)
    bomb = repack(tmp_path / "good.pth", tmp_path / "bomb.pth", {record: _zeros(64 << 20)})
    net = incdsl.load(made / "spec.inc")
    with pytest.raises(SpecError, match="would inflate to 67,108,864 bytes"):
        load_weights(net, bomb)
