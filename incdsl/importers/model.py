"""`incdsl import`: a Keras or ONNX model file in, a readable spec (and its weights) out.

read (model_keras / model_onnx) -> fuse (flat.py) -> decompose (structure.py) -> write (writer.py)
-> check: the written spec is parsed and elaborated by the front end, and every layer it gives must
be the imported layer it stands for (op, every argument, inputs, shape), so a spec that would not
be the source is never written. The weights are then keyed by the spec's layer names.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError, SpecError, UsageError
from .flat import Flat
from .render import NameMismatch
from .structure import decompose
from .writer import Written, write_spec

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass
class Imported:
    """The result: spec text, the checked network it elaborates to, and its weights by layer name."""
    source: Path
    kind: str                  # "keras" or "onnx"
    text: str
    net: object                # incdsl.network.Network of the written spec
    weights: dict              # IR layer name -> {key: NHWC array}
    written: Written
    notes: list[str] = field(default_factory=list)


def kind_of(path: Path) -> str:
    """"keras" or "onnx", by suffix, else by the file's first bytes."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in KERAS_SUFFIXES:
        return "keras"
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK") or head.startswith(b"\x89HDF"):
        return "keras"
    return "onnx"


def read(path: Path) -> tuple[str, Flat]:
    """(the source's kind, its flat graph) for a .keras/.h5 or .onnx file; UsageError for a missing file or a
    folder, SpecError for a file that is not a model."""
    if not path.exists():
        raise UsageError(f"no such model file: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a directory; incdsl import reads a .keras, .h5 or .onnx file")
    kind = kind_of(path)
    if kind == "keras":
        from . import model_keras
        return kind, model_keras.read(path)
    from . import model_onnx
    return kind, model_onnx.read(path)


def import_model(path: str | Path, spec_path: str | Path) -> Imported:
    """Import the model at `path`; the spec is checked as if it were at `spec_path` (not written:
    `commands/import_.py` writes it, atomically, with the weights)."""
    path = Path(path)
    kind, flat = read(path)
    chain, taps = decompose(flat)
    header = _header(path, kind, flat)
    notes = []
    try:
        written = write_spec(flat, chain, taps, header, use_names=True)
    except NameMismatch as e:
        notes.append(f"the source's name '{e}' cannot be given back by the written structure; layers are "
                     f"named automatically")
        written = write_spec(flat, chain, taps, header, use_names=False)
    net = _elaborate(written, Path(spec_path), flat)
    mapping = check(flat, written, net)
    weights = {mapping[n]: dict(node.weights) for n, node in flat.nodes.items() if node.weights}
    return Imported(path, kind, written.text, net, weights, written, notes)


def _header(path: Path, kind: str, flat: Flat) -> str:
    what = "Keras" if kind == "keras" else "ONNX"
    return (f"# {flat.name}, imported from {path.name} ({what}) by `incdsl import`.\n"
            f"# Modules are the source's repeated blocks; `defaults` hold the arguments most layers share.")


def _elaborate(written: Written, where: Path, flat: Flat):
    """Parse and check the spec text as the front end reads a file. A spec that does not check is
    incdsl import's fault (or a pattern it does not know): the error names the source's layer the
    failing line stands for, never the temporary file."""
    import tempfile

    from ..network import load

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / where.name
        spec.write_text(written.text)
        try:
            return load(spec)
        except SpecError as e:
            line = e.span.line if e.span is not None and e.span.file == str(spec) else None
            node = written.line_nodes.get(line) if line else None
            if node is None and e.notes:
                node = next((written.line_nodes.get(n.span.line) for n in e.notes
                             if n.span is not None and n.span.file == str(spec)), None)
            what = f"layer {flat.nodes[node].what or node}" if node in flat.nodes else f"network {flat.name}"
            text = written.text.split("\n")[line - 1].strip() if line else ""
            at = f" (its line {line}: `{text.split('#')[0].strip()}`)" if line else ""
            raise SpecError(f"{flat.source}: the spec written for {what}{at} does not check: {e.message}",
                            hint="a bug in incdsl import or a pattern it does not support; please report it "
                                 "with the model") from None


def check(flat: Flat, written: Written, net) -> dict[str, str]:
    """Map each imported node to the spec's layer standing for it; any difference is a SpecError."""
    order = ["input"] + written.order
    layers = list(net.layers.values())
    if len(order) != len(layers):
        raise SpecError(
            f"{flat.source}: the written spec has {len(layers)} layers for {len(order)} imported ones "
                        f"(a bug in incdsl import)")
    mapping: dict[str, str] = {}
    for node_name, layer in zip(order, layers):
        node = flat.nodes[node_name]
        want_inputs = tuple(mapping.get(i, "?") for i in node.inputs)
        problems = []
        if node.op != layer.op:
            problems.append(f"op {layer.op}")
        elif node.attrs != layer.attrs:
            diff = {k: v for k, v in layer.attrs.items() if node.attrs.get(k) != v}
            problems.append(f"arguments {diff} instead of {({k: node.attrs.get(k) for k in diff})}")
        if want_inputs != layer.inputs:
            problems.append(f"inputs {', '.join(layer.inputs)}")
        if tuple(net.shapes[layer.name]) != tuple(flat.shapes[node_name]):
            problems.append(f"shape {net.shapes[layer.name]}")
        if problems:
            raise SpecError(f"{flat.source}: layer {node.what or node_name} ({node.op}) would be written as "
                            f"'{layer.name}' with {'; '.join(problems)} (a bug in incdsl import)")
        mapping[node_name] = layer.name
    heads = {h.name: h.node for h in net.heads}
    for h in flat.heads:
        if heads.get(h.name) != mapping[h.node]:
            raise SpecError(
                f"{flat.source}: output {h.name} would be {heads.get(h.name)} (a bug in incdsl import)")
    return mapping


def save_weights(imported: Imported, path: str | Path) -> str:
    """Write the weights as a .keras model of the written spec, which both `--weights` paths read
    (the Keras backend by layer name, the ONNX backend with h5py). Returns what was written. The
    caller makes it atomic (commands/import_.py)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise OptionError("{weights_out} writes a .keras file (which `{weights}` reads); got {path}",
                          words={"weights_out": "save_weights", "weights": "to_keras(weights=...)"},
                          path=path)
    if importlib.util.find_spec("keras") is None:  # found, not imported
        raise OptionError("{weights_out} needs Keras ({name} is not installed): pip install 'incdsl[keras]'",
                          words={"weights_out": "save_weights"}, name="keras")
    def build_and_save():
        model = imported.net.to_keras(weights=imported.weights)
        model.save(path)
        return f"{model.count_params():,} params"
    return _deep(build_and_save, len(imported.net.layers))


def _deep(fn, layers: int):
    """`fn()` with room for Keras' recursion over a deep graph: Keras walks a functional model's
    layers recursively (keras/src/ops/function.py, a frame or more per layer), which overflows
    Python's default limit of 1,000 from about 900 chained layers. Run in a thread with a 512 MB
    stack and a limit of 10 frames per layer, restored afterwards; exceptions come back as raised."""
    import threading

    if layers < 500:
        return fn()
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            out["error"] = e
    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
    sys.setrecursionlimit(max(old_limit, 10 * layers + 1000))
    try:
        threading.stack_size(512 * 1024 * 1024)
        # Ctrl-C still ends the process
        worker = threading.Thread(target=run, name="incdsl-deep-keras", daemon=True)
        worker.start()
    finally:
        threading.stack_size(old_stack)
    try:
        worker.join()
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in out:
        raise out["error"]
    return out["value"]
