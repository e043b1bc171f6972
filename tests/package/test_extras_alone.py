"""Issue 23, item 2: each extra works alone, in a real fresh venv (tests/freshvenv.py; no
`sys.modules` tricks): the bare package runs the front end with nothing heavy installed; `[onnx]`
exports and verifies Inception v3 without Keras; `[tf]` brings TensorFlow, tf2onnx and
tf.distribute; `[all]` everything. ([jax] and [torch] are the training tests' part.)"""
from __future__ import annotations

import json
import subprocess

import pytest

from conftest import SPECS
from freshvenv import TORCH_CPU, fresh_venv, has_module, venv_env

HEAVY = ("tensorflow", "keras", "torch", "jax", "onnx", "onnxruntime", "tf2onnx", "matplotlib", "h5py", "PIL")
SMALL = ["--set", "width=0.25", "--set", "size=75", "--set", "classes=10", "--set", "aux=false"]


def _run(venv, tmp_path, *args, env=None, timeout=900):
    return subprocess.run([str(venv / "bin" / "incdsl"), *map(str, args)], capture_output=True, text=True,
                          cwd=tmp_path, env=env or venv_env(venv, tmp_path), timeout=timeout)


def _lsp_session(venv, tmp_path) -> str:
    """`incdsl lsp` over stdio: initialize, open a spec with an error, shut down; its output."""
    bad = (tmp_path / "bad.inc").as_uri()
    msgs = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None,
                                                                            "capabilities": {}}},
            {"jsonrpc": "2.0", "method": "initialized", "params": {}},
            {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": bad, "languageId": "incdsl", "version": 1,
                "text": "network n {\n  input 8x8x3\n  output o = nope(3)\n}\n"}}},
            {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None},
            {"jsonrpc": "2.0", "method": "exit", "params": None}]
    data = b"".join(b"Content-Length: %d\r\n\r\n%s" % (len(b),
                                                       b) for b in (json.dumps(m).encode() for m in msgs))
    p = subprocess.run([str(venv / "bin" / "incdsl"), "lsp"], input=data, capture_output=True, timeout=120,
                       cwd=tmp_path, env=venv_env(venv, tmp_path))
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


@pytest.mark.slow
def test_bare_incdsl_runs_the_front_end_with_nothing_heavy(tmp_path):
    venv = fresh_venv("")
    for m in ("lark", "networkx", "numpy", "pygls"):
        assert has_module(venv, m), m
    assert [m for m in HEAVY if has_module(venv, m)] == []  # really bare
    v3, g, tv = SPECS / "inception_v3.inc", SPECS / "googlenet.inc", SPECS / "googlenet_tv.inc"
    for args, want in [
        (["check", v3], "ok"),
        (["summary", v3, "--depth", "1"], "mixed10"),
        (["expand", tv], "inception3a"),
        (["compare", v3, "--sweep", "width=0.5,1.0"], "width"),
        (["fit", v3, "--params", "10M", "--vary", "width"], "width"),
        (["diff", g, tv], ""),
        (["fmt", "--check", g], ""),
        (["compile", g, "--to", "dot", "-o", "g.dot"], "wrote g.dot"),
        (["compile", g, "--to", "html", "-o", "g.html"], "wrote g.html"),
    ]:
        p = _run(venv, tmp_path, *args)
        assert p.returncode in (0, 1) if args[0] == "diff" else p.returncode == 0, (args, p.stdout, p.stderr)
        assert want in p.stdout + p.stderr and "Traceback" not in p.stderr, (args, p.stdout[-2000:],
                                                                             p.stderr[-2000:])
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    out = _lsp_session(venv, tmp_path)
    assert '"capabilities"' in out and "publishDiagnostics" in out and "nope" in out, out[-3000:]
    # what needs an extra says which one, exit 2, nothing written
    p = _run(venv, tmp_path, "compile", v3, "--to", "onnx", "-o", "v3.onnx")
    assert p.returncode == 2 and "incdsl[onnx]" in p.stderr and "Traceback" not in p.stderr, p.stderr
    p = _run(venv, tmp_path, "compile", v3, "--to", "keras", "-o", "v3.keras")
    assert p.returncode == 2 and "incdsl[" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "v3.onnx").exists() and not (tmp_path / "v3.keras").exists()


@pytest.mark.slow
def test_onnx_extra_alone_exports_and_verifies_inception_v3(tmp_path):
    """`pip install incdsl[onnx]`: no Keras, TensorFlow, torch or JAX; `compile --to onnx` verified
    with onnxruntime against the numpy reference; PyTorch weights from .safetensors read without
    torch; what needs Keras (--verify keras, --via tf2onnx) is refused with the extra to install."""
    venv = fresh_venv("onnx")
    assert [m for m in ("keras", "tensorflow", "torch", "jax", "tf2onnx") if has_module(venv, m)] == []
    p = _run(venv, tmp_path, "compile", SPECS / "inception_v3.inc", "--to", "onnx", "-o", "v3.onnx")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "onnx checker (full)" in p.stdout and "125 of 125 layer tensors" in p.stdout
    assert "onnxruntime vs incdsl's numpy reference on a random batch of 1" in p.stdout
    assert (tmp_path / "v3.onnx").stat().st_size > 90e6
    # PyTorch weights in safetensors, read where torch is not installed (made here, with torch)
    import torch
    import torchvision
    from safetensors.torch import save_file
    torch.manual_seed(0)
    st = tmp_path / "googlenet.safetensors"
    save_file(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).state_dict(),
              str(st))
    g = _run(venv, tmp_path, "compile", SPECS / "googlenet_tv.inc", "--to", "onnx", "--set", "aux=false",
             "--weights", st, "-o", "g.onnx")
    assert g.returncode == 0 and "onnxruntime vs incdsl's numpy reference" in g.stdout, g.stdout + g.stderr
    for extra in (["--via", "tf2onnx"], ["--verify", "keras"]):
        p = _run(venv, tmp_path, "compile", SPECS / "inception_v3.inc", "--to", "onnx", *extra, "-o",
                 "t.onnx")
        assert p.returncode == 2 and "pip install 'incdsl[" in p.stderr and "Traceback" not in p.stderr, (
            p.stderr
        )
    assert not (tmp_path / "t.onnx").exists()


@pytest.mark.slow
def test_tf_extra_alone_has_tensorflow_tf2onnx_and_tf_distribute(tmp_path):
    """`pip install incdsl[tf]`: TensorFlow (tf.distribute), tf2onnx and Keras on TensorFlow, no
    torch or JAX: --to keras, --via tf2onnx verified against Keras, a MirroredStrategy run."""
    venv = fresh_venv("tf")
    assert all(has_module(venv, m) for m in ("tensorflow", "tf2onnx", "keras", "onnxruntime"))
    assert [m for m in ("torch", "jax") if has_module(venv, m)] == []
    env = venv_env(venv, tmp_path, TF_CPP_MIN_LOG_LEVEL="3")
    spec = SPECS / "inception_v3.inc"
    p = _run(venv, tmp_path, "compile", spec, "--to", "keras", *SMALL, "-o", "s.keras", env=env)
    assert p.returncode == 0 and "wrote s.keras" in p.stdout, p.stdout + p.stderr
    p = _run(venv, tmp_path, "compile", spec, "--to", "onnx", "--via", "tf2onnx", "--verify", "keras", *SMALL,
             "-o", "t.onnx", env=env)
    assert p.returncode == 0 and "onnxruntime vs Keras" in p.stdout, p.stdout + p.stderr
    code = ("import tensorflow as tf\ns = tf.distribute.MirroredStrategy()\n"
            "with s.scope():\n    v = tf.Variable(1.0)\n"
            "print(type(s).__name__, s.num_replicas_in_sync, float(v.numpy()))")
    d = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert d.returncode == 0 and d.stdout.split() == ["MirroredStrategy", "1",
                                                      "1.0"], d.stdout + d.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch", "onnx"])
def test_all_extra_has_every_backend(tmp_path, backend):
    """`pip install incdsl[all]` (torch pinned to its CPU build): every Keras backend builds the
    model, ONNX verifies against Keras, the plot and LSP packages are there. One venv; one test
    per backend, so that pytest-xdist runs them side by side."""
    venv = fresh_venv("all", TORCH_CPU)
    for m in ("tensorflow", "tf2onnx", "keras", "jax", "torch", "onnx", "onnxruntime", "matplotlib", "pydot",
              "pygls"):
        assert has_module(venv, m), m
    spec = SPECS / "inception_v3.inc"
    if backend == "onnx":
        p = _run(venv, tmp_path, "compile", spec, "--to", "onnx", "--verify", "keras", *SMALL, "-o", "v.onnx",
                 env=venv_env(venv, tmp_path, TF_CPP_MIN_LOG_LEVEL="3"))
        assert p.returncode == 0 and "onnxruntime vs Keras" in p.stdout, p.stdout + p.stderr[-3000:]
        return
    env = venv_env(venv, tmp_path, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    p = _run(venv, tmp_path, "compile", spec, "--to", "keras", *SMALL, "-o", f"{backend}.keras", env=env)
    assert p.returncode == 0 and f"wrote {backend}.keras" in p.stdout, (backend, p.stdout + p.stderr[-3000:])
