"""Issue 25, `--address HOST:PORT` to a cluster of Ray's own `ray start --head` (slow: starts a Ray
head and trains one tiny variant). Ray 2.60 starts such a head with token authentication where a
token exists on the machine: a driver without the token was refused after ~21 s of warnings and a
bare ConnectionError; now it fails within seconds naming the fix, and one that has the token
(RAY_AUTH_TOKEN_PATH, as ~/.ray/auth_token) sends it and trains."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from test_explore import TINY

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ray_start_head_with_token_auth_is_joined_with_the_token_or_refused_quickly(tmp_path):
    head_home, home = tmp_path / "head", tmp_path / "home"  # not the machine's own ~/.ray/auth_token
    head_home.mkdir()
    home.mkdir()
    spec = tmp_path / "tiny.inc"
    spec.write_text(TINY.replace("classes=3", "classes=10"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    base.update(HOME=str(home), KERAS_BACKEND="jax", PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    temp = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths live under it
    port = free_port()
    # the head node's machine has a token (any local Ray writes one): `ray start --head` turns auth on
    made = subprocess.run([str(RAY), "get-auth-token", "--generate"], env={**base, "HOME": str(head_home)},
                          capture_output=True, text=True, timeout=120)
    token = head_home / ".ray" / "auth_token"
    assert made.returncode == 0 and token.is_file(), made.stdout + made.stderr
    head = subprocess.run([str(RAY), "start", "--head", "--port", str(port), "--num-cpus", "1",
                           "--include-dashboard", "false", "--temp-dir", temp, "--node-ip-address",
                           "127.0.0.1"],
                          env={**base, "HOME": str(head_home)},
                          capture_output=True, text=True, timeout=120)
    try:
        assert head.returncode == 0, head.stdout + head.stderr
        address = f"127.0.0.1:{port}"
        start = time.monotonic()
        bare = subprocess.run([sys.executable, "-m", "incdsl", "explore", str(spec), "--data", "synthetic",
                               "--epochs", "1", "--address", address, "-o", str(tmp_path / "refused")],
                              env=base, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - start
        assert bare.returncode == 2, bare.stdout + bare.stderr
        assert f"the Ray cluster at {address} uses token authentication" in bare.stderr
        assert "RAY_AUTH_MODE=disabled" in bare.stderr and "ray get-auth-token" in bare.stderr
        # one screen, none of Ray's per-second warnings, and quick (Ray alone took ~21 s)
        assert "gcs_client" not in bare.stderr and len(bare.stderr.splitlines()) <= 3, bare.stderr
        assert took < 15, took
        assert not (tmp_path / "refused").exists()

        exp = tmp_path / "exp"
        run = subprocess.run([sys.executable, "-m", "incdsl", "explore", str(spec), "--data", "synthetic",
                              "--epochs", "1", "--batch-size", "8", "--address", address, "-o", str(exp)],
                             env={**base, "RAY_AUTH_TOKEN_PATH": str(token)}, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        rows = json.loads((exp / "results.json").read_text())["rows"]
        assert [r["state"] for r in rows] == ["done"], run.stdout
    finally:
        # end this head's processes by their ids (never `ray stop`: it ends every Ray of the machine)
        pids = subprocess.run(["pgrep", "-f", temp], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(temp, ignore_errors=True)
