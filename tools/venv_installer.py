"""How tools/_setup.sh (the .venv of tools/demo and tools/test) and tests/freshvenv.py make a venv
and install into it: with astral's uv when it is there (the `uv` package, which _setup.sh installs
first and the dev extra has, or a `uv` on PATH), else with the standard library's venv and pip.

Why uv: pip unpacks every wheel into every venv and compiles its bytecode, so each fresh venv of
the [all] extra (TensorFlow, torch, JAX: ~3 GB unpacked) cost minutes even with the wheels at
hand; uv unpacks a wheel once into its cache and hardlinks the files into each venv, so a venv
whose wheels are cached takes seconds (tools/bench_fresh_venv.py measures both). Both install the
same packages from the same indexes: pip's configuration (find-links, constraints, extra indexes,
from pip.conf and PIP_* variables) is passed to uv, which does not read it.
`INCDSL_TEST_INSTALLER=pip` forces pip (to compare, or where uv misbehaves).

As a program: `python tools/venv_installer.py VENV ARGS...` is `pip install ARGS` into VENV by
this rule (tools/_setup.sh runs it with the venv's own Python, where it has just installed uv).
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path


@functools.cache
def uv_program() -> str | None:
    """uv's executable, or None when uv is not installed or INCDSL_TEST_INSTALLER=pip."""
    if os.environ.get("INCDSL_TEST_INSTALLER", "") == "pip":
        return None
    try:
        import uv
        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


@functools.cache
def _pip_config() -> tuple[str, ...]:
    """The lines of `pip config list` (KEY='VALUE')."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    return tuple(listed.stdout.splitlines())


def _uv_environment() -> dict[str, str]:
    """This process's environment for uv, with pip's `cert` (a CA bundle, as a TLS-intercepting
    proxy needs) as SSL_CERT_FILE when that is not set: uv reads no pip configuration, and without
    it fails on the index's certificate ('invalid peer certificate: UnknownIssuer')."""
    env = dict(os.environ)
    for line in _pip_config():
        key, _, value = line.partition("=")
        if key.rsplit(".", 1)[-1] == "cert" and "SSL_CERT_FILE" not in env:
            env["SSL_CERT_FILE"] = value.strip().strip("'\"")
    return env


@functools.cache
def _pip_settings() -> tuple[str, ...]:
    """pip's find-links, constraints and indexes (pip.conf and PIP_* variables, as `pip config
    list` reports them) as uv options. A `file:` index that does not exist is left out (pip only
    warns about one; uv would stop)."""
    options: list[str] = []
    for line in _pip_config():
        key, _, value = line.partition("=")
        value = value.strip().strip("'\"")
        flag = {"find-links": "--find-links", "constraint": "--constraint",
                "extra-index-url": "--extra-index-url",
                "index-url": "--index-url"}.get(key.rsplit(".", 1)[-1])
        for item in value.split() if flag else ():
            local = item[len("file://"):] if item.startswith("file://") else None
            if local is not None and not Path(local).exists():
                continue
            if (flag, item) not in zip(options[::2], options[1::2]):
                options += [flag, item]
    if "--extra-index-url" in options:
        # pip takes the best version from all its indexes; uv stops at the first index that has
        # the package unless told otherwise (a local index holding an older ruff hid the newer)
        options += ["--index-strategy", "unsafe-best-match"]
    return tuple(options)


def create(venv: Path) -> None:
    """A new venv at `venv` running this Python (sys.executable)."""
    uv = uv_program()
    cmd = ([uv, "venv", "-q", "--python", sys.executable, str(venv)] if uv
           else [sys.executable, "-m", "venv", str(venv)])
    subprocess.run(cmd, check=True, capture_output=True)


def install(venv: Path, *args: str, again: bool = False, timeout: int = 1800) -> None:
    """`pip install ARGS` into `venv` (uv's `uv pip install` when uv is there); `again`: reinstall
    ARGS alone, without their dependencies, even at the same version. Raises RuntimeError with the
    installer's output when it fails."""
    uv = uv_program()
    py = venv / "bin" / "python"
    if again:
        args = ("--no-deps", "--reinstall" if uv else "--force-reinstall", *args)
    if uv:
        cmd = [uv, "pip", "install", "-q", "--python", str(py), *_pip_settings(), *args]
        # from uv's cache alone first: asking the index whether the cached wheels are still the
        # newest costs ~10 s of network per venv; online only when something is not cached
        env = _uv_environment()
        done = subprocess.run([*cmd, "--offline"], capture_output=True, text=True, timeout=timeout, env=env)
        if done.returncode == 0:
            return
    else:
        cmd, env = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], None
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{'uv pip' if uv else 'pip'} install {' '.join(args)} failed:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-4000:]}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python tools/venv_installer.py VENV PIP_INSTALL_ARGS...")
    try:
        install(Path(sys.argv[1]), *sys.argv[2:])
    except RuntimeError as e:
        sys.exit(str(e))
