"""PyTorch weights (`.pth`, `.pt`: a state_dict saved with torch.save; `.safetensors`) into the
weights dict of incdsl/weights.py, for torchvision googlenet and inception_v3, timm inception_v4
(`googlenet_tv.inc`, `inception_v3_tv.inc`, `inception_v4.inc`) and any spec whose layers line up.

Reading: `torch.load(weights_only=True)` (no pickled code runs), or the `safetensors` package's
numpy reader, which needs no torch at all.

Matching modules to layers: a state_dict lists each module's tensors in registration order, which
for these models is our definition order within each top-level block. So both sides are grouped by
their first name component (torch `inception3a.branch2.0.conv.weight` -> `inception3a`, ours
`inception3a/b2/conv_1` -> `inception3a`); groups with the same name pair up (this absorbs
blocks that torch registers elsewhere, like torchvision's aux heads before the last blocks), the
rest pair in order, and inside a pair the weighted modules pair one by one (a conv with batch norm
of ours takes a Conv2d and the BatchNorm2d after it). Kinds and every shape must agree.

Layouts (torch -> Keras, incdsl/weights.py): conv OIHW -> HWIO; depthwise (C*M, 1, kh, kw) ->
(kh, kw, C, M); linear (out, in) -> (in, out), and a linear that reads a `flatten` of an HxWxC map
has its input axis permuted from torch's C,H,W order to our H,W,C (torchvision googlenet's aux
heads); batch norm weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
moving_variance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SpecError
from ..weights import Weights, weight_shapes

SUFFIXES = (".pth", ".pt", ".safetensors")
_SKIP = ("num_batches_tracked",)


def is_torch_file(path) -> bool:
    return Path(path).suffix in SUFFIXES


def read_state_dict(path) -> dict[str, np.ndarray]:
    """The tensors of a torch state_dict file as numpy arrays, in the file's order. A checkpoint
    dict holding the state_dict under "state_dict" or "model" is unwrapped. Raises SpecError for a
    missing file, a pickled model (weights_only refuses it) or a non-tensor entry."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"weights file {path} not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
        try:
            return dict(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as e:
            raise SpecError(f"cannot read {path} as safetensors: {_first_line(e)}") from None
    try:
        import torch
    except ImportError:
        raise SpecError(f"reading {path} needs PyTorch (pip install torch)",
                        hint="or save the state_dict with safetensors, which reads without torch") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # a pickled module, a corrupt file, not a torch file
        raise SpecError(f"cannot read {path} as a PyTorch state_dict: {_first_line(e)}",
                        hint="save model.state_dict(), not the model: torch.save(model.state_dict(), path)") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise SpecError(f"{path} holds a {type(state).__name__}, not a state_dict")
    out = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise SpecError(f"{path}: entry '{k}' is a {type(v).__name__}, not a tensor")
        out[k] = v.detach().cpu().float().numpy() if v.is_floating_point() else v.cpu().numpy()
    return out


def _torch_modules(state: dict) -> list[tuple[str, str, dict]]:
    """(module prefix, kind, {param: array}) in state_dict order; kind conv, dense or bn."""
    modules: dict[str, dict] = {}
    for key, arr in state.items():
        prefix, _, param = key.rpartition(".")
        if param in _SKIP:
            continue
        modules.setdefault(prefix, {})[param] = arr
    out = []
    for prefix, params in modules.items():
        w = params.get("weight")
        if "running_mean" in params:
            kind = "bn"
        elif w is not None and w.ndim == 4:
            kind = "conv"
        elif w is not None and w.ndim == 2:
            kind = "dense"
        else:
            have = ", ".join(f"{p} {_fmt(a.shape)}" for p, a in params.items())
            raise SpecError(f"torch module '{prefix}' ({have}) is neither a conv, a linear nor a batch norm")
        out.append((prefix, kind, params))
    return out


def _our_entries(net) -> list[tuple[str, str]]:
    """(node, kind) for every weighted layer, training heads included; a conv with batch norm gives two."""
    out = []
    for name, layer in net.layers.items():
        if not weight_shapes(net, name):
            continue
        if layer.op == "sepconv":
            raise SpecError(f"layer '{name}' is a separable conv, which torch has no single module for",
                            layer.span, hint="write it as dwconv -> conv(…, 1) to import torch weights")
        out.append((name, {"conv": "conv", "dwconv": "conv", "dense": "dense", "bn": "bn"}[layer.op]))
        if layer.op != "bn" and layer.attrs.get("bn"):
            out.append((name, "bn"))
    return out


def _grouped(items, top) -> dict[str, list]:
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(top(item), []).append(item)
    return groups


def _pairs(net, mods, ours, source):
    """Pair our entries with torch modules: same-named top-level groups, then the rest in order."""
    theirs = _grouped(mods, lambda m: m[0].split(".")[0])
    mine = _grouped(ours, lambda e: e[0].split("/")[0])
    both = set(theirs) & set(mine)
    seqs = [(mine[g], theirs[g]) for g in mine if g in both]
    seqs.append(([e for g in mine if g not in both for e in mine[g]],
                 [m for g in theirs if g not in both for m in theirs[g]]))
    pairs = []
    for a, b in seqs:
        for i in range(max(len(a), len(b))):
            if i >= len(b):
                node, kind = a[i]
                raise SpecError(f"{source} has no weights for layer '{node}' ({kind}): the file has "
                                f"{len(b)} modules where this part of network {net.name} needs {len(a)}",
                                net.layers[node].span,
                                hint="was the torch model built with other options (aux_logits, classes)? "
                                     "set the spec's parameters to match (--set aux=false)")
            if i >= len(a):
                extra = [m[0] for m in b[i:]]
                raise SpecError(f"{source} has weights that network {net.name} has no layer for: "
                                f"{', '.join(extra[:3])}" + (f" and {len(extra) - 3} more" if len(extra) > 3 else ""),
                                hint="were they saved from another model or variant (aux heads, width)?")
            pairs.append((a[i], b[i]))
    return pairs


def _dense_input_map(net, node) -> tuple | None:
    """The HxWxC map a dense layer reads through a flatten (dropout and activations between), if any."""
    layer = net.layers[net.layers[node].inputs[0]]
    while layer.op in ("dropout", "act"):
        layer = net.layers[layer.inputs[0]]
    if layer.op == "flatten":
        shape = net.shapes[layer.inputs[0]]
        if len(shape) == 3 and shape[0] * shape[1] > 1:
            return shape
    return None


def _convert(net, node, kind, params) -> dict[str, np.ndarray]:
    layer = net.layers[node]
    if kind == "bn":
        out = {"beta": params.get("bias"), "moving_mean": params["running_mean"],
               "moving_variance": params["running_var"]}
        if params.get("weight") is not None:
            out["gamma"] = params["weight"]
        return {k: v for k, v in out.items() if v is not None}
    w = params["weight"]
    if kind == "dense":
        fm = _dense_input_map(net, node)
        if fm is not None and w.shape[1] == fm[0] * fm[1] * fm[2]:  # torch flattens C,H,W; we H,W,C
            h, wd, c = fm
            w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        out = {"kernel": w.T}
    elif layer.op == "dwconv":
        cm, _, kh, kw = w.shape
        cin = net.shapes[layer.inputs[0]][-1]
        out = {"depthwise_kernel": w.reshape(cin, cm // cin, kh, kw).transpose(2, 3, 0, 1) if cm % cin == 0 else w}
    else:
        out = {"kernel": w.transpose(2, 3, 1, 0)}
    if params.get("bias") is not None:
        out["bias"] = params["bias"]
    return out


def torch_weights(net, state: dict[str, np.ndarray], source: str = "the torch file") -> Weights:
    """The weights dict of `net` (every head) from a torch state_dict (numpy arrays). Raises
    SpecError naming the first layer whose module is missing, extra, of another kind or shape."""
    pairs = _pairs(net, _torch_modules(state), _our_entries(net), source)
    weights: Weights = {}
    for (node, kind), (prefix, their_kind, params) in pairs:
        span = net.layers[node].span
        if kind != their_kind:
            raise SpecError(f"layer '{node}' ({kind}) meets torch module '{prefix}' ({their_kind}) in {source}",
                            span, hint="the spec and the torch model differ here: same model, same options?")
        arrays = _convert(net, node, kind, params)
        want = weight_shapes(net, node)
        for key, arr in arrays.items():
            if key not in want:
                raise SpecError(f"torch module '{prefix}' has a {key} that layer '{node}' does not "
                                f"(the spec says {', '.join(want)})", span)
            if tuple(arr.shape) != tuple(want[key]):
                raise SpecError(f"torch module '{prefix}' gives {key} {_fmt(arr.shape)} in Keras layout; "
                                f"layer '{node}' needs {_fmt(want[key])}", span,
                                hint="were they saved from another variant (width, classes, size)?")
        weights.setdefault(node, {}).update({k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()})
    for node, arrays in weights.items():
        missing = set(weight_shapes(net, node)) - set(arrays)
        if missing:
            raise SpecError(f"{source} has no {', '.join(sorted(missing))} for layer '{node}'", net.layers[node].span)
    return weights


def load_torch_weights(net, path) -> Weights:
    """`torch_weights` of the state_dict in `path` (.pth, .pt or .safetensors)."""
    return torch_weights(net, read_state_dict(path), str(path))


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape) or "a scalar"


def _first_line(e) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
