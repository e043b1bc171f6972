"""Byte-identical `.keras` files: the same spec, weights and versions give the same bytes.

Keras 3's `model.save` writes three things that change from run to run (found by comparing two
saves of the same model): the zip entries' modification times (model.weights.h5 gets the clock
time), `date_saved` in metadata.json, and each `shared_object_id` in config.json, which Keras takes
from `id()`, a memory address. Rewritten here: entry times are 1980-01-01 00:00 (the zip epoch, as
Keras already gives the other two entries), `date_saved` is SOURCE_DATE_EPOCH (the reproducible-builds
convention) or that same epoch, and the shared-object ids are renumbered 1, 2, ... in order of first
appearance (Keras only matches them with each other when loading). model.weights.h5 is left as is:
Keras writes it without timestamps, so it already is the same for the same weights.
"""
from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

from ...analysis.rebuild import KEY as REBUILD
from ...analysis.rebuild import record
from ...inputs import SPEC_ENTRY

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def date_saved() -> str:
    """Keras' date format, from SOURCE_DATE_EPOCH when set, else the zip epoch."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return time.strftime("%Y-%m-%d@%H:%M:%S", time.gmtime(int(epoch)))
    return "1980-01-01@00:00:00"


def _renumber(config) -> None:
    ids: dict[int, int] = {}

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "shared_object_id" and isinstance(v, int):
                    node[k] = ids.setdefault(v, len(ids) + 1)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(config)


def make_reproducible(path: str | Path) -> None:
    """Rewrite the .keras archive at `path` in place (it is a temp file of io.atomic_path)."""
    path = Path(path)
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info)) for info in z.infolist()]
    out = path.with_name(path.name + ".rewrite")
    try:
        with zipfile.ZipFile(out, "w") as z:
            for info, data in entries:
                if info.filename == "metadata.json":
                    meta = json.loads(data)
                    meta["date_saved"] = date_saved()
                    data = json.dumps(meta).encode()
                elif info.filename == "config.json":
                    config = json.loads(data)
                    _renumber(config)
                    data = json.dumps(config).encode()
                fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
                fixed.compress_type = info.compress_type
                fixed.external_attr = 0o644 << 16
                fixed.create_system = 3  # unix, wherever it was written
                z.writestr(fixed, data)
        os.replace(out, path)
    finally:
        out.unlink(missing_ok=True)


def write_spec_meta(path, net, inference: bool) -> None:
    """Add incdsl_spec.json to a saved .keras zip: the network's name, parameters and heads, which
    Keras' own config cannot hold, so that `incdsl import` gives back the spec's own header and
    training-only heads (incdsl/importers/model_keras.py reads it)."""
    import json
    import zipfile

    heads = [{"name": h.name, "train_only": h.train_only, "loss_weight": h.loss_weight}
             for h in net.heads if not (inference and h.train_only)]
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in net.params.items()}
    # each layer's op and arguments: what the Keras layers cannot say (ceil=true on a pool where it
    # changes no shape, weight decay, init) comes back exactly; tuples are JSON lists
    layers = {}
    for layer in net.layers.values():
        attrs = {}
        for k, v in layer.attrs.items():
            try:
                json.dumps(v)
            except TypeError:
                continue
            attrs[k] = v
        layers[layer.name] = {"op": layer.op, "attrs": attrs}
    meta = {"network": net.name, "params": params, "heads": heads, "layers": layers}
    meta[REBUILD] = record(net)  # the spec's text: `incdsl predict` runs the model without Keras
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(SPEC_ENTRY, json.dumps(meta, indent=1))
