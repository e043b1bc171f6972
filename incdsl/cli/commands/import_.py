"""`incdsl import MODEL [-o SPEC.inc] [--weights-out W.keras]`: a Keras or ONNX model as a readable spec."""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import UsageError


def add_parser(sub) -> None:
    """Add `incdsl import MODEL` and its options to `sub` (the argparse subparsers of `cli.build_parser`); its
    handler is `run`."""
    p = sub.add_parser("import", help="turn a .keras, Keras .h5 or .onnx model into a readable spec")
    p.add_argument("model", metavar="MODEL", help="a .keras, whole-model Keras .h5 or .onnx file")
    p.add_argument("-o", "--output", metavar="SPEC.inc",
                   help="where to write the spec (default: MODEL's name .inc)")
    p.add_argument("--weights-out", metavar="W.keras",
                   help="also write the weights, as a .keras model of the spec (reads back with --weights)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl import MODEL` with the parsed command line `args`; returns the exit code (0 when fine).

    Raises `UsageError` (exit 2) for a missing model file, an `-o` that is not a .inc name, a `--weights-out`
    that is not .keras, or an output that would overwrite the model.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model = Path(args.model)
    out = Path(args.output) if args.output else model.with_suffix(".inc")
    if out.suffix != ".inc":
        raise UsageError(f"-o writes a spec: give it a .inc name, got {out}")
    weights = Path(args.weights_out) if args.weights_out else None
    if weights is not None and weights.suffix != ".keras":
        raise UsageError(f"--weights-out writes a .keras file (which --weights reads); got {weights}")
    if not model.exists():
        raise UsageError(f"no such model file: {model}")
    from ...io import atomic_path, check_output, note_input
    note_input(model)  # by path and by (st_dev, st_ino): a hard link to the model is the model
    for p in (out, weights):  # before any work: not the model (however named), a link, a device...
        if p is not None:
            check_output(p)

    from ...importers.model import import_model, save_weights
    from ...text import si

    imported = import_model(model, out)
    net, w = imported.net, imported.written
    with atomic_path(out) as spec_tmp:
        Path(spec_tmp).write_text(imported.text)
        saved = None
        if weights is not None:
            with atomic_path(weights) as wtmp:
                saved = save_weights(imported, wtmp)
    t = net.total()
    mods = ", ".join(f"{m} x{n}" if n > 1 else m for m, n in w.modules.items()) or "none"
    print(f"wrote {out}: network {net.name}, {len(net.layers)} layers, modules: {mods}; "
          f"{t.params:,} params ({t.trainable:,} trainable), {t.macs:,} MACs ({si(2 * t.macs)}FLOPs), "
          f"checked layer for layer against {model.name}")
    for note in imported.notes:
        print(f"note: {note}")
    if saved:
        print(f"wrote {weights}: the weights ({saved}); load them with --weights {weights}")
    return 0
