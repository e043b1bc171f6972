"""Read a Keras model (`.keras`, or a whole-model Keras `.h5`) into the flat imported graph.

Keras is imported here, lazily, on the backend side: `incdsl import` of an ONNX file never loads
it. The model is loaded with `keras.models.load_model` (keras.applications' own custom layer,
Inception-ResNet-v2's CustomScaleLayer, and incdsl's custom layers are supplied), then read
layer by layer from its functional config; weights come from the layers' variables, already in the
interchange format's NHWC layouts.

A `.keras` file that `incdsl compile --to keras` wrote carries `incdsl_spec.json` (network name,
parameters, heads): its layer names are the IR names with '-' for '/' (weights.keras_name) and
`-bn`, `-act`, `-pad` mark a node's parts, so the import gives every layer back its own name.

This file loads the model and walks its layers; each layer class's converter is in keras_convert.py,
found through its `CONVERT` dict.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import SpecError
from ..inputs import SPEC_ENTRY, read_spec_meta
from ..source import visible_name
from ..text import first_line
from ..untrusted import check_weights_input
from ..weights.arrays import SEP
from .flat import KEYWORDS, Flat, Head, Node, fuse, spec_name
from .keras_convert import KerasLayer, translate

_PARTS = ("bn", "act", "pad")


def check_meta(meta: dict | None, path) -> None:
    """Refuse an incdsl_spec.json whose contents a compiled file could not hold: the network name
    and head names must be identifiers, the parameters and layers JSON objects (written by
    keras_file.write_spec_meta). The SpecError says what is wrong with the file."""
    if meta is None:
        return
    what = None
    if not isinstance(meta, dict):
        what = "is not a JSON object"
    elif not isinstance(meta.get("network"), str) or not re.fullmatch(r"[A-Za-z_]\w*", meta["network"]):
        what = f"names the network {visible_name(repr(meta.get('network')))[:80]}, which is not an identifier"
    elif meta["network"] in KEYWORDS:
        what = (f"names the network {meta['network']!r}, a word of the language (no network incdsl writes "
                f"has that name)")
    elif not isinstance(meta.get("params", {}), dict) or not isinstance(meta.get("layers", {}), dict):
        what = "has parameters or layers that are not JSON objects"
    elif not isinstance(meta.get("heads", []), list) or not all(
            isinstance(h, dict) and isinstance(h.get("name"), str) and re.fullmatch(r"[A-Za-z_]\w*",
                                                                                    h["name"])
            for h in meta.get("heads", [])):
        what = "has heads that are not objects with an identifier for a name"
    if what:
        raise SpecError(f"{path}: its {SPEC_ENTRY} {what}: the file was damaged or edited after "
                        f"incdsl compile wrote it",
                        hint=f"delete {SPEC_ENTRY} from the archive to import it as a plain Keras model")


def load(path: Path):
    """The Keras model in `path`; any failure is a SpecError naming the file."""
    with open(path, "rb") as f:  # before Keras takes its seconds to load
        magic = f.read(8)
    if not (magic.startswith(b"PK") or magic.startswith(b"\x89HDF")):
        raise SpecError(
            f"{path}: not a Keras model (a .keras file is a zip archive, an .h5 file HDF5)",
            hint="incdsl import reads .keras and whole-model .h5 files (model.save), and ONNX files",
        )
    check_weights_input(path)  # a zip bomb, external HDF5 storage: refused before Keras reads
    import keras
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    # incdsl's own layers (incdsl>LRN ...) are registered with Keras whenever incdsl is imported
    # (backends/keras/register.py), so a compiled model loads without importing the backend here
    custom = {"CustomScaleLayer": CustomScaleLayer}
    try:
        return keras.models.load_model(path, compile=False, custom_objects=custom)
    except Exception as e:  # Keras raises many kinds for a file that is not a model
        raise SpecError(
            f"{path}: not a Keras model Keras can load: {first_line(e)[:200]}",
            hint="incdsl import reads .keras and whole-model .h5 files (model.save), and ONNX files",
        ) from None


def read(path: Path) -> Flat:
    """The flat graph of the Keras model in `path`, fused (conv + bn + act as one node)."""
    meta = read_spec_meta(path) if path.suffix == ".keras" else None
    check_meta(meta, path)
    model = load(path)
    flat = from_model(model, str(path), meta)
    fuse(flat)
    if meta and meta.get("layers"):
        restore_attrs(flat, meta["layers"])
    return flat


def restore_attrs(flat: Flat, recorded: dict) -> None:
    """Give a compiled model's layers the arguments its spec wrote (incdsl_spec.json's `layers`),
    where the Keras layers cannot say them (`ceil=true` on a stride-1 pool changes no shape; weight
    decay, init). Only a record of the same op whose arguments give the same output shape replaces
    what was read; the written spec is then checked against these nodes as always."""
    from ..ops import OPS, ShapeError, infer, normalize

    for node in flat.nodes.values():
        rec = recorded.get(node.want) if node.want else None
        if not rec or rec.get("op") != node.op:
            continue
        try:
            attrs = normalize(OPS[node.op], {**node.attrs, **_tuples(rec.get("attrs", {}))})
            out, _, _ = infer(OPS[node.op], attrs, [flat.shapes[i] for i in node.inputs])
        except (ValueError, ShapeError, KeyError):
            continue
        if tuple(out) == tuple(flat.shapes[node.name]):
            node.attrs = attrs


def _tuples(v):
    """JSON's lists back as the tuples incdsl's arguments hold."""
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v


def from_model(model, source: str, meta: dict | None = None) -> Flat:
    """The flat graph of a functional Keras model (not yet fused)."""
    import keras

    try:
        config = model.get_config()
        layers_cfg = config["layers"]
    except (NotImplementedError, KeyError, TypeError):
        raise SpecError(f"{source}: only functional Keras models can be imported (this is a "
                        f"{type(model).__name__} without a layer graph)") from None
    name = meta["network"] if meta else spec_name(model.name)
    flat = Flat(name, source)
    if meta:
        flat.params = dict(meta.get("params", {}))
    if "input_layers" not in config:  # a Sequential model: its layers form a chain
        config = _sequential_as_functional(model, config, source)
        layers_cfg = config["layers"]
    inputs = config["input_layers"]
    if len(inputs) != 1 and not (len(inputs) == 3 and isinstance(inputs[0], str)):
        raise SpecError(f"{source}: the model has {len(inputs)} inputs ({', '.join(i[0] for i in inputs)}); "
                        f"incdsl networks take one image")
    read = _Reader(flat, model, meta is not None, keras)
    for lc in layers_cfg:
        read.layer(lc)
    outs = config["output_layers"]
    outs = [outs] if outs and isinstance(outs[0], str) else outs
    heads = (meta or {}).get("heads") or []
    taken: set[str] = set()
    for i, (lname, _, _) in enumerate(outs):
        node = read.alias.get(lname, lname)
        h = heads[i] if i < len(heads) else {"name": spec_name(lname, taken)}
        taken.add(h["name"])
        flat.heads.append(Head(h["name"], node, bool(h.get("train_only", False)),
                               float(h.get("loss_weight", 1.0))))
    return flat


def _sequential_as_functional(model, config: dict, source: str) -> dict:
    """A Sequential model's config written as a functional one (keras.Sequential: each layer reads
    the one before; the input is its InputLayer, or the shape it was built with)."""
    layers = [dict(lc, name=lc.get("name") or lc["config"]["name"]) for lc in config["layers"]]
    if not layers or layers[0]["class_name"] != "InputLayer":
        shape = getattr(model, "inputs", None) and tuple(model.inputs[0].shape)
        if not shape:
            raise SpecError(f"{source}: the Sequential model was never built, so its input size is unknown",
                            hint="give it a keras.Input((height, width, channels)) first")
        layers.insert(0, {"class_name": "InputLayer", "name": "input_layer",
                          "config": {"name": "input_layer", "batch_shape": list(shape)}})
    prev = None
    for lc in layers:
        lc["inbound_nodes"] = [] if prev is None else [
            {"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [prev, 0, 0]}}]}]
        prev = lc["name"]
    return {"layers": layers, "input_layers": [[layers[0]["name"], 0, 0]], "output_layers": [[prev, 0, 0]]}



def to_snake_case(cls: str) -> str:
    """Keras' automatic layer names: the class name in snake case (keras.src.utils.naming)."""
    from keras.src.utils.naming import to_snake_case as snake
    return snake(cls)


class _Reader:
    def __init__(self, flat: Flat, model, compiled: bool, keras):
        self.flat, self.model, self.compiled, self.keras = flat, model, compiled, keras
        self.alias: dict[str, str] = {}  # layer name -> node holding its value (pass-through layers)

    def _inputs(self, lc) -> list[str]:
        nodes = lc.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise SpecError(
                f"{self.flat.source}: layer {lc['name']} ({lc['class_name']}) is used {len(nodes)} "
                            f"times; incdsl layers are used once (shared layers cannot be imported)")
        if not nodes:
            return []
        found: list[str] = []

        def walk(x):
            if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
                found.append(x["config"]["keras_history"][0])
            elif isinstance(x, (list, tuple)):
                for y in x:
                    walk(y)
        walk(nodes[0]["args"])
        return [self.alias.get(n, n) for n in found]

    def _names(self, lname: str) -> tuple[str | None, tuple[str, ...], str]:
        """(want, path, what) for a layer: the IR name for a compiled model's layers."""
        if self.compiled:
            parts = lname.split(SEP)
            if len(parts) > 1 and parts[-1] in _PARTS:
                parts = parts[:-1]
            want = "/".join(parts)
            return want, tuple(parts), lname
        return None, tuple(lname.split("_")), lname

    def layer(self, lc: dict) -> None:
        cls, c, lname = lc["class_name"], lc["config"], lc["name"]
        ins = self._inputs(lc)
        what = f"{lname} ({cls})"
        want, path, _ = self._names(lname)
        auto = re.fullmatch(re.escape(to_snake_case(cls)) + r"(_\d+)?", lname) is not None
        if self.compiled:
            auto = False
        elif auto:
            path = ()
        layer = self.model.get_layer(lname) if cls != "InputLayer" else None
        shape = tuple(layer.output.shape[1:]) if cls != "InputLayer" else tuple(c["batch_shape"][1:])
        spec = translate(KerasLayer(cls, c, layer, ins, what, self.flat.source, self.keras))
        if spec is None:  # a pass-through layer (Identity, a head's name)
            self.alias[lname] = ins[0]
            return
        op, attrs, weights, extra = spec.op, spec.attrs, spec.weights, spec.scale
        if cls == "InputLayer":
            if any(d is None for d in shape):
                raise SpecError(
                    f"{self.flat.source}: input '{lname}' has a dynamic size {_dims(shape)}; incdsl "
                                f"needs a fixed height, width and channels",
                                hint="rebuild the model with a fixed input_shape, e.g. (299, 299, 3)")
            if len(shape) != 3:
                raise SpecError(
                    f"{self.flat.source}: input '{lname}' is {_dims(shape)}; incdsl networks take "
                                f"an HxWxC image")
            self.flat.add(Node("input", "input", dict(zip(("height", "width", "channels"), shape)), [], {},
                               (), "input" if self.compiled else None, what))
            self.alias[lname] = "input"
            return
        if extra is not None:  # CustomScaleLayer: x + r * scale as scale, then add
            sname = f"{lname}{SEP}scale" if not self.compiled else lname + "_scale"
            self.flat.add(Node(sname, "scale", {"factor": extra}, [ins[1]], {}, path, None, what))
            ins = [ins[0], sname]
        self.flat.add(Node(lname, op, attrs, ins, weights, path, want, what), shape)


def _dims(shape) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)
