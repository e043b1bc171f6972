"""`incdsl compile SPEC --to onnx`: export the inference network to ONNX, two ways.

- direct (default): `onnx_direct` builds the model from the checked graph with the `onnx` package
  alone (no TensorFlow): NCHW by default, names from the IR, batch norm folded, any opset from 13
  to the newest both onnx and onnxruntime know;
- tf2onnx: build the Keras inference model and convert it (`onnx_tf2onnx`); slow, but an
  independent second opinion on the direct emitter.

Either way the file is written atomically and, unless --no-verify, checked (`onnx_verify`): ONNX's
checker, ONNX's shape inference against the front end's shapes, and onnxruntime against incdsl's
numpy reference (default: neither Keras nor TensorFlow is imported) or, with --verify keras,
against the Keras model holding the same weights. A failed check leaves no file behind.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

from ...errors import OptionError, UsageError
from ...io import atomic_path, check_output, inputs_of

MIN_OPSET = 13
DEFAULT_OPSET = 18  # tf2onnx's newest, so both ways give the same opset unless asked otherwise


@functools.cache
def max_opset() -> int:
    """The newest opset both the onnx package and onnxruntime's CPU kernels know."""
    import onnx
    import onnxruntime.capi._pybind_state as ort_c

    ort_max = max(k.version_range[0] for k in ort_c.get_all_opkernel_def()
                  if k.domain in ("", "ai.onnx") and k.provider == "CPUExecutionProvider")
    return min(onnx.defs.onnx_opset_version(), ort_max)


def max_opset_tf2onnx() -> int:
    """The newest opset `--via tf2onnx` can write: tf2onnx's newest (its OPSET_TO_IR_VERSION
    table), capped by `max_opset()`. Imports tf2onnx (ImportError without incdsl[keras])."""
    from tf2onnx.constants import OPSET_TO_IR_VERSION
    return min(max(OPSET_TO_IR_VERSION), max_opset())


@dataclass
class Result:
    """What `export` wrote: the path, the way (`direct` or `tf2onnx`), opset, input layout
    (`nchw` or `nhwc`), batch (None: dynamic), how many batch norms were folded into convolutions
    and how many BatchNormalization nodes are left, the file's size in bytes, the verification line
    (None with verify=False) and the pixel scaling a trained model carries (None if none)."""
    path: Path
    via: str
    opset: int
    layout: str
    batch: int | None
    folded: int  # batch norms folded into convolutions
    bn_nodes: int  # BatchNormalization nodes left in the model
    size: int
    checked: str | None = None  # the verification line
    preprocess: str | None = None  # the trained model's pixel scaling, carried over

    def lines(self) -> list[str]:
        """The two lines `incdsl compile --to onnx` prints: what was written (size in MB), and
        what was checked."""
        b = "dynamic" if self.batch is None else self.batch
        bn = [f"{self.folded} batch norms folded"] if self.folded else []
        bn += [f"{self.bn_nodes} BatchNormalization nodes"] if self.bn_nodes else []
        bn += [f"raw pixels in (its {self.preprocess} preprocess layer)"] if self.preprocess else []
        return [f"wrote {self.path} ({self.size / 1e6:.1f} MB): {self.via}, opset {self.opset}, "
                f"{self.layout.upper()} input, batch {b}" + "".join(", " + x for x in bn),
                self.checked or "not verified (--no-verify)"]


def export(net, path: str | Path, weights=None, *, opset: int = DEFAULT_OPSET, layout: str = "nchw",
           batch: int | None = None, fold_bn: bool = True, via: str = "direct", verify: bool | str = True,
           seed: int = 0) -> Result:
    """Export `net`'s inference graph (training-only heads dropped) to the ONNX file `path`,
    written atomically (a failed export or check leaves no file), and return a `Result` (path,
    opset, layout, batch, batch norms folded, size in bytes, the verification line).

    Options:
    - `weights` (default None): a dict in the interchange format (layer name -> arrays in Keras
      layouts, see `incdsl.weights.arrays`), a weights file (.keras, .weights.h5, .npz or a PyTorch state
      dict), or None for seeded initial weights.
    - `opset` (default DEFAULT_OPSET, 18): the ONNX opset, from MIN_OPSET (13) to the newest both
      onnx and onnxruntime know (`max_opset()`; with tf2onnx, `max_opset_tf2onnx()`).
    - `layout` (default "nchw"): the input's layout, "nchw" (as PyTorch and ONNX models usually take
      images) or "nhwc" (the spec's own, batch first).
    - `batch` (default None: dynamic): a fixed batch size in images, 1 to MAX_BATCH (2**31 - 1).
    - `fold_bn` (default True): fold each inference batch norm into the convolution before it
      (direct only).
    - `via` (default "direct"): "direct" (the onnx package alone) or "tf2onnx" (needs TensorFlow).
    - `verify` (default True, the same as "numpy"): run ONNX's checker, its shape inference
      against `net.shapes`, and onnxruntime on a random batch against incdsl's numpy reference
      ("numpy": imports neither Keras nor TensorFlow) or against the Keras model holding the same
      weights ("keras": needs Keras and one of its backends); False: no verification.
    - `seed` (default 0): the seed of the initial weights when `weights` is None.

    Raises `incdsl.errors.OptionError` (a `UsageError` naming the parameter) for a layout, via,
    opset or batch out of range, a verification that would need more than VERIFY_BYTES (4 GiB) of
    activations, via="tf2onnx" without TensorFlow, a `verify` other than True, False, "numpy" or
    "keras", or verify="keras" without Keras; `UsageError` for a path that cannot be
    written or that is one of the network's spec files or the weights file (`io.check_output`);
    `incdsl.errors.SpecError` for weights that do not match the network."""
    from .weights import load_weights, read_preprocess

    def whole(n) -> bool:
        return isinstance(n, int) and not isinstance(n, bool)

    if layout not in ("nchw", "nhwc"):
        raise OptionError("{layout} must be nchw or nhwc, got {value}", value=layout)
    if not whole(opset):
        raise OptionError("{opset} must be an int, got {value!r}", value=opset)
    if batch is not None and not whole(batch):
        raise OptionError("{batch} must be {dynamic} or an int, got {value!r}",
                          words={"dynamic": "None (dynamic)"},
                          value=batch)
    if via not in ("direct", "tf2onnx"):
        raise OptionError("{via} must be direct or tf2onnx, got {value}", value=via)
    reference = _reference(verify)
    # up to DEFAULT_OPSET every onnxruntime we accept (>= 1.18) runs: ask the installed one only
    # above it (importing onnxruntime costs a fifth of a direct export)
    if via == "tf2onnx":
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            raise OptionError("{via} tf2onnx converts the Keras model, which needs TensorFlow: "
                              "pip install 'incdsl[keras]' (or use {via_direct})",
                              words={"via_direct": 'via="direct"'}) from None
        top = max_opset_tf2onnx()
    else:
        top = DEFAULT_OPSET if MIN_OPSET <= opset <= DEFAULT_OPSET else max_opset()
    if not MIN_OPSET <= opset <= top:
        raise OptionError("{opset} {value} is out of range: {tool} supports opsets {lo} to {top} here",
                          value=opset, tool=via, lo=MIN_OPSET, top=top)
    if batch is not None and not 1 <= batch <= MAX_BATCH:
        raise OptionError("{batch} must be {dynamic} or an integer from 1 to {max:,}, got {value}",
                          words={"dynamic": "None (dynamic)"}, max=MAX_BATCH, value=batch)
    if reference and batch is not None:
        need = batch * sum(math.prod(net.shapes[n]) for n in net.inference) * 4 * 2  # Keras and onnxruntime
        if need > VERIFY_BYTES:
            raise OptionError("verifying with {batch} {value:,} would need about {gib:,.0f} GiB for the "
                              "activations; use a smaller {batch}, or {no_verify}",
                              words={"no_verify": "verify=False"},
                              value=batch, gib=need / 2**30)
    check_output(path, inputs=inputs_of(net, weights))  # before the work; atomic_path checks again
    w = weights if isinstance(weights, dict) else load_weights(net, weights, seed)
    # a model saved by `incdsl train` scales raw pixels itself: the ONNX model does the same
    pre = None if isinstance(weights, dict) else read_preprocess(weights, net.input_shape[-1])

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    try:
        with atomic_path(path, inputs=inputs_of(net, weights)) as tmp:
            if via == "direct":
                from .direct import emit
                em = emit(net, w, opset=opset, layout=layout, batch=batch, fold_bn=fold_bn, preprocess=pre)
                data = em.serialized()  # once: the checks below reuse these bytes
                Path(tmp).write_bytes(data)
                tensors, folded, model = em.layer_tensors, em.folded, em.head
            else:
                from .tf2onnx import convert
                model = convert(net, w, tmp, opset=opset, layout=layout, batch=batch, preprocess=pre)
                tensors, folded, data = None, 0, Path(tmp).read_bytes()
            bn_nodes = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
            result = Result(path, via, opset, layout, batch, folded, bn_nodes, Path(tmp).stat().st_size,
                            preprocess=pre.kind if pre else None)
            if reference:
                from .verify import Exported
                skeleton = em.skeleton() if via == "direct" else None
                result.checked = _verify(Exported(data, model, skeleton), net, w, tensors, layout, batch, pre,
                                         reference)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    return result


def _reference(verify) -> str | None:
    """What `export`'s `verify` compares onnxruntime against: "numpy", "keras" or None (no checks)."""
    if verify is True or verify == "numpy":
        return "numpy"
    if verify is False:
        return None
    if verify != "keras":
        raise OptionError("{verify} must be True, False, \"numpy\" or \"keras\", got {value!r}", value=verify)
    if importlib.util.find_spec("keras") is None:  # found, not imported: that costs seconds
        raise OptionError("{verify_keras} compares with the Keras model, and Keras is not installed: "
                          "pip install 'incdsl[jax]' (or [torch], [tf]), or leave {verify} out",
                          words={"verify_keras": 'verify="keras"'})
    return "keras"


def _verify(model, net, w: dict, tensors, layout: str, batch: int | None, pre, reference: str) -> str:
    from . import verify as v
    if tensors is not None:
        compared, total = v.check_structure(model, net, tensors, layout, batch)
        shapes = f"{compared} of {total} layer tensors"
    else:
        compared, total = v.check_io_shapes(model, net, layout, batch)
        shapes = f"the input and {compared - 1} output(s) (tf2onnx names tensors its own way)"
    from ..numpy_ref import Unsupported
    first = (f"checked: onnx checker (full); ONNX shape inference agrees with incdsl summary on {shapes}; ")
    try:
        rel, absd, scale, n, on = v.compare_runtime(model, net, w, layout, batch, preprocess=pre,
                                                    reference=reference)
    except Unsupported as e:
        return (
            first + f"onnxruntime not compared: the numpy reference lacks {e} (the comparison with Keras "
            "has it: --verify keras, or verify=\"keras\" in Python)"
        )
    against = "Keras" if reference == "keras" else "incdsl's numpy reference"
    return (first + f"onnxruntime vs {against} on a random batch of {n}: max |diff| {absd:.2g} on {on} "
            f"(scale {scale:.3g}, {rel:.1e} of it; allowed {v.RTOL:g})")


VERIFY_BYTES = 4 << 30  # activations a verification run may take (float32, both runtimes)
MAX_BATCH = (1 << 31) - 1  # ONNX stores dims as int64, but runtimes index batches with int32
