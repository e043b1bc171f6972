"""The devices the Keras backend sees (`incdsl --version`), and what they cannot do
(`--precision mixed_bfloat16` on a GPU without bfloat16 arithmetic).

Each backend is asked in its own words, since Keras 3 has no common device query with memory:
JAX `jax.devices()` (memory from `Device.memory_stats()["bytes_limit"]`), PyTorch `torch.cuda` /
`torch.backends.mps`, TensorFlow `tf.config.list_physical_devices` (it reports no total memory:
`nvidia-smi` gives it where present). Imports the backend's framework when called, never at import.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata

from ...errors import OptionError

# NVIDIA GPUs compute in bfloat16 from compute capability 8.0 (Ampere) on: CUDA's __nv_bfloat16
# arithmetic and cuDNN's bfloat16 convolutions need sm_80; older GPUs cannot run mixed_bfloat16.
BF16_CAPABILITY = (8, 0)


@dataclass(frozen=True)
class Device:
    """One device: `kind` "cpu", "gpu", "tpu" or "mps"; `index` in its kind; `name` as the framework
    says it; `memory` in bytes (None where the framework does not say); `capability` the CUDA compute
    capability (major, minor) of an NVIDIA GPU, else None."""
    kind: str
    index: int
    name: str
    memory: int | None = None
    capability: tuple[int, int] | None = None

    def describe(self) -> str:
        """'gpu:0 NVIDIA H100 80GB HBM3, 79.1 GiB, compute capability 9.0'."""
        parts = [f"{self.kind}:{self.index} {self.name}".rstrip()]
        if self.memory is not None:
            parts.append(f"{self.memory / 2**30:.1f} GiB")
        if self.capability is not None:
            parts.append(f"compute capability {self.capability[0]}.{self.capability[1]}")
        return ", ".join(parts)


def _capability(text) -> tuple[int, int] | None:
    try:
        major, minor = (int(p) for p in str(text).split(".")[:2])
        return major, minor
    except (TypeError, ValueError):
        return None


def _jax_devices() -> list[Device]:
    import jax
    out = []
    for d in jax.devices():  # the default platform's: GPUs (or TPUs) when present, else the CPU
        stats = d.memory_stats() if d.platform != "cpu" else None
        memory = stats.get("bytes_limit") if stats else None
        out.append(Device(d.platform, d.id, getattr(d, "device_kind", ""), memory,
                          _capability(getattr(d, "compute_capability",
                                              None)) if d.platform == "gpu" else None))
    return out


def _torch_devices() -> list[Device]:
    import torch
    out = [Device("cpu", 0, "CPU")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.append(Device("gpu", i, p.name, p.total_memory, (p.major, p.minor)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append(Device("mps", 0, "Apple MPS"))
    return out


def _nvidia_smi_memory() -> dict[int, int]:
    """GPU index -> total memory in bytes, from nvidia-smi where it is installed."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {}
    try:
        done = subprocess.run([smi, "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=20)
        rows = (line.split(",") for line in done.stdout.splitlines() if "," in line)
        return {int(i): int(float(mib)) * 2**20 for i, mib in rows}
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}


def _tf_devices() -> list[Device]:
    import tensorflow as tf
    out = [Device("cpu", 0, "CPU")]
    gpus = tf.config.list_physical_devices("GPU")
    memory = _nvidia_smi_memory() if gpus else {}
    for i, gpu in enumerate(gpus):
        details = tf.config.experimental.get_device_details(gpu)
        cc = details.get("compute_capability")
        out.append(Device("gpu", i, details.get("device_name", gpu.name), memory.get(i),
                          tuple(cc) if cc else None))
    return out


def devices(backend: str) -> list[Device]:
    """The devices Keras backend `backend` ("jax", "torch", "tensorflow") computes on, GPUs with
    their memory. Imports that framework. An unknown backend gives []."""
    query = {"jax": _jax_devices, "torch": _torch_devices, "tensorflow": _tf_devices}.get(backend)
    return query() if query is not None else []


def bf16_unable(found: list[Device]) -> list[Device]:
    """The GPUs among `found` that cannot compute in bfloat16 (compute capability under 8.0)."""
    return [
        d for d in found if d.kind == "gpu" and d.capability is not None and d.capability < BF16_CAPABILITY]


def check_precision(precision: str, backend: str) -> None:
    """Raises OptionError (naming `precision`) when `precision` is mixed_bfloat16 and a GPU the
    backend trains on has no bfloat16 arithmetic (NVIDIA before Ampere, compute capability < 8.0);
    mixed_float16 is what such a GPU offers. CPUs compute bfloat16 (emulated where the CPU lacks it)."""
    if precision != "mixed_bfloat16":
        return
    unable = bf16_unable(devices(backend))
    if unable:
        raise OptionError(
            "{precision} mixed_bfloat16 needs a GPU of compute capability 8.0 or later (NVIDIA Ampere "
                          "on), and {gpus} cannot; use {precision} mixed_float16 or float32",
                          gpus="; ".join(d.describe() for d in unable))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# Each backend's distribution names, the first one found gives its version
DISTS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly"), "jax": ("jax",), "torch": ("torch",)}


def backend_versions() -> dict[str, str | None]:
    """Installed version of each trainable backend (None when absent), without importing any."""
    return {b: next((v for v in map(_version, names) if v), None) for b, names in DISTS.items()}


def version_report() -> tuple[str, bool]:
    """`incdsl --version`: (the report, False when KERAS_BACKEND or keras.json names a backend that
    cannot be used: the command line then exits 2). The report gives
    incdsl's version, Keras' and each backend's, which backend incdsl uses and why
    (keras_backend.choose), and the devices it sees with GPU memory. Imports Keras' backend
    framework to list devices; a backend that cannot be used is said in a line, not raised."""
    from ...version import __version__
    from .backend import BackendError, choose, configured
    lines = [f"incdsl {__version__}"]
    keras = _version("keras")
    have = backend_versions()
    lines.append("Keras " + (keras or "not installed") + "; backends: "
                 + ", ".join(f"{b} {v}" if v else f"{b} not installed" for b, v in have.items()))
    if keras is None:  # the front end's install: nothing is wrong
        return "\n".join(lines), True
    try:
        choice = choose()
    except BackendError as e:  # wrong only where KERAS_BACKEND or keras.json names a bad backend
        lines.append(f"Keras backend: none usable: {e}")
        return "\n".join(lines), configured() is None
    lines.append(f"Keras backend: {choice.describe()}")
    try:
        found = devices(choice.name)
    except Exception as e:  # a broken CUDA install must not stop --version from saying the rest
        from ...errors import shorten
        lines.append(f"devices: cannot list them ({type(e).__name__}: {shorten(str(e), 200)})")
        return "\n".join(lines), True
    gpus = [d for d in found if d.kind == "gpu"]
    lines.append("devices: " + "; ".join(d.describe() for d in found))
    if not gpus:
        lines.append("GPUs: none seen by " + choice.name)
    return "\n".join(lines), True


__all__ = ["Device", "devices", "bf16_unable", "check_precision", "backend_versions", "version_report",
           "BF16_CAPABILITY"]
