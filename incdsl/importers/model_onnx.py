"""Read an ONNX file into the flat imported graph, with the `onnx` package alone.

Models of another opset are first brought to OPSET with onnx's version converter. Tensors are
NCHW in ONNX and NHWC in incdsl: weights are transposed to Keras' layouts (Conv OIHW -> HWIO,
Gemm's (out, in) -> (in, out)), and a dense layer after a Flatten of a real feature map gets its
rows permuted from channels-first to channels-last order. Explicit pads map back to `same`
wherever they are exactly TF's same padding for that input size (so a 3x3/1 conv with padding 1
reads `conv(c, 3)`), else to `valid` or the numbers. Constants: initializers, Constant nodes and
Identity nodes of them (the PyTorch exporter shares equal initializers that way).

This file reads the file and keeps the reader's state (constants, which node holds each tensor, its
layout); each ONNX op type's converter is in onnx_ops.py, found through its `CONVERT` dict.

Node names of the PyTorch exporter are module paths (`/Mixed_5b/branch1x1/conv/Conv`): the path
without the op is what the spec writer uses for module calls and layer names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SpecError
from ..source import visible_name
from ..text import first_line
from .flat import Flat, Head, Node, fuse, spec_name
from .onnx_ops import CONVERT, image_inputs
from .onnx_parts import head_name, node_attrs, scope_of, show_names

OPSET = 17  # what the converter brings other opsets to; the ops read here mean the same from 13 on


def read(path: Path) -> Flat:
    """The flat graph of an ONNX model (NCHW weights transposed to Keras' layouts; other opsets through onnx's
    version converter). Raises SpecError for a file that is not ONNX, an unsupported op (named with its node),
    dynamic spatial sizes or several inputs."""
    import onnx

    try:
        # external data would be read from other files the tensors name: refused below instead
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
        raise SpecError(
            f"{path}: not an ONNX model ({type(e).__name__})",
            hint="incdsl import reads .onnx files, .keras and whole-model Keras .h5 files",
        ) from None
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise SpecError(f"{path}: initializer '{visible_name(external[0])}' keeps its data in another file "
                        f"(ONNX external data); incdsl reads only the file it was given",
                        hint="save the model with its weights inside (onnx.save(model, path, "
                             "save_as_external_data=False))")
    if not model.graph.node:
        raise SpecError(f"{path}: not an ONNX model (no graph nodes)")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset < 13:
        try:
            model = onnx.version_converter.convert_version(model, OPSET)
        except Exception as e:  # the converter names the op it cannot adapt
            raise SpecError(
                f"{path}: cannot convert opset {opset} to {OPSET}: {first_line(e)[:200]}") from None
    show_names(model.graph)
    flat = _Reader(model, str(path)).run()
    fuse(flat)
    return flat


class _Reader:
    def __init__(self, model, source: str):
        import onnx.numpy_helper as nh

        self.model, self.source, self.g = model, source, model.graph
        self.consts: dict[str, np.ndarray] = {t.name: self._array(t, nh) for t in self.g.initializer}
        self.value: dict[str, str] = {}  # ONNX tensor -> node of ours holding it
        self.layout: dict[str, str] = {}  # ONNX tensor -> "nchw" feature map or "flat" vector
        self.nh = nh

    def _array(self, tensor, nh) -> np.ndarray:
        """An initializer as numpy; its data must fill the dims it declares (a damaged file's does not)."""
        dims = "x".join(map(str, tensor.dims)) or "a scalar"
        try:
            return nh.to_array(tensor)
        except (ValueError, TypeError, KeyError) as e:  # numpy's "cannot reshape", an unknown data_type
            raise SpecError(
                f"{self.source}: initializer '{tensor.name}' declares dims {dims} but its data does "
                            f"not fill them ({first_line(e)[:120]})",
                            hint="the file is damaged or was not written by an ONNX exporter") from None

    def err(self, node, why: str, hint: str | None = None) -> SpecError:
        return SpecError(f"{self.source}: node '{node.name or node.output[0]}' ({node.op_type}): {why}",
                         hint=hint)

    def run(self) -> Flat:
        g = self.g
        # exporters name the graph after themselves (torch's main_graph, tf2onnx): the file says more
        flat = self.flat = Flat(spec_name(Path(self.source).stem), self.source)
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise SpecError(
                f"{self.source}: the model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                            f"incdsl networks take one image")
        self._input(inputs[0])
        for node in g.node:
            self._node(node)
        taken: set[str] = set()
        for k, out in enumerate(g.output):
            if out.name not in self.value:
                raise SpecError(f"{self.source}: output '{out.name}' is not computed from the input")
            name = head_name(out.name, k, flat.nodes[self.value[out.name]].op, taken)
            taken.add(name)
            flat.heads.append(Head(name, self.value[out.name]))
        return flat

    def _input(self, inp) -> None:
        dims = [
            d.dim_value if d.HasField(
                "dim_value") else (d.dim_param or "?") for d in inp.type.tensor_type.shape.dim]
        if len(dims) != 4:
            raise SpecError(
                f"{self.source}: input '{inp.name}' has {len(dims)} dimensions; incdsl networks take "
                            f"an NCHW image (4 dimensions)")
        _, c, h, w = dims
        fixed = [isinstance(v, int) and v > 0 for v in (c, h, w)]
        if not all(fixed):
            which = ", ".join(n for n, ok in zip(("channels", "height", "width"), fixed) if not ok)
            raise SpecError(
                f"{self.source}: input '{inp.name}' has a dynamic {which} "
                f"({'x'.join(str(d) for d in dims)}); incdsl needs a fixed image size",
                hint="export with a fixed size (no dynamic_axes on dims 2 and 3); the batch may stay dynamic",
            )
        self.flat.add(Node("input", "input", {"height": h, "width": w, "channels": c}, [],
                           what=f"input '{inp.name}'"))
        self.value[inp.name] = "input"
        self.layout[inp.name] = "nchw"

    def const(self, name: str):
        return self.consts.get(name)

    def add(self, node, op: str, attrs: dict, ins: list[str], weights=None, out_layout="nchw"):
        nm = node.name or node.output[0]
        while nm in self.flat.nodes:
            nm += "_"
        n = Node(nm, op, attrs, ins, weights or {}, scope_of(node.name or ""), None,
                 f"'{node.name}' ({node.op_type})")
        self.flat.add(n)
        self.value[node.output[0]] = nm
        self.layout[node.output[0]] = out_layout
        return nm

    def _node(self, node) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, f"op of domain '{node.domain}' has no incdsl equivalent")
        convert = CONVERT.get(node.op_type)
        if convert is None:
            image_inputs(self, node)  # a node fed by something else is refused for that first
            raise self.err(node, "this op has no incdsl equivalent",
                           hint="incdsl's ops are listed in specs/README.md")
        convert(self, node, node_attrs(node))

    def alias(self, out: str, src: str) -> None:
        self.value[out], self.layout[out] = self.value[src], self.layout[src]

    def need_map(self, node, data) -> None:
        if not data:
            raise self.err(node, "has no input computed from the image")

    def shape(self, tensor: str):
        return self.flat.shapes[self.value[tensor]]
