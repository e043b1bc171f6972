"""Counting conventions: the number another tool prints for a network, computed from our graph.

Each tool counts a different set of operations (and calls the result FLOPs or MACs either way).
The rules below follow each tool's source as of the versions the tests pin; the tests run each
tool on torchvision's googlenet and inception_v3 and compare (tests/analysis/test_conventions.py):

- incdsl (the default): multiply-accumulates of conv and dense layers.
- torchvision: the `_ops` figure of a weights enum's metadata ("GFLOPS"), which is incdsl's MACs
  in billions, rounded to 3 decimals.
- fvcore (`FlopCountAnalysis`, a traced model in eval mode, fvcore/nn/jit_handles.py): conv and
  linear MACs without biases, batch norm 2 per element (affine, eval mode), adaptive average
  pooling 1 per input element; everything else (relu, max/avg pooling, add, concat) zero.
- ptflops (`get_model_complexity_info(..., backend="pytorch")`, ptflops/pytorch_ops.py): conv and
  linear MACs plus one per output element for a bias, batch norm 2 per input element, relu and
  other activations 1 per output element, pooling 2 per input element: a `torch.nn` pooling module
  counts once by its module hook and once more by the patched functional it calls (torchvision's
  googlenet pools with modules throughout; its inception_v3 pools inside the Inception blocks with
  functionals, which ptflops counts once). Which pools the torch model calls as functionals is a
  fact the spec states: `functional=true` on the pool (specs/inception_v3_tv.inc).
- thop (`thop.profile`, thop/vision/basic_hooks.py): conv and linear MACs without biases, batch
  norm 4 per element (2, doubled when affine), adaptive average pooling (kh*kw + 1) per output
  element; relu and max pooling zero. thop hooks only `torch.nn` modules, and torchvision's
  Inception blocks pool with `torch.nn.functional.avg_pool2d`, which it never sees: average
  pooling counts zero here as on those models.
- torchinfo (`torchinfo.summary(...).total_mult_adds`, torchinfo/layer_info.py `calculate_macs`):
  for every module with a weight or bias, a conv's parameters times its output pixels (its MACs,
  plus one per output element for a bias) and any other module's parameters once per image: a
  linear layer's in*out + out, a batch norm's gamma and beta (2 per channel, not per element).
  Its own golden file tests/test_output/google.out (googlenet at 112x112) prints 392.46 M in train
  mode (the aux heads run) and 384.08 M in eval.
- ptflops-aten (`get_model_complexity_info(..., backend="aten")`, ptflops/aten_ops.py): the aten
  convolution and addmm/mm ops only: conv and linear MACs plus one per output element for a bias;
  batch norm, activations and pooling count zero (inception_v3: its MACs plus the fc's 1,000 biases).
"""
from __future__ import annotations

from ..errors import UsageError
from ..ops.groups import WEIGHTED

CONVENTIONS = ("incdsl", "fvcore", "ptflops", "ptflops-aten", "thop", "torchinfo", "torchvision")

# What each convention counts, for the README's table: (conv, dense, bias, BN, activations,
# pooling, adds); tests/analysis/test_conventions.py checks the README's table against this.
COUNTS = {
    "incdsl": ("MACs", "MACs", "-", "-", "-", "-", "-"),
    "torchvision": ("MACs", "MACs", "-", "-", "-", "-", "-"),
    "fvcore": ("MACs", "MACs", "-", "2/elem", "-", "adaptive avg: 1/input elem", "-"),
    "ptflops": ("MACs", "MACs", "1/output elem", "2/elem", "1/elem",
                "2/input elem (max, avg, adaptive); 1 if `functional=true`", "-"),
    "ptflops-aten": ("MACs", "MACs", "1/output elem", "-", "-", "-", "-"),
    "thop": ("MACs", "MACs", "-", "4/elem", "-", "adaptive avg: (kh*kw+1)/output elem", "-"),
    "torchinfo": ("MACs", "MACs", "1/output elem", "1 per gamma and beta (per channel)", "-", "-", "-"),
}

def _n(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def layer_ops(net, name: str, convention: str) -> int:
    """The operations one layer counts for under `convention`, for one image."""
    layer = net.layers[name]
    op, a = layer.op, layer.attrs
    macs = net.counts[name].macs
    if convention in ("incdsl", "torchvision"):
        return macs
    out = _n(net.shapes[name])
    if convention in ("torchinfo", "ptflops-aten"):
        return _weighted(op, a, macs, out, net.shapes[name][-1], convention)
    inp = _n(net.shapes[layer.inputs[0]]) if layer.inputs else 0
    bn_per = {"fvcore": 2, "ptflops": 2, "thop": 4}[convention]
    total = 0
    if op in WEIGHTED:
        total += macs
        if convention == "ptflops":
            total += out if a.get("bias") else 0
            total += out if a.get("act") else 0
        if a.get("bn"):
            total += bn_per * out
    elif op == "bn":
        total += bn_per * out
    elif op == "act":
        total += out if convention == "ptflops" else 0
    elif op in ("maxpool", "avgpool"):
        total += _ptflops_pool(a, inp) if convention == "ptflops" else 0
    elif op in ("gap", "adaptive_avgpool"):
        if convention == "fvcore":
            total += inp
        elif convention == "ptflops":
            total += _ptflops_pool(a, inp)
        else:  # thop: (kh*kw + 1) per output element, the kernel being input over output size
            h, w, _ = net.shapes[layer.inputs[0]]
            oh, ow = (1, 1) if op == "gap" else a["size"]
            total += int((h / oh * w / ow + 1) * out)
    elif op == "gmp":
        total += inp if convention == "ptflops" else 0
    return total


def _weighted(op: str, a: dict, macs: int, out: int, channels: int, convention: str) -> int:
    """torchinfo and ptflops' aten backend count only layers with weights: conv and dense MACs, a
    bias once per output element, and (torchinfo) a batch norm's gamma and beta once each."""
    if op in WEIGHTED:
        total = macs + (out if a.get("bias") else 0)
        if convention == "torchinfo" and a.get("bn"):
            total += channels * (2 if a.get("bn_scale") else 1)
        return total
    if op == "bn" and convention == "torchinfo":
        return channels * (2 if a.get("scale") else 1)
    return 0


def _ptflops_pool(attrs, inp: int) -> int:
    """ptflops counts a pool's input elements once per hook that sees it: a torch.nn pooling module
    by its module hook and once more by the patched functional its forward calls; a bare
    torch.nn.functional call (the spec says `functional=true`) by the patched functional only."""
    return inp if attrs.get("functional") else 2 * inp


def check(convention: str) -> str:
    """The convention's name, or UsageError naming the known ones."""
    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention '{convention}' (known: {', '.join(CONVENTIONS)})")
    return convention


def totals(net, convention: str) -> dict:
    """{"total", "inference"} operations for one image, and how the tool prints it ("torchvision":
    the GFLOPS figure of the weights' metadata, rounded as torchvision rounds it)."""
    check(convention)
    per = {n: layer_ops(net, n, convention) for n in net.layers}
    full = sum(per.values())
    inf = sum(v for n, v in per.items() if not net.is_train_only(n))
    out = {"name": convention, "total": full, "inference": inf, "layers": per}
    if convention == "torchvision":
        out["printed"] = round(inf / 1e9, 3)  # meta["_ops"], in billions
    return out
