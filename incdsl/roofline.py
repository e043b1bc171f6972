"""A roofline bound: the least time a layer can take on a device, from its FLOPs and the bytes it
must move (Williams, Waterman and Patterson 2009, "Roofline: an insightful visual performance model").

A bound, not a prediction: real layers reach a fraction of peak (kernel launch, occupancy, the
memory hierarchy), so measured times are longer. Counting, per layer and for `batch` images:
- FLOPs: 2 x MACs (conv and dense; what incdsl counts), so elementwise work is left out;
- bytes: the weights once (variable dtype), plus every input read and the output written once
  (activation dtype) -- the least traffic if nothing stays in cache between layers;
- time: max(FLOPs / peak FLOP/s, bytes / bandwidth). A training step is bounded by 3x the forward
  pass (backward computes the gradients of inputs and of weights: twice the forward MACs).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .errors import UsageError
from .passes.memory import PRECISIONS


@dataclass(frozen=True)
class Device:
    """Peak FLOP/s and memory bandwidth (bytes/s) of a device, with where the figures come from."""
    name: str
    flops: float
    bandwidth: float
    source: str = ""


DEVICES = {
    "h200": Device("NVIDIA H200 SXM, dense bf16", 989e12, 4.8e12,
                   "NVIDIA H200 datasheet: 989 TFLOPS bf16 tensor core (dense), 4.8 TB/s HBM3e"),
    "h100": Device("NVIDIA H100 SXM, dense bf16", 989e12, 3.35e12,
                   "NVIDIA H100 datasheet: 989 TFLOPS bf16 (dense), 3.35 TB/s HBM3"),
    "cpu": Device("typical 16-core AVX2 server CPU, fp32", 1.0e12, 100e9,
                  "16 cores x 2 GHz x 32 fp32 FLOP/cycle (two 8-wide FMAs); 8 DDR4-3200 channels ~ 100 GB/s"),
}

_SI = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15}


def _number(text: str, what: str) -> float:
    s = text.strip().lower().replace("_", "")
    unit = s[-1] if s and s[-1] in _SI and s[-1].isalpha() else ""
    try:
        v = float(Decimal(s[:-1] if unit else s)) * _SI[unit]
    except InvalidOperation:
        raise UsageError(f"--device: {what} '{text}' is not a number (989T, 4.8e12)") from None
    if not v > 0:
        raise UsageError(f"--device: {what} must be positive, got '{text}'")
    return v


def parse_device(text: str) -> Device:
    """A built-in profile name (h200, h100, cpu) or `FLOPS,BYTES_PER_S` (989T,4.8T or 989e12,4.8e12).
    Raises UsageError otherwise."""
    key = text.strip().lower()
    if key in DEVICES:
        return DEVICES[key]
    parts = text.split(",")
    if len(parts) != 2:
        raise UsageError(f"--device {text}: give a profile ({', '.join(DEVICES)}) or FLOPS,BYTES_PER_S")
    flops, bw = _number(parts[0], "peak FLOP/s"), _number(parts[1], "bandwidth")
    return Device(f"{flops:.4g} FLOP/s, {bw:.4g} B/s", flops, bw, "--device")


@dataclass(frozen=True)
class LayerBound:
    """One layer at `batch` images: FLOPs, bytes moved, and the bound in seconds."""
    flops: int
    bytes: int
    seconds: float
    compute_bound: bool


def _elems(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def layer_bounds(net, device: Device, batch: int = 1, precision: str = "float32") -> dict[str, LayerBound]:
    """Per layer forward bound (module docstring). KeyError on an unknown precision."""
    var_b, act_b = PRECISIONS[precision]
    out = {}
    for name, layer in net.layers.items():
        c = net.counts[name]
        flops = 2 * c.macs * batch
        moved = c.params * var_b + batch * act_b * (
            sum(_elems(net.shapes[i]) for i in layer.inputs) + (_elems(net.shapes[name]) if layer.inputs else 0))
        t_c, t_m = flops / device.flops, moved / device.bandwidth
        out[name] = LayerBound(flops, moved, max(t_c, t_m), t_c >= t_m)
    return out


def network_bound(net, device: Device, batch: int = 1, precision: str = "float32",
                  inference: bool = True, training: bool = False) -> float:
    """Seconds: the sum of the layers' bounds (inference layers only unless `inference` is False);
    times 3 for a training step."""
    per = layer_bounds(net, device, batch, precision)
    t = sum(b.seconds for n, b in per.items() if not (inference and net.is_train_only(n)))
    return 3 * t if training else t


def fmt_seconds(s: float, digits: int = 3) -> str:
    """0.0123 -> '12.3 ms' (`digits` significant digits)."""
    for unit, size in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= size:
            return f"{s / size:.{digits}g} {unit}"
    return f"{s * 1e9:.{digits}g} ns"
