"""PyTorch weights (`.pth`, `.pt`: a state_dict saved with torch.save; `.safetensors`) into the
weights dict of incdsl/weights/arrays.py, for torchvision googlenet and inception_v3, timm inception_v4
(`googlenet_tv.inc`, `inception_v3_tv.inc`, `inception_v4.inc`) and any spec whose layers line up.

Reading: `torch.load(weights_only=True)` (no pickled code runs), or the `safetensors` package's
numpy reader, which needs no torch at all.

Matching modules to layers: a .pth state_dict lists each module's tensors in registration order,
which for these models is our definition order within each top-level block (safetensors stores
names sorted: they are read in natural name order, `features.10` after `features.9`). Both sides
are grouped by their first name component (torch `inception3a.branch2.0.conv.weight` ->
`inception3a`, ours `inception3a/b2/conv_1` -> `inception3a`); groups with the same name pair up
(this absorbs blocks that torch registers elsewhere, like torchvision's aux heads before the last
blocks), the rest pair in order. In each, a layer of ours takes the first unused torch unit (a
Conv2d with the BatchNorm2d beside it for a conv with bn=true) whose kind and every shape fit: the
very next one in registration order; in name order, the first that fits (torchvision's branch names
sort in their concat order wherever two branches hold the same shapes). Among the blocks that pair
in order, a layer that fits the next unit of two or more torch blocks, none its namesake, is refused
(two same-shaped classifiers would otherwise be swapped silently). A prefix on every key from a
wrapper (`module.` from DataParallel/DistributedDataParallel, `_orig_mod.` from torch.compile, or
any one wrapper module such as Lightning's `model.`) is stripped first. Every module must hold
exactly its class's tensors (a missing running_var or an extra tensor is named).

Layouts (torch -> Keras, incdsl/weights/arrays.py): conv OIHW -> HWIO; depthwise (C*M, 1, kh, kw) ->
(kh, kw, C, M); linear (out, in) -> (in, out), and a linear that reads a `flatten` of an HxWxC map
has its input axis permuted from torch's C,H,W order to our H,W,C (torchvision googlenet's aux
heads); batch norm weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
moving_variance.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import SpecError, missing_file
from ..text import SCALAR, first_line, shape_text
from .arrays import Weights, weight_shapes

SUFFIXES = (".pth", ".pt", ".safetensors")
_SKIP = ("num_batches_tracked",)


def is_torch_file(path) -> bool:
    """True for the PyTorch weight files the importer reads: .pth, .pt and .safetensors (by suffix)."""
    return Path(path).suffix in SUFFIXES


def read_state_dict(path, limit: int | None = None) -> dict[str, np.ndarray]:
    """The tensors of a torch state_dict file as numpy arrays, in the file's order. A checkpoint
    dict holding the state_dict under "state_dict" or "model" is unwrapped. Raises SpecError for a
    missing file, a pickled model (weights_only refuses it) or a non-tensor entry, and for a zip
    member beyond `limit` bytes (untrusted.check_zip; data.pkl 16 MiB; without `limit`, 512 MiB or
    20 times its compressed size)."""
    path = Path(path)
    if not path.is_file():
        raise missing_file("weights file", path)
    if path.suffix == ".safetensors":
        try:
            from safetensors import SafetensorError
        except ImportError:
            raise SpecError(f"reading {path} needs the safetensors package: pip install safetensors "
                            f"(the jax, torch and onnx extras of incdsl have it)") from None
        from safetensors.numpy import load_file
        try:
            return strip_wrapper_prefix(dict(load_file(str(path))))
        except (SafetensorError, OSError, ValueError) as e:
            raise SpecError(f"cannot read {path} as safetensors: {first_line(e)}") from None
    try:
        import torch
    except ImportError:  # Keras on JAX without torch: torch.save's zip format is read without it
        torch = None
    with open(path, "rb") as f:
        magic = f.read(4)
    if not (magic.startswith(_ZIP) or magic[:1] == _PICKLE):
        raise SpecError(
            f"{path} is not a PyTorch file: it is neither a zip archive (torch.save) nor a pickle",
            hint="pass the file written by torch.save(model.state_dict(), path), or a .safetensors file",
        )
    from ..untrusted import check_zip
    if magic.startswith(_ZIP):
        check_zip(path, limit)  # a data record that inflates without bound is refused before torch reads
    if torch is None:
        if not magic.startswith(_ZIP):
            raise SpecError(f"reading {path} (torch.save's legacy format, before PyTorch 1.6) needs PyTorch "
                            f"(pip install torch)",
                            hint="or save the state_dict with safetensors, which reads without torch")
        from .torch_zip import read_torch_zip
        state = read_torch_zip(path)
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # a pickled module, a corrupt file, not a torch file
            raise _load_error(path, e) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise SpecError(f"{path} holds a {type(state).__name__}, not a state_dict")
    state = strip_wrapper_prefix(state)
    out = {}
    for k, v in state.items():
        if isinstance(v, np.ndarray):  # read without torch (torch_zip)
            out[k] = v
            continue
        if torch is None or not isinstance(v, torch.Tensor):
            raise SpecError(f"{path}: entry '{k}' is a {type(v).__name__}, not a tensor")
        out[k] = v.detach().cpu().float().numpy() if v.is_floating_point() else v.cpu().numpy()
    return out


_ZIP = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
_PICKLE = b"\x80"  # pickle protocol 2+ opcode: the legacy torch.save format
# prefixes that wrappers put before every key: DataParallel/DistributedDataParallel, torch.compile
_WRAPPERS = ("module.", "_orig_mod.")


def _load_error(path, e: Exception) -> SpecError:
    """torch.load's failure in our words. Its own text for weights_only refusals advises
    weights_only=False, which runs the file's pickled code: never repeated here."""
    text = str(e)
    if "Weights only load failed" in text or "Unsupported global" in text:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        what = f" (it holds a {found.group(1)})" if found else ""
        return SpecError(
            f"{path} holds pickled Python objects, not only tensors{what}: a whole model saved with "
            f"torch.save(model), which is not read, as unpickling it would run code from the file",
            hint="save the weights alone: torch.save(model.state_dict(), path)",
        )
    lines = [ln for ln in text.strip().splitlines() if "weights_only" not in ln]
    return SpecError(
        f"{path} is not a readable PyTorch file: {lines[0] if lines else type(e).__name__}",
        hint="pass the file written by torch.save(model.state_dict(), path), or a .safetensors file",
    )


def strip_wrapper_prefix(state: dict) -> dict:
    """`state` without a prefix that every key shares and that a wrapper adds (`module.` from
    torch.nn.DataParallel/DistributedDataParallel, `_orig_mod.` from torch.compile), as the
    module's own state_dict names them."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPERS:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _natural(key: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def _torch_units(state: dict, ordered: bool) -> list[tuple[str, str, list]]:
    """(top-level name, kind, [(module prefix, params)]) in registration order (`ordered`) or, for
    safetensors, which stores names sorted, in natural name order. A conv and the batch norm
    beside it under one parent (`conv1.conv`, `conv1.bn`) make one unit, kind "conv+bn"."""
    modules: dict[str, dict] = {}
    for key in state if ordered else sorted(state, key=_natural):
        prefix, _, param = key.rpartition(".")
        if param not in _SKIP:
            modules.setdefault(prefix, {})[param] = state[key]
    kinds = {}
    for prefix, params in modules.items():
        w = params.get("weight")
        if "running_mean" in params or "running_var" in params:
            kinds[prefix] = "bn"
            _check_params(prefix, params, "batch norm", _BN_PARAMS, ("running_mean", "running_var"))
        elif w is not None and w.ndim in (2, 4):
            kinds[prefix] = "conv" if w.ndim == 4 else "dense"
            _check_params(prefix, params, kinds[prefix] if w.ndim == 4 else "linear", ("weight", "bias"),
                          ("weight",))
        else:
            have = ", ".join(f"{p} {shape_text(a.shape, SCALAR)}" for p, a in params.items())
            raise SpecError(f"torch module '{prefix}' ({have}) is neither a conv, a linear nor a batch norm")
    siblings: dict[str, list[str]] = {}
    for prefix in modules:
        siblings.setdefault(prefix.rpartition(".")[0], []).append(prefix)
    units, done = [], set()
    for prefix in modules:
        if prefix in done:
            continue
        family = siblings[prefix.rpartition(".")[0]]
        pair = sorted((p for p in family if kinds[p] in ("conv", "bn")), key=lambda p: kinds[p] != "conv")
        if len(family) == 2 and [kinds[p] for p in pair] == ["conv", "bn"]:
            members = pair
        else:
            members = [prefix]
        done.update(members)
        kind = "+".join(kinds[m] for m in members)
        units.append((prefix.split(".")[0], kind, [(m, modules[m]) for m in members]))
    return units


_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def _check_params(prefix: str, params: dict, kind: str, known: tuple, needed: tuple) -> None:
    """A module's tensors are the ones its torch class holds (torch.nn.BatchNorm2d: weight, bias,
    running_mean, running_var; Conv2d and Linear: weight, bias): name a missing or extra one."""
    have = ", ".join(f"{p} {shape_text(a.shape, SCALAR)}" for p, a in params.items())
    for p in needed:
        if p not in params:
            raise SpecError(f"torch module '{prefix}' ({kind}) has no {p} in the file (it has {have})",
                            hint="the file is incomplete or was edited: save it again with "
                                 "torch.save(model.state_dict(), path)")
    for p in params:
        if p not in known:
            raise SpecError(f"torch module '{prefix}' ({kind}) has a tensor '{p}' "
                            f"({shape_text(params[p].shape, SCALAR)}) "
                            f"that a {kind} does not hold (it has {have})",
                            hint="the file was saved from another model or edited: save the model's "
                                 "state_dict() as it is")


def _our_units(net) -> list[tuple[str, str]]:
    """(node, kind) for every weighted layer, training heads included: conv, conv+bn, dense or bn."""
    out = []
    for name, layer in net.layers.items():
        if not weight_shapes(net, name):
            continue
        if layer.op == "sepconv":
            raise SpecError(f"layer '{name}' is a separable conv, which torch has no single module for",
                            layer.span, hint="write it as dwconv -> conv(c, 1) to import torch weights")
        kind = {"conv": "conv", "dwconv": "conv", "dense": "dense", "bn": "bn"}[layer.op]
        out.append((name, kind + ("+bn" if layer.op != "bn" and layer.attrs.get("bn") else "")))
    return out


def _grouped(items, top) -> dict[str, list]:
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(top(item), []).append(item)
    return groups


def _describe(unit) -> str:
    def tensors(params: dict) -> str:
        return ", ".join(f"{k} {shape_text(a.shape, SCALAR)}" for k, a in params.items()
                         if k != "num_batches_tracked")
    return " + ".join(f"'{p}' ({tensors(params)})" for p, params in unit[2])


def torch_weights(net, state: dict[str, np.ndarray], source: str = "the torch file", ordered: bool = True,
                  partial: bool = False) -> Weights:
    """The weights dict of `net` (every head) from a torch state_dict (numpy arrays, in the
    file's order when `ordered`). Same-named top-level blocks pair up, the others in order; in
    each, every layer of ours takes the first unused torch unit whose kind and shapes fit (in
    registration order that is the very next one). Raises SpecError naming the first layer that
    no unit fits, or the torch modules left over; with `partial` (fine-tuning: a new classifier),
    such layers are left out of the result instead and leftovers are ignored."""
    mine = _grouped(_our_units(net), lambda e: e[0].split("/")[0])
    state = strip_wrapper_prefix(state)
    tops = {k.split(".")[0] for k in state}
    if len(tops) == 1 and not tops & set(mine) and all(k.count(".") > 1 for k in state):
        # one wrapper module around the whole model (Lightning's `model.`, a `net.` attribute):
        # pair its children by name, as a bare state_dict's
        state = {k.split(".", 1)[1]: v for k, v in state.items()}
    theirs = _grouped(_torch_units(state, ordered), lambda u: u[0])
    both = [g for g in mine if g in theirs]
    seqs = [(mine[g], theirs[g]) for g in both]
    seqs.append(([e for g in mine if g not in both for e in mine[g]],
                 [u for g in theirs if g not in both for u in theirs[g]]))
    weights: Weights = {}
    for ours, units in seqs:
        free = list(units)
        for node, kind in ours:
            want = weight_shapes(net, node)
            fits = {}  # the first unit that fits in each torch top-level block: order decides only within one
            for unit in free:
                if unit[1] == kind and unit[0] not in fits:
                    conv = _convert(net, node, kind, unit[2])
                    if set(
                        conv) == set(want) and all(tuple(a.shape) == tuple(want[k]) for k, a in conv.items()):
                        fits[unit[0]] = (unit, conv)
            if len(fits) > 1:
                named = [f for f in fits.values() if f[0][0] == node.split("/")[0]]
                if len(named) != 1:
                    raise SpecError(
                        f"layer '{node}' fits {len(fits)} modules of {source} that their names do not "
                        f"tell apart: {', '.join(repr(f[0][2][0][0]) for f in fits.values())}",
                        net.layers[node].span,
                        hint="name the spec's blocks as the torch model names its modules, so that "
                        "each pairs with its namesake",
                    )
                fits = {named[0][0][0]: named[0]}
            fit, arrays = next(iter(fits.values()), (None, None))
            if fit is None and partial:
                continue
            if fit is None:
                need = ", ".join(f"{k} {shape_text(v, SCALAR)}" for k, v in want.items())
                nxt = (
                    f"; the next unused is {_describe(free[0])}"
                    if free
                    else "; the file has nothing left for it"
                )
                raise SpecError(
                    f"no module in {source} fits layer '{node}' ({kind}: {need}, Keras layout){nxt}",
                    net.layers[node].span,
                    hint="were the weights saved from another model or variant (aux_logits, classes, width)? "
                    "set the spec's parameters to match",
                )
            free.remove(fit)
            weights[node] = {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}
        if free and not partial:
            extra = [p for u in free for p, _ in u[2]]
            raise SpecError(f"{source} has weights that network {net.name} has no layer for: "
                            f"{', '.join(extra[:3])}" + (
                                f" and {len(extra) - 3} more" if len(extra) > 3 else ""),
                            hint="were they saved from another model or variant (aux heads, width)?")
    return weights


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


def _convert(net, node, kind, members) -> dict[str, np.ndarray]:
    """A torch unit's arrays under our keys, in Keras layouts."""
    out = {}
    for _prefix, params in members:
        if "running_mean" in params:
            out.update(beta=params.get("bias"), moving_mean=params["running_mean"],
                       moving_variance=params["running_var"])
            if params.get("weight") is not None:
                out["gamma"] = params["weight"]
            continue
        w = params["weight"]
        layer = net.layers[node]
        if w.ndim == 2:
            fm = _dense_input_map(net, node) if layer.op == "dense" else None
            if fm is not None and w.shape[1] == fm[0] * fm[1] * fm[2]:  # torch flattens C,H,W; we H,W,C
                h, wd, c = fm
                w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            out["kernel"] = w.T
        elif layer.op == "dwconv":
            cm, _, kh, kw = w.shape
            cin = net.shapes[layer.inputs[0]][-1]
            out["depthwise_kernel"] = w.reshape(cin, cm // cin, kh, kw).transpose(2, 3, 0,
                                                                                  1) if cm % cin == 0 else w
        else:
            out["kernel"] = w.transpose(2, 3, 1, 0)
        if params.get("bias") is not None:
            out["bias"] = params["bias"]
    return {k: v for k, v in out.items() if v is not None}


def load_torch_weights(net, path) -> Weights:
    """`torch_weights` of the state_dict in `path` (.pth, .pt or .safetensors)."""
    from .arrays import weights_limit
    return torch_weights(net, read_state_dict(path, weights_limit(net)), str(path),
                         ordered=Path(path).suffix != ".safetensors")
