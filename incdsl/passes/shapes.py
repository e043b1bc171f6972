"""Shape inference: every layer's output shape, or a SpecError at the layer at fault."""
from __future__ import annotations

import math
import re
from dataclasses import replace

from ..errors import Note, SpecError, call_note
from ..ir.graph import Graph
from ..ops import OPS, Count, Shape, ShapeError, fitted_kernel, groups
from ..text import shape_text
from .min_input import smallest_input
from .size_trace import size_notes

# Absurd sizes, refused by `check` so that no backend tries to allocate them (issue 12: a
# 67 G-param dense layer passed `check` and died in `compile` asking for 250 GiB). Far above every
# Inception (the largest, Inception-ResNet-v2, has 56 M params and 1.1 M-element tensors).
MAX_PARAMS = 1 << 31  # params of the whole network: 8 GiB of float32 weights
MAX_ELEMENTS = 1 << 31  # elements of one layer's output for one image: 8 GiB of float32


def infer_shapes(g: Graph) -> tuple[Graph, dict[str, Shape], dict[str, Count], dict[str, str]]:
    """Every layer's output shape, in the graph's (topological) order.

    Returns (graph, shapes, counts, derivations): `g` with each `fit` conv's kernel written at its
    input's size, as the backends build it (`g` itself, unchanged, when no kernel changes); shape
    per layer as (H, W, C) for images (NHWC, batch left out) or (C,) for vectors;
    `incdsl.ops.Count` per layer (trainable and non-trainable params, MACs for one image); and,
    for layers whose size arithmetic is worth showing in an error note, that arithmetic as text.
    Each op's rule (incdsl/ops/rules.py) gives shape, weight shapes and MACs together; the counts
    are derived from the weight shapes.

    Raises `incdsl.errors.SpecError` at the first layer whose inputs do not fit (with the module
    calls it sits in and, for a too-small input, the smallest input that works), an output over
    MAX_ELEMENTS elements per image, or a network over MAX_PARAMS params."""
    shapes: dict[str, Shape] = {}
    counts: dict[str, Count] = {}
    whys: dict[str, str] = {}
    params = 0
    layers = g.layers  # a copy once a `fit` kernel changes: `g` stays as it was
    for name, layer in g.layers.items():
        ins = [shapes[i] for i in layer.inputs]
        try:
            # the kernel the backends build: at this input's size
            if layer.attrs.get("fit") and len(ins[0]) == 3:
                kernel = fitted_kernel(layer.attrs, ins[0])
                if kernel != layer.attrs["kernel"]:
                    layers = dict(layers) if layers is g.layers else layers
                    layer = layers[name] = replace(layer, attrs={**layer.attrs, "kernel": kernel})
            rule = OPS[layer.op].rule(layer.attrs, ins)
        except ShapeError as e:  # explained on the graph as fitted so far, as the size notes re-run the rules
            raise _explain(_with(g, layers), layer, e, shapes, whys) from None
        out, why, cnt = rule.out, rule.why, rule.count  # params derived from the weight shapes
        elements = math.prod(out)
        if elements > MAX_ELEMENTS:
            raise SpecError(
                f"{layer.op} output {shape_text(out)} is absurdly large: {elements:,} elements per image "
                            f"(the limit is {MAX_ELEMENTS:,})", layer.span)
        params += cnt.params
        if params > MAX_PARAMS:
            own = f"this {layer.op} has {cnt.params:,} params" + (
                f", {params:,} up to here" if params != cnt.params else "")
            raise SpecError(f"the network is absurdly large: {own} "
                            f"(the limit is {MAX_PARAMS:,})", layer.span,
                            label=f"{cnt.params:,} params")
        shapes[name], counts[name] = out, cnt
        if why is not None:
            whys[name] = why
    return _with(g, layers), shapes, counts, whys


def _with(g: Graph, layers: dict) -> Graph:
    return g if layers is g.layers else replace(g, layers=layers)


def _explain(g: Graph, layer, e: ShapeError, shapes, whys) -> SpecError:
    if e.culprit is None:
        ins = ", ".join(
            shape_text(
                shapes[i]) if len(shapes[i]) > 1 else f"a vector of {shapes[i][0]}" for i in layer.inputs)
        notes = [Note(e.detail)] if e.detail else []
        notes += call_chain(g, layer.name)
        hint = e.hint
        if e.too_small:
            notes += _smallest_input_note(g)
            trace, cause = size_notes(g, layer.name, shapes, whys)  # where the size went; pad=same pools
            notes += trace
            hint = cause or hint
        what = layer.attrs["fn"] if layer.op == "act" else layer.op  # `relu(0.1)`: say relu, not act
        return SpecError(f"{what} {e.message}", layer.span, hint=hint,
                         label=f"input is {ins}" if ins else None, notes=notes)
    bad, first = layer.inputs[e.culprit], layer.inputs[0]
    if len(shapes[bad]) == len(shapes[first]) == 3 and shapes[bad][:2] == shapes[first][:2]:
        return _channel_mismatch(g, layer, e, shapes)
    # concat/add: point at the branch that disagrees, and show where each got its size
    origin_bad, origin_first = _origin(g, bad, shapes, whys), _origin(g, first, shapes, whys)
    notes = [Note(f"branch 1 gives {shape_text(shapes[first])}", g.layers[first].span)]
    for branch, origin in ((e.culprit + 1, origin_bad), (1, origin_first)):
        if origin is not None:
            notes.append(Note(f"branch {branch} gets {shape_text(shapes[origin][:2])} from {whys[origin]}",
                              g.layers[origin].span))
    span = g.layers[origin_bad].span if origin_bad else g.layers[bad].span
    notes += call_chain(g, layer.name)
    return SpecError(e.message, span, notes=notes, hint=e.hint,
                     label=f"branch {e.culprit + 1} gives {shape_text(shapes[bad])}")


def _channel_mismatch(g: Graph, layer, e: ShapeError, shapes) -> SpecError:
    """Branches at the same spatial size but with other channel counts (a residual add whose
    branch ends with the wrong number of filters): the caret goes to the layer that set the
    disagreeing branch's channels, the notes say where each side's channels come from."""
    bad, first = layer.inputs[e.culprit], layer.inputs[0]
    origin_bad, origin_first = _channel_origin(g, bad), _channel_origin(g, first)
    c_bad, c_first = shapes[bad][-1], shapes[first][-1]
    what = "the block's input (identity)" if _is_identity(layer, first) else shape_text(shapes[first])
    notes = [
        Note(f"branch 1 gives {c_first} channels: {what}, whose channels are set by '{origin_first}' here",
                  g.layers[origin_first].span)]
    notes += call_chain(g, layer.name)
    return SpecError(
        f"{layer.op} inputs disagree on channels: {c_first} vs {c_bad}",
        g.layers[origin_bad].span,
        notes=notes,
        label=f"branch {e.culprit + 1} gives {shape_text(shapes[bad])}",
        hint=f"every input of {layer.op} needs the same channels: end branch {e.culprit + 1} with "
        f"{c_first} filters, or change what feeds the block",
    )


def _channel_origin(g: Graph, node: str) -> str:
    """The nearest layer up the chain that set the channel count (a conv, dense, concat or input)."""
    while g.layers[node].op in groups.KEEPS_CHANNELS and g.layers[node].inputs:
        node = g.layers[node].inputs[0]
    return node


def _is_identity(merge, node: str) -> bool:
    """Is `node` the merge's input itself, not the end of one of its branches (`<scope>/bN/...`)?
    Branch scopes are the merge's own name when it is named, else its parent's."""
    parent = merge.name.rsplit("/", 1)[0] + "/" if "/" in merge.name else ""
    return not any(re.match(re.escape(base) + r"b\d+/", node) for base in (merge.name + "/", parent))


def call_chain(g: Graph, node: str) -> list[Note]:
    """rustc-style notes, innermost first: the module calls whose bodies wrote `node`."""
    calls = {b.name: b for b in g.blocks}
    parts = node.split("/")[:-1]
    notes = []
    for i in range(len(parts), 0, -1):
        b = calls.get("/".join(parts[:i]))
        if b is not None:
            notes.append(call_note(b.module, b.name, b.span))
    return notes


def _smallest_input_note(g: Graph) -> list[Note]:
    side = smallest_input(g)
    if side is None:
        return []
    a = g.layers["input"].attrs
    return [Note(f"the smallest input this network accepts is {side}x{side} (this one is "
                 f"{a['height']}x{a['width']})")]


def _origin(g: Graph, node: str, shapes, whys) -> str | None:
    """The nearest layer up the branch that changed the spatial size."""
    while g.layers[node].inputs:
        src = g.layers[node].inputs[0]
        if node in whys and shapes[node][:2] != shapes[src][:2]:
            return node
        node = src
    return None
