"""A roofline bound: the least time a layer can take on a device, from its FLOPs and the bytes it
must move (Williams, Waterman and Patterson 2009, "Roofline: an insightful visual performance model").

The model the bound holds under (the README states it too): every layer runs as its own kernel
(unfused), which reads each of its inputs and its weights from device memory once and writes its
output once, and computes at the device's peak for the precision's compute dtype. Under that model
the time is at least max(FLOPs / peak, bytes / bandwidth) per layer, summed; real layers reach a
fraction of peak (kernel launch, occupancy, the memory hierarchy), so measured times are longer. A
compiler that fuses layers (XLA, torch.compile) moves fewer bytes than this model counts, so a
memory-bound layer can beat its bound there; compute-bound layers cannot. Counting, per layer, for
`batch` images:
- FLOPs: 2 x MACs (conv and dense; what incdsl counts), so elementwise work is left out;
- bytes: the weights once (variable dtype), plus every input read and the output written once
  (activation dtype);
- time: max(FLOPs / peak FLOP/s, bytes / bandwidth). A training step is bounded by 3x the forward
  pass (backward computes the gradients of inputs and of weights: twice the forward MACs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..passes.memory import PRECISIONS

COMPUTE_DTYPE = {  # --precision -> the dtype the convolutions and matmuls compute in
    "float32": "float32", "mixed_bfloat16": "bfloat16", "bfloat16": "bfloat16",
    "mixed_float16": "float16", "float16": "float16",
}


@dataclass(frozen=True)
class Device:
    """Peak FLOP/s per compute dtype and memory bandwidth (bytes/s) of a device, with where the
    figures come from. `flops` is the peak for any dtype `peaks` does not name (float32)."""
    name: str
    flops: float
    bandwidth: float
    source: str = ""
    peaks: dict = field(default_factory=dict)  # compute dtype -> peak FLOP/s

    def peak(self, precision: str) -> float:
        """Peak FLOP/s at a --precision (its compute dtype: bfloat16 for mixed_bfloat16)."""
        return self.peaks.get(COMPUTE_DTYPE.get(precision, precision), self.flops)


# NVIDIA's datasheets give tensor-core figures "with sparsity" (2:4 structured); dense is half.
# float32 uses the TF32 tensor-core peak: cuDNN runs float32 convolutions on TF32 by default
# (torch.backends.cudnn.allow_tf32 is True) and so does XLA's default precision, and full-fp32
# math (67 TFLOP/s on the CUDA cores) is slower still, so the TF32 figure keeps the bound a bound.
_HOPPER = {"float32": 494.5e12, "bfloat16": 989.5e12, "float16": 989.5e12}
DEVICES = {
    "h200": Device("NVIDIA H200 SXM", 494.5e12, 4.8e12,
                   "NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/h200): TF32 989 and BF16/FP16 1,979 "
                   "TFLOPS with sparsity (494.5 and 989.5 dense), FP32 67 TFLOPS; 4.8 TB/s HBM3e", _HOPPER),
    "h100": Device("NVIDIA H100 SXM", 494.5e12, 3.35e12,
                   "NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/h100), SXM5: TF32 989 and BF16/FP16 "
                   "1,979 TFLOPS with sparsity (494.5 and 989.5 dense), FP32 67 TFLOPS; 3.35 TB/s HBM3",
                   _HOPPER),
    "cpu": Device("typical 16-core AVX2 server CPU", 1.0e12, 100e9,
                  "16 cores x 2 GHz x 32 fp32 FLOP/cycle (two 8-wide FMAs); AVX2 has no bf16/fp16 FMA, so "
                  "every precision computes at that rate; 8 DDR4-3200 channels ~ 100 GB/s"),
}

@dataclass(frozen=True)
class LayerBound:
    """One layer at `batch` images: FLOPs, bytes moved, and the bound in seconds."""
    flops: int
    bytes: int
    seconds: float
    compute_bound: bool


def layer_bounds(net, device: Device, batch: int = 1, precision: str = "float32") -> dict[str, LayerBound]:
    """Per layer forward bound (module docstring). KeyError on an unknown precision."""
    var_b, act_b = PRECISIONS[precision]
    out = {}
    for name, layer in net.layers.items():
        c = net.counts[name]
        flops = 2 * c.macs * batch
        moved = c.params * var_b + batch * act_b * (
            sum(math.prod(net.shapes[i]) for i in layer.inputs)
            + (math.prod(net.shapes[name]) if layer.inputs else 0)
        )
        t_c, t_m = flops / device.peak(precision), moved / device.bandwidth
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
