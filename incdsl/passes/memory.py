"""Memory: parameter bytes, activation bytes for one image's forward pass, and what a training step
keeps for backward; the bytes of a whole training step at a batch size.

How it is counted (the README states it too):
- parameters: every weight and batch-norm statistic at the precision's variable dtype (float32
  under Keras' mixed policies, which keep float32 variables; bfloat16 for pure bfloat16);
- a training step adds one gradient per trainable parameter (variable dtype) and the optimizer's
  state: SGD none, SGD with momentum and RMSprop one slot, RMSprop with momentum and Adam two;
- forward, one image: `outputs` sums every tensor the layers produce (torchinfo's "forward pass
  size" counts outputs this way); `peak` is the most that is alive at once when each tensor is
  freed after its last reader, in the graph's order;
- kept for backward, one image: the tensors PyTorch's autograd saves (torch.autograd.graph's
  saved tensors, counted once per storage): a conv or dense layer keeps its input, a batch norm
  the conv output it normalizes, relu and the other activations their output (in place after batch
  norm, as torchvision's BasicConv2d writes it, so no extra copy), max pooling its input and int64
  indices, average pooling its input, dropout a one-byte mask; concat, add, scaling, flatten and
  padding keep nothing. Keras on JAX or TensorFlow may keep more or less (XLA rematerializes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..ops.groups import CONVS, WEIGHTED

PRECISIONS = {  # name -> (bytes per variable, bytes per activation)
    "float32": (4, 4), "mixed_bfloat16": (4, 2), "mixed_float16": (4, 2), "bfloat16": (2, 2),
    "float16": (2, 2),
}
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "rmsprop": 1, "rmsprop_momentum": 2, "adam": 2, "adamw": 2}
INDEX_BYTES, MASK_BYTES = 8, 1  # torch max pooling's int64 indices; dropout's bool mask

_KEEPS_NOTHING = {"concat", "add", "scale", "flatten", "zeropad", "identity", "input"}


@dataclass(frozen=True)
class LayerMemory:
    """One layer, one image, activations at `act_bytes` per value: `params` bytes, `outputs` (every
    tensor it produces, pre-batch-norm conv output included) and `kept` (of those, and of the
    indices and masks it makes, what backward keeps; an input is charged to the layer making it)."""
    params: int
    outputs: int
    kept: int


def layer_memory(net, precision: str = "float32") -> dict[str, LayerMemory]:
    """Per layer bytes (see the module docstring for the counting). Raises KeyError on an unknown
    precision (the command line checks the name first)."""
    var_b, act_b = PRECISIONS[precision]
    kept: set[str] = set()  # layers whose final output backward keeps
    # bytes of a layer's own internal tensors kept (pre-BN output, indices, masks)
    extra_kept: dict[str, int] = {}
    outputs: dict[str, int] = {}
    for name, layer in net.layers.items():
        op, a = layer.op, layer.attrs
        n = math.prod(net.shapes[name])
        pre_bn = op in CONVS and a.get("bn")
        outputs[name] = n * act_b * (2 if pre_bn else 1)
        own = 0
        if op in WEIGHTED:
            kept.update(layer.inputs)
            if pre_bn:
                own += n * act_b  # batch norm keeps the conv output it normalizes
            if op == "sepconv":  # the pointwise conv keeps the depthwise output
                h, w, _ = net.shapes[name]
                own += h * w * net.shapes[layer.inputs[0]][2] * a["multiplier"] * act_b
            if a.get("act"):
                kept.add(name)
        elif op == "bn":
            kept.update(layer.inputs)
        elif op in ("act", "lrn"):
            kept.add(name)
            if op == "lrn":
                kept.update(layer.inputs)
        elif op == "maxpool":
            kept.update(layer.inputs)
            own += n * INDEX_BYTES
        elif op in ("avgpool", "adaptive_avgpool", "gap", "gmp"):
            kept.update(layer.inputs)
        elif op == "dropout":
            own += n * MASK_BYTES
        elif op not in _KEEPS_NOTHING:
            kept.add(name)  # an op this table does not know: assume it keeps its output
        extra_kept[name] = own
    out = {}
    for name in net.layers:
        c = net.counts[name]
        keep = extra_kept[name] + (math.prod(net.shapes[name]) * act_b if name in kept else 0)
        out[name] = LayerMemory(c.params * var_b, outputs[name], keep)
    return out


def forward_peak(net, precision: str = "float32", names=None) -> int:
    """The most activation bytes alive at once in one image's forward pass (inference: nothing
    kept for backward), freeing each tensor after its last reader. `names`: the layers that run
    (default all; pass the inference layers to leave the training-only heads out)."""
    _, act_b = PRECISIONS[precision]
    run = [n for n in net.layers if names is None or n in names]
    last: dict[str, int] = {}
    for i, n in enumerate(run):
        for src in net.layers[n].inputs:
            last[src] = i
    live = peak = 0
    for i, n in enumerate(run):
        size = math.prod(net.shapes[n]) * act_b
        live += size
        peak = max(peak, live + (size if net.layers[n].attrs.get("bn") else 0))  # pre-BN temp
        for src in set(net.layers[n].inputs):
            if last.get(src) == i:
                live -= math.prod(net.shapes[src]) * act_b
        if n not in last and not any(o.node == n for o in net.graph.outputs):
            live -= size
    return peak


@dataclass(frozen=True)
class TrainingStep:
    """Bytes of one training step at `batch`: parameters, gradients, optimizer slots, and the
    activations kept for backward (batch x the per-image figure)."""
    batch: int
    params: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        """All bytes of the step: params + gradients + optimizer slots + kept activations."""
        return self.params + self.gradients + self.optimizer + self.activations


def training_step(net, batch: int = 1, precision: str = "float32", optimizer: str = "momentum",
                  per_layer: dict[str, LayerMemory] | None = None) -> TrainingStep:
    """The training step's bytes (module docstring). KeyError on an unknown precision or optimizer."""
    var_b, _ = PRECISIONS[precision]
    slots = OPTIMIZER_SLOTS[optimizer]
    mem = per_layer or layer_memory(net, precision)
    t = net.total()
    return TrainingStep(batch, t.params * var_b, t.trainable * var_b, t.trainable * slots * 4,
                        batch * sum(m.kept for m in mem.values()))


def param_bytes_by_dtype(net, precision: str = "float32") -> dict[str, int]:
    """{dtype: bytes} of the parameters as the precision stores them (batch-norm statistics too):
    float32 under Keras' mixed policies (float32 variables), else the precision's own dtype."""
    var_b, _ = PRECISIONS[precision]
    return {("float32" if var_b == 4 else precision): net.total().params * var_b}


def fmt_bytes(n: float, digits: int = 2) -> str:
    """1,536 -> '1.50 KiB' (binary units, as device memory is sold and torchinfo's MB are not), up
    to PiB; `digits` after the decimal point."""
    for unit, size in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20),
                       ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.{digits}f} {unit}"
    return f"{int(n)} B"
