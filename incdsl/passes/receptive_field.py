"""Receptive field and effective stride of every layer, in input pixels.

The recurrence of Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional Neural
Networks" (Distill, 2019), Eq. 1-2, per spatial axis, from the input (field 1, stride 1) on:

    stride_out = stride_in * s                    (s: the layer's stride)
    field_out  = field_in + (k_eff - 1) * stride_in,    k_eff = d * (k - 1) + 1 (dilation d)

- conv, dwconv, sepconv (its pointwise half adds nothing), maxpool, avgpool: their window;
- adaptive_avgpool: windows of ceil(in / out) at stride floor(in / out), PyTorch's widest bin;
- gap, gmp, flatten: one window over the whole map (the field then covers every input pixel that
  reaches the layer);
- concat, add, multiply: the largest field among the inputs (a squeeze-and-excitation gate, a
  vector, makes the field global) and the largest stride among the feature maps;
- everything else (activations, batch norm, dense, dropout, zeropad, ...): unchanged. Padding does
  not change the field: a field may reach past the image into the padding.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ops.groups import WINDOWED

GLOBAL_OPS = frozenset({"gap", "gmp", "flatten"})


@dataclass(frozen=True, slots=True)
class Field:
    """Receptive field (h, w) and effective stride (h, w) of one layer's output, in input pixels."""
    size: tuple[int, int]
    stride: tuple[int, int]


def receptive_fields(net) -> dict[str, Field]:
    """Field of every layer of a checked network (`net.layers` in topological order, `net.shapes`)."""
    out: dict[str, Field] = {}
    for name, layer in net.layers.items():
        if not layer.inputs:
            out[name] = Field((1, 1), (1, 1))
            continue
        ins = [out[i] for i in layer.inputs]
        if len(ins) > 1:  # the stride is the feature maps' (a gate vector's says nothing of positions)
            maps = [f for f, i in zip(ins, layer.inputs) if len(net.shapes[i]) == 3] or ins
            out[name] = Field(tuple(max(f.size[a] for f in ins) for a in (0, 1)),
                              tuple(max(f.stride[a] for f in maps) for a in (0, 1)))
            continue
        f, a, op = ins[0], layer.attrs, layer.op
        in_shape = net.shapes[layer.inputs[0]]
        if op in WINDOWED:
            kernel, strides, dil = a["kernel"], a["stride"], a.get("dilation", (1, 1))
        elif op == "adaptive_avgpool" or (op in GLOBAL_OPS and len(in_shape) == 3):
            h, w = in_shape[:2]
            oh, ow = a["size"] if op == "adaptive_avgpool" else (1, 1)
            kernel, strides, dil = (-(-h // oh), -(-w // ow)), (h // oh, w // ow), (1, 1)
        else:
            out[name] = f
            continue
        out[name] = Field(tuple(f.size[i] + dil[i] * (kernel[i] - 1) * f.stride[i] for i in (0, 1)),
                          tuple(f.stride[i] * strides[i] for i in (0, 1)))
    return out
