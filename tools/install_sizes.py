#!/usr/bin/env python3
"""Installed size and set-up time of each extra, and of `tools/demo` on a fresh checkout (issue 23,
items 2 and 4): the figures the README's install section gives.

For each extra (the bare package, [onnx], [jax], [torch] with the CPU build of torch, [tf], [all])
a fresh venv is made under a temporary folder and `pip install '.[EXTRA]'` runs from a copy of this
checkout with an empty pip cache of its own (PIP_CACHE_DIR), so that nothing installed or cached
before helps; the size is `du` of the whole venv (pip and setuptools included) and of its
site-packages. `--demo` instead copies the tracked files of the checkout to a temporary folder and
times `tools/demo` there (its set-up included) with empty pip and uv caches, then sizes its .venv.
Everything is deleted afterwards. Wall time depends on the network and the machine's load;
sizes do not.

    python3 tools/install_sizes.py [--demo] [--extras '' onnx jax torch tf all] [--installer uv]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# torch's CPU build, as tests/freshvenv.py pins it (a plain `torch` takes the CUDA build, several GB)
TORCH_CPU = "torch==2.13.0"
PINS = {"torch": [TORCH_CPU], "all": [TORCH_CPU]}


def du(path: Path) -> int:
    """Bytes of the files under `path` (apparent sizes, each file once)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def tracked_copy(dest: Path) -> Path:
    """The checkout's tracked files (and untracked ones git does not ignore), as a fresh clone has them."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for f in files:
        if f and (ROOT / f.decode()).is_file():
            out = dest / f.decode()
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f.decode(), out)
    return dest


def extra_uv(name: str, tmp: Path) -> tuple[float, int, int]:
    """`extra` with uv, as tests/freshvenv.py installs (tools/venv_installer.py: `uv venv`, then
    `uv pip install` with pip's index settings, from uv's shared cache where it has the wheels).
    The same packages, so the same sizes; the time is not a fresh machine's (wheels cached)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import venv_installer
    if venv_installer.uv_program() is None:
        raise SystemExit("--installer uv: uv is not installed (pip install uv, or the dev extra)")
    venv = tmp / "venv"
    src = tracked_copy(tmp / "src")
    t = time.monotonic()
    venv_installer.create(venv)
    venv_installer.install(venv, f"{src}[{name}]" if name else str(src), *PINS.get(name, []))
    seconds = time.monotonic() - t
    site = next((venv / "lib").glob("python3*/site-packages"))
    return seconds, du(venv), du(site)


def extra(name: str, tmp: Path) -> tuple[float, int, int]:
    """(seconds, venv bytes, site-packages bytes) of a fresh `pip install '.[name]'`."""
    venv, cache = tmp / "venv", tmp / "pip-cache"
    src = tracked_copy(tmp / "src")
    env = {**os.environ, "PIP_CACHE_DIR": str(cache)}
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    target = f"{src}[{name}]" if name else str(src)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check",
                           target, *PINS.get(name, [])], env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t
    if done.returncode != 0:
        raise SystemExit(f"pip install {target} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    site = next((venv / "lib").glob("python3*/site-packages"))
    return seconds, du(venv), du(site)


def demo(tmp: Path) -> tuple[float, int, str]:
    """(seconds, .venv bytes, last lines of its output) of tools/demo on a fresh copy of the checkout."""
    src = tracked_copy(tmp / "src")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PIP_CACHE_DIR"] = str(tmp / "pip-cache")
    env["UV_CACHE_DIR"] = str(tmp / "uv-cache")  # tools/_setup.sh installs with uv: empty as well
    t = time.monotonic()
    done = subprocess.run(["bash", "tools/demo"], cwd=src, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t
    if done.returncode != 0:
        raise SystemExit(
            f"tools/demo failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return seconds, du(src / ".venv"), "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", action="store_true", help="time tools/demo on a fresh copy instead")
    ap.add_argument("--extras", nargs="*", default=["", "onnx", "jax", "torch", "tf", "all"],
                    help="extras to measure ('' is the bare package)")
    ap.add_argument("--installer", choices=("pip", "uv"), default="pip",
                    help="pip with an empty cache (default: a fresh machine's time), or uv as the tests "
                         "install (its shared cache: the same sizes, in a fraction of the time)")
    args = ap.parse_args()
    how = ("uv, its shared cache" if args.installer == "uv" and not args.demo
           else "empty pip cache for each")
    print(f"Python {sys.version.split()[0]}, {os.uname().machine}; {how}; "
          f"pip's find-links/index settings as configured here", flush=True)
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="demo.") as tmp:
            seconds, size, tail = demo(Path(tmp))
        print(f"tools/demo on a fresh copy: {seconds:.0f} s wall (set-up included), .venv {mb(size)}\n{tail}")
        return 0
    print(f"{'install':<16} {'time':>7} {'venv':>9} {'site-packages':>14}", flush=True)
    for name in args.extras:
        with tempfile.TemporaryDirectory(prefix="extra.") as tmp:
            seconds, venv, site = (extra_uv if args.installer == "uv" else extra)(name, Path(tmp))
        label = f"incdsl[{name}]" if name else "incdsl"
        print(f"{label:<16} {seconds:6.0f}s {mb(venv):>9} {mb(site):>14}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
