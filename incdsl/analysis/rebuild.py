"""What a saved model needs to rebuild its network without Keras: the spec's text and arguments.

`incdsl compile --to keras` and `incdsl train` add `record(net)` to the .keras file's metadata; the
fast `incdsl predict` (train/predict_light.py) calls `rebuild` on it, builds the network from the
recorded text (never from the files on disk, which may have changed since) and runs it with
incdsl's numpy reference on the archive's own weights.

A record is trusted only as far as it can be checked: the rebuilt network must print the same
`incdsl expand` text (every layer, its op and arguments, inputs and shape, and the heads) as the
network the model was built from, whose SHA-256 the record holds. Anything else (a record from
elsewhere, a source missing from it, a spec that no longer elaborates) gives None, and the
caller loads the model with Keras instead.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import SpecError, UsageError
from .report import expand_text

FORMAT = "incdsl-rebuild/1"
KEY = "rebuild"  # the record's key in incdsl_spec.json and incdsl.json


def fingerprint(net) -> str:
    """SHA-256 (hex) of `net.expand()`'s text: the layers, their ops, arguments, inputs and
    shapes, and the heads."""
    return hashlib.sha256(expand_text(net).encode()).hexdigest()


def record(net) -> dict | None:
    """The JSON-able record that rebuilds `net`: format, the spec's resolved path, the network's
    name, its arguments, the text of each file it was read from (keyed by resolved path) and the
    fingerprint. None for a network not read from files (`incdsl.loads`), whose files cannot be
    read now, or with arguments JSON cannot hold."""
    if not net.input_files:
        return None
    try:
        root = str(Path(net.input_files[0]).resolve())
        sources = {str(Path(p).resolve()): Path(p).read_text(encoding="utf-8") for p in net.input_files}
        params = json.loads(json.dumps(net.params))
    except (OSError, UnicodeDecodeError, TypeError, ValueError):
        return None
    return {"format": FORMAT, "spec": root, "network": net.name, "params": params, "sources": sources,
            "fingerprint": fingerprint(net)}


def rebuild(rec) -> object | None:
    """The `Network` that `rec` (a `record`, as read back from JSON) describes, built from the
    recorded text alone, or None when it cannot be built that way or differs from the network
    recorded (see the module docstring)."""
    from ..network import Spec
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        return None
    sources, params = rec.get("sources"), rec.get("params")
    if not (isinstance(sources, dict) and isinstance(params, dict) and isinstance(rec.get("spec"), str)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in sources.items())):
        return None
    try:
        spec = Spec.from_sources(rec["spec"], {Path(k): v for k, v in sources.items()}, rec.get("network"))
        if spec.program.files:  # a file not in the record was read from disk
            return None
        net = spec.build(**params)
    except (SpecError, UsageError, OSError, ValueError, TypeError, KeyError, RecursionError):
        return None
    return net if fingerprint(net) == rec.get("fingerprint") else None
