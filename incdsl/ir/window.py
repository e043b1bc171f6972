"""Sliding-window arithmetic, the only copy of it: output lengths, TF "same" pad splits, the ceil
mode's overhang, and the derivation text that error notes show.

One axis at a time: an input of `size` pixels, a kernel of `k` taps spaced `d` apart (dilation),
stride `s`. The shape rules (incdsl/ops/rules.py) ask for output lengths; the pads pass
(incdsl/passes/pads.py) asks for the pads that give the inferred output; the backends read those
pads and do no arithmetic of their own.
"""
from __future__ import annotations

from dataclasses import dataclass


def extent(k: int, d: int = 1) -> int:
    """The pixels a kernel of `k` taps with dilation `d` spans: d * (k - 1) + 1."""
    return d * (k - 1) + 1


def output_length(size: int, k: int, s: int, d: int, pad, ceil: bool) -> tuple[int, str]:
    """(output length, its arithmetic as text) on one axis. `pad` is "same" (TF: ceil(size / s)),
    "valid", or (lo, hi) explicit pixels. Ceil mode (Caffe, torch.nn.MaxPool2d(ceil_mode=True))
    rounds up but drops a last window that would start past the input and its lo padding, as
    PyTorch does. The length may be 0 or less when the window does not fit."""
    ke = d * (k - 1) + 1  # extent(k, d), inlined: every conv and pool of every variant runs this
    if pad == "same":
        out = -(-size // s)
        return out, f"ceil({size} / {s}) = {out} with pad=same"
    if pad == "valid":
        lo = hi = 0
        how = "pad=valid"
    else:
        lo, hi = pad
        how = f"padding {lo}+{hi}"
    span = size + lo + hi - ke
    padded = f"{size} + {lo + hi}" if lo + hi else f"{size}"
    if ceil:
        out = -(-span // s) + 1
        if out > 0 and (out - 1) * s >= size + lo:  # the last window must start inside the input
            out -= 1
        return out, f"ceil(({padded} - {ke}) / {s}) + 1 = {out} with {how}, ceil mode"
    out = span // s + 1 if span >= 0 else 0
    frac = f"({padded} - {ke}) / {s}" if s > 1 else f"{padded} - {ke}"
    if span % s:
        frac = f"floor({frac})"
    return out, f"{frac} + 1 = {out} with {how}"


def adaptive_bin(i: int, size: int, out: int) -> tuple[int, int]:
    """Bin `i` of `out` in adaptive average pooling over `size` pixels: [lo, hi) =
    [floor(i * size / out), ceil((i + 1) * size / out)), PyTorch's AdaptiveAvgPool2d rule (bins
    overlap when `out` does not divide `size`)."""
    return (i * size) // out, -(-((i + 1) * size) // out)


def same_split(size: int, k: int, s: int, d: int, out: int) -> tuple[int, int]:
    """TF/Keras pad=same on one axis whose output is `out` (= ceil(size / s)): (begin, end) pads
    whose total gives `out`, the odd pixel at the end (TensorFlow's 'SAME' rule, tf.nn.convolution;
    torch.nn.Conv2d(padding='same'), stride 1 only, splits it the same way)."""
    total = max((out - 1) * s + extent(k, d) - size, 0)
    return total // 2, total - total // 2


def overhang(size: int, k: int, s: int, d: int, lo: int, hi: int, out: int) -> int:
    """Ceil mode's extra end pixels on one axis: what the last of `out` windows reaches past the
    input padded by lo + hi (0 in floor mode), so that a floor-rule runtime gives `out` too."""
    return max((out - 1) * s + extent(k, d) - (size + lo + hi), 0)


@dataclass(frozen=True, slots=True)
class Pads:
    """A conv's or pool's padding in pixels, resolved: the real padding (`top`, `bottom`, `left`,
    `right`: explicit, or TF's "same" split with the odd pixel at the bottom/right) and ceil mode's
    overhang past it (`over_bottom`, `over_right`: windows past the padded input; never counted in
    an average, as in PyTorch). Written by incdsl/passes/pads.py into `Network.pads`."""
    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0
    over_bottom: int = 0
    over_right: int = 0

    @property
    def real(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right): the padding the spec asks for, without the overhang."""
        return self.top, self.bottom, self.left, self.right

    @property
    def begin(self) -> list[int]:
        """[top, left]: ONNX's begin pads for (H, W)."""
        return [self.top, self.left]

    @property
    def end(self) -> list[int]:
        """[bottom, right] with the ceil overhang: ONNX's end pads for (H, W), which make the
        floor rule give the inferred output."""
        return [self.bottom + self.over_bottom, self.right + self.over_right]


NO_PADS = Pads()


def resolve(pad, kernel, stride, dilation, in_hw, out_hw) -> Pads:
    """The `Pads` of one conv or pool: `pad` as ops normalize it ("same", "valid" or (top, bottom,
    left, right)), `kernel`, `stride`, `dilation` as (h, w) pairs, `in_hw` and `out_hw` the
    input's and output's (H, W) from the shape pass (longer shapes: the rest is ignored)."""
    axes = tuple(zip(in_hw[:2], kernel, stride, dilation, out_hw[:2]))
    if pad == "same":  # TF's split; the output is ceil(size / s), so nothing hangs over
        (t, b), (l, r) = (same_split(*axis) for axis in axes)
    else:
        t, b, l, r = (0, 0, 0, 0) if pad == "valid" else pad
    over_bottom, over_right = (overhang(n, k, s, d, lo, hi, o)
                               for (n, k, s, d, o), (lo, hi) in zip(axes, ((t, b), (l, r))))
    if not (t or b or l or r or over_bottom or over_right):
        return NO_PADS
    return Pads(t, b, l, r, over_bottom, over_right)
