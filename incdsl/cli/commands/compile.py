"""`incdsl compile SPEC --to keras|onnx|dot|svg|png|html`: hand the checked network to a backend."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from ...errors import UsageError, shorten
from ...inputs import check_weights_file
from ...io import check_output, note_input
from .compile_target import target_for
from .spec_args import add_spec_args, load_net

# --to value -> backend module (imported only when chosen) exposing `export(net, path, **options)`.
TARGETS = {"keras": "keras.export", "onnx": "onnx.convert", "dot": "dot", "svg": "dot", "png": "dot",
           "html": "html"}
# what each format needs beyond the bare package, and the extra that brings it
NEEDS = {"keras": ("keras",), "onnx": ("onnx",)}
EXTRAS = {"keras": "'incdsl[jax]' (or 'incdsl[torch]', 'incdsl[tf]')", "onnx": "'incdsl[onnx]'"}
FOLD_ABOVE = 100  # a whole drawing of more layers than this folds module calls unless --depth all


def _depth(text: str):
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got '{text}'") from None
STDOUT_TARGETS = ("dot", "svg", "png", "html")  # `-o -` writes these to standard output


def add_parser(sub) -> None:
    """Add `incdsl compile SPEC --to FORMAT` and its options to `sub` (the argparse subparsers of
    `cli.build_parser`); its handler is `run`."""
    p = sub.add_parser("compile", help="compile a spec to Keras, ONNX, a drawing or an interactive page")
    add_spec_args(p)
    p.add_argument("--to", choices=sorted(TARGETS), help="what to emit (default: from the suffix of -o FILE)")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write (default: named after the network; "
        "'-' for standard output with dot, svg, png and html); never the spec, one of its imports or "
        "weights, a link, a device or a read-only file",
    )
    p.add_argument("--inference", action="store_true", help="keras: leave out training-only heads")
    p.add_argument("--weights", metavar="FILE",
                   help="weights to load: .keras, .weights.h5, a keras.applications .h5, or PyTorch "
                        ".pth/.pt/.safetensors")
    p.add_argument("--opset", type=int, help="onnx: opset version")
    p.add_argument("--layout", choices=("nchw", "nhwc"), default="nchw", help="onnx: tensor layout")
    p.add_argument("--batch", default="dynamic", help="onnx: 'dynamic' or a fixed batch size")
    p.add_argument("--fold-bn", dest="fold_bn", action="store_true", default=True,
                   help="onnx: fold batch norm into convs")
    p.add_argument("--no-fold-bn", dest="fold_bn", action="store_false")
    p.add_argument("--via", choices=("direct", "tf2onnx"), default="direct", help="onnx: how to emit")
    p.add_argument(
        "--verify",
        choices=("numpy", "keras"),
        default="numpy",
        help="onnx: compare onnxruntime with incdsl's numpy reference (default; imports neither Keras nor "
        "TensorFlow) or with the Keras model holding the same weights (needs Keras)",
    )
    p.add_argument("--no-verify", dest="verify", action="store_false", help="onnx: skip verification")
    p.add_argument("--depth", type=_depth, metavar="N|all",
                   help="drawings and the page: fold module calls at depth N "
                   "(drawings: default 1 for networks over 100 layers, else none; the page: default 1, "
                   "its first view); 'all' unfolds every call")
    p.add_argument("--only", metavar="NAME", help="drawings: draw just this module call (e.g. inception3a)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl compile SPEC --to FORMAT` with the parsed command line `args`; returns the exit code (0
    when fine).

    Turns the flags into the backend's `export` options and prints what it wrote. Raises `UsageError` (exit 2)
    for an output path it refuses, a bad `--batch` or when the format's package (the keras or onnx extra) is
    not installed, `SpecError` (exit 1) for a bad spec.
    """
    net = load_net(args)  # notes the spec and its imports as inputs (io.note_input)
    if args.weights:
        note_input(args.weights)
    if args.to is None:
        args.to = target_for(None, args.output)  # -o FILE alone: its suffix names the format
    # refuse a bad output before any work: it must not be an input, a device, a link, a folder...
    if args.output is not None and not (args.output == "-" and args.to in STDOUT_TARGETS):
        check_output(args.output)
    target_for(args.to, args.output)  # a file name that disagrees with --to is bad usage (exit 2)
    if args.weights:
        check_weights_file(args.weights)  # what the file is, before Keras or h5py sees it
    needs = NEEDS.get(args.to, ()) + (("onnxruntime",) if args.to == "onnx" and args.verify else ())
    missing = [m for m in needs if importlib.util.find_spec(m) is None]  # found, not imported
    try:
        if missing:
            raise ImportError(name=missing[0])
        backend = importlib.import_module(f"...backends.{TARGETS[args.to]}", __package__)
    except ImportError as e:
        raise UsageError(f"--to {args.to} needs {e.name}, which is not installed: "
                         f"pip install {EXTRAS.get(args.to, repr('incdsl[all]'))}") from None
    WRITERS[args.to](backend, net, args)
    return 0


def _keras(keras_export, net, args) -> None:
    result = keras_export.export(net, args.output or f"{net.name}.keras", inference=args.inference,
                                 weights=args.weights)
    print(result.line())


def _onnx(onnx, net, args) -> None:
    batch = _batch(args.batch, onnx.MAX_BATCH)
    opset = args.opset if args.opset is not None else onnx.DEFAULT_OPSET
    result = onnx.export(net, args.output or f"{net.name}.onnx", args.weights, opset=opset,
                         layout=args.layout,
                         batch=batch, fold_bn=args.fold_bn, via=args.via, verify=args.verify)
    print("\n".join(result.lines()))


def _drawing(dot, net, args) -> None:
    if args.to != "dot":
        dot.find_dot()  # fail before doing any work, and before touching the output
    depth, only = args.depth, args.only
    if depth == "all":
        depth = None
    elif depth is None and only is None and len(net.layers) > FOLD_ABOVE:
        # a whole big network, layer by layer, is a strip too long to read: fold its module calls
        depth = 1
        print(f"note: {len(net.layers)} layers: module calls drawn folded (--depth all draws every layer, "
              f"--only NAME one module call)", file=sys.stderr)
    if args.output == "-":
        sys.stdout.buffer.write(dot.drawing(net, args.to, depth, only))
        sys.stdout.flush()
        return
    written = dot.export(net, args.output or f"{net.name}.{args.to}", fmt=args.to, depth=depth, only=only)
    print(f"wrote {written.path} ({written.size:,} bytes)")


def _page(html, net, args) -> None:
    if args.only:
        raise UsageError("--only is for drawings (--to svg|png|dot); the page shows every module call: "
                         "search for it there")
    depth = 1 if args.depth is None else args.depth
    if args.output == "-":
        sys.stdout.write(html.to_html(net, depth))
        return
    written = html.export(net, args.output or f"{net.name}.html", depth=depth)
    print(f"wrote {written.path} ({written.size:,} bytes)")


WRITERS = {"keras": _keras, "onnx": _onnx, "dot": _drawing, "svg": _drawing, "png": _drawing, "html": _page}


def _batch(text: str, most: int) -> int | None:
    if text in (None, "dynamic"):
        return None
    n = int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else 0
    if not 1 <= n <= most:
        raise UsageError(f"--batch must be 'dynamic' or an integer from 1 to {most:,}, got '{shorten(text)}'")
    return n
