"""Issue 24 item 7, a member whose directory entry lies: it declares a few hundred bytes and inflates
to 1 GiB. The declared-size check passes it, and Keras' or torch's own whole-member `read()` would
inflate all of it at once (2.9 GB seen in review); incdsl inflates each compressed member once in
1 MiB steps first and refuses it, in constant memory."""
from __future__ import annotations

import struct
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

GIB = 1 << 30


def _lying_zip(path, member: str, declared: int = 700) -> None:
    """A zip whose `member` (deflated zeros, 1 GiB) declares `declared` bytes in its local header
    and in the central directory; a small honest member beside it."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", '{"keras_version": "3.15.1"}')
        if member != "config.json":
            z.writestr("config.json", '{"class_name": "Functional", "config": {}}')
        with z.open(member, "w") as f:
            block = bytes(1 << 20)
            for _ in range(GIB >> 20):
                f.write(block)
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while local != -1:
        n = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30:local + 30 + n] == name:
            struct.pack_into("<I", data, local + 22, declared)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        n = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46:central + 46 + n] == name:
            struct.pack_into("<I", data, central + 24, declared)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


@pytest.mark.slow
@pytest.mark.parametrize("suffix, member", [(".keras", "incdsl.json"), (".keras", "config.json"),
                                            (".keras", "model.weights.h5"), (".pth", "archive/data/0")])
def test_a_member_that_lies_about_its_size_is_refused_in_bounded_memory(tmp_path, suffix, member):
    evil = tmp_path / f"lie{suffix}"
    _lying_zip(evil, member)
    assert evil.stat().st_size < 8 << 20
    assert zipfile.ZipFile(evil).getinfo(member).file_size == 700  # the lie the size check sees
    probe = ("import resource, sys\n"
             "from incdsl.errors import SpecError\n"
             "from incdsl.untrusted import check_zip\n"
             "try:\n    check_zip(sys.argv[1])\nexcept SpecError as e:\n    print(e)\n"
             # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's over exec)
             "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n")
    done = subprocess.run([sys.executable, "-c", probe, str(evil)], capture_output=True, text=True,
                          timeout=300,
                          cwd=ROOT)
    said, peak_kib = done.stdout.strip().rsplit("\n", 1)
    assert f"its member {member} does not inflate to the 700 bytes its directory declares" in said, (
        done.stdout + done.stderr
    )
    assert int(peak_kib) < 200 * 1024, f"peak {int(peak_kib) // 1024} MiB"


@pytest.mark.slow
def test_predict_refuses_a_keras_file_whose_member_lies(tmp_path):
    """The reviewer's case: `incdsl predict` printed classes after inflating 1 GiB (2.94 GB peak)."""
    from PIL import Image
    evil = tmp_path / "lie.keras"
    _lying_zip(evil, "incdsl.json")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    done = subprocess.run([sys.executable, "-m", "incdsl", "predict", str(evil), str(tmp_path / "x.png")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 1 and "does not inflate to the 700 bytes" in done.stderr, (
        done.stdout + done.stderr
    )
