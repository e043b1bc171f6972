"""What `incdsl summary` adds on request: memory and roofline columns, another counting convention,
and backbone taps (named feature maps with their stride and channels, like timm's `features_only`
feature_info). The table itself is report.summary_table; this module only supplies its columns."""
from __future__ import annotations

from ..passes.memory import (
    PRECISIONS,
    fmt_bytes,
    forward_peak,
    layer_memory,
    param_bytes_by_dtype,
    training_step,
)


def strides(net) -> dict[str, int]:
    """Each feature map's effective stride against the input, from the receptive-field pass
    (passes/receptive_field.py: the one copy of that arithmetic); flat vectors get none."""
    return {n: net.fields[n].stride[0] for n in net.layers if len(net.shapes[n]) == 3}


def trunk(net) -> list[str]:
    """The inference layers every path from the input to the main output passes through, in order:
    a layer is on the trunk when no earlier layer feeds a layer after it."""
    order = [n for n in net.layers if not net.is_train_only(n)]
    index = {n: i for i, n in enumerate(order)}
    reach = [i for i in range(len(order))]
    for n in order:
        for src in net.layers[n].inputs:
            reach[index[src]] = max(reach[index[src]], index[n])
    out, furthest = [], -1
    for i, n in enumerate(order):
        if furthest <= i:
            out.append(n)
        furthest = max(furthest, reach[i])
    return out


def taps(net) -> list[dict]:
    """The last trunk feature map at each stride, or the block marked `tap=true` at that stride
    (timm names Inception-v4's stride-4 map Mixed3a, before Mixed4a), named by the module call it
    ends where it ends one (timm's feature_info: `module`, `num_chs`, `reduction`). Shapes NHWC."""
    st = strides(net)
    ends = {b.output: b.name for b in net.graph.blocks}
    last: dict[int, str] = {}
    marked: set[int] = set()
    for n in trunk(net):
        if n in st and net.layers[n].op != "input" and st[n] not in marked:
            last[st[n]] = n
            if net.layers[n].attrs.get("tap"):
                marked.add(st[n])
    out = []
    for s in sorted(last):
        n = last[s]
        name = n
        while name in ends and ends[name] != name:  # the outermost call that ends at this layer
            name = ends[name]
        out.append({"name": name, "layer": n, "reduction": s, "num_chs": net.shapes[n][2],
                    "shape": list(net.shapes[n])})
    return out


def memory_json(net, batch: int, precision: str, optimizer: str) -> dict:
    """The memory estimate for `--json` (passes/memory.py says how it is counted); bytes."""
    per = layer_memory(net, precision)
    step = training_step(net, batch, precision, optimizer, per)
    inf = set(n for n in net.layers if not net.is_train_only(n))
    return {
        "precision": precision, "optimizer": optimizer, "batch": batch,
        "param_bytes": param_bytes_by_dtype(net, precision),
        "forward_one_image": {"outputs": sum(m.outputs for n, m in per.items() if n in inf),
                              "peak": forward_peak(net, precision, inf)},
        "kept_for_backward_one_image": sum(m.kept for m in per.values()),
        "training_step": {"params": step.params, "gradients": step.gradients, "optimizer": step.optimizer,
                          "activations": step.activations, "total": step.total},
    }


def add_layer_memory(data: dict, net, precision: str) -> None:
    """Each layer and each module call of a summary dict gains "memory": {param_bytes, outputs,
    kept} (one image, bytes; a call sums its layers)."""
    per = layer_memory(net, precision)
    for entry in data["layers"]:
        m = per[entry["name"]]
        entry["memory"] = {"param_bytes": m.params, "outputs": m.outputs, "kept": m.kept}
    for entry in data["blocks"]:
        ms = [m for n, m in per.items() if n.startswith(entry["name"] + "/")]
        entry["memory"] = {"param_bytes": sum(m.params for m in ms), "outputs": sum(m.outputs for m in ms),
                           "kept": sum(m.kept for m in ms)}


def memory_columns(net, batch: int, precision: str, optimizer: str):
    """Table columns (param bytes, kept for backward at `batch`) and footer lines."""
    per = layer_memory(net, precision)
    step = training_step(net, batch, precision, optimizer, per)
    inf = set(n for n in net.layers if not net.is_train_only(n))
    cols = [("param bytes", lambda ns: fmt_bytes(sum(per[n].params for n in ns))),
            (f"kept x{batch}", lambda ns: fmt_bytes(batch * sum(per[n].kept for n in ns)))]
    var_b, act_b = PRECISIONS[precision]
    foot = [f"memory ({precision}: {var_b}-byte variables, {act_b}-byte activations):",
            "  params: " + ", ".join(f"{fmt_bytes(b)} {d}" for d, b in param_bytes_by_dtype(net,
                                                                                            precision).items(
                                                                                                )),
            f"  forward, one image: {fmt_bytes(forward_peak(net, precision, inf))} peak "
            f"({fmt_bytes(sum(per[n].outputs for n in inf))} all outputs, as torchinfo sums them)",
            f"  training step at batch {batch} ({optimizer}): {fmt_bytes(step.total)} = params "
            f"{fmt_bytes(step.params)} + gradients {fmt_bytes(step.gradients)} + optimizer "
            f"{fmt_bytes(step.optimizer)} + activations kept for backward {fmt_bytes(step.activations)}"]
    return cols, foot


def roofline_columns(net, device, batch: int, precision: str):
    """`incdsl summary --device`: the roofline table columns and footer lines for `net` on `device`.

    Columns "bytes moved" and "bound" (seconds) per row, from `roofline.layer_bounds` at `batch`
    images and `precision`; the footer gives the device's peak FLOP/s and bandwidth (bytes/s) and the
    bounds of one forward pass and one training step (3x the forward), unfused (Williams, Waterman and
    Patterson 2009). Returns (columns as (title, function of layer names -> text), footer lines).
    Raises `KeyError` for an unknown precision.
    """
    from .roofline import fmt_seconds, layer_bounds, network_bound
    per = layer_bounds(net, device, batch, precision)
    cols = [("bytes moved", lambda ns: fmt_bytes(sum(per[n].bytes for n in ns))),
            ("bound", lambda ns: fmt_seconds(sum(per[n].seconds for n in ns)))]
    fwd = network_bound(net, device, batch, precision)
    foot = [
        f"roofline bound on {device.name} ({device.peak(precision):.3g} FLOP/s at {precision}, "
        f"{device.bandwidth:.3g} B/s), batch {batch}: forward >= {fmt_seconds(fwd)}, training step >= "
        f"{fmt_seconds(3 * fwd)}",
        "  (a lower bound, not a prediction, if each layer is its own kernel reading its inputs and weights "
        "and writing its output once: unfused)",
    ]
    return cols, foot


def roofline_json(net, device, batch: int, precision: str) -> dict:
    """The roofline bound for `--json`: the device (name, peak FLOP/s at `precision`, bandwidth in
    bytes/s, source), batch, precision, forward and training-step seconds, and per layer its FLOPs,
    bytes moved, seconds and whether it is compute-bound. Raises `KeyError` for an unknown precision.
    """
    from .roofline import layer_bounds, network_bound
    per = layer_bounds(net, device, batch, precision)
    return {"device": {"name": device.name, "flops": device.peak(precision), "bandwidth": device.bandwidth,
                       "source": device.source},
            "batch": batch, "precision": precision,
            "forward_seconds": network_bound(net, device, batch, precision),
            "training_step_seconds": network_bound(net, device, batch, precision, training=True),
            "layers": {n: {"flops": b.flops, "bytes": b.bytes, "seconds": b.seconds,
                           "compute_bound": b.compute_bound} for n, b in per.items()}}
