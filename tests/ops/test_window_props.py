"""Property tests (issue 29, item 2): incdsl/ir/window.py's output length against Keras' and ONNX
Runtime's own shape arithmetic on random kernels, strides, dilations, pads and ceil modes.

Keras: Conv2D / MaxPooling2D `compute_output_shape` (padding "same" or "valid"; explicit pads as a
ZeroPadding2D before a "valid" layer, which is how the Keras backend builds them). ONNX Runtime:
a one-node graph (Conv or MaxPool with explicit pads, auto_pad SAME_UPPER for TF's "same", and
ceil_mode), run on zeros, its output shape read back. Cheap per example: no weights are trained."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from incdsl.ir.window import extent, output_length, overhang, resolve, same_split

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(1, 23)
kernels = st.integers(1, 6)
strides = st.integers(1, 4)
dilations = st.integers(1, 3)


def ort_length(op: str, size: int, k: int, s: int, d: int, pad, ceil: bool) -> int:
    """The output width ONNX Runtime computes for one Conv or MaxPool node on a 1 x size input (the
    kernel's height is 1, so only the width axis carries the case)."""
    attrs = {"kernel_shape": [1, k], "strides": [1, s], "dilations": [1, d]}
    if pad == "same":
        attrs["auto_pad"] = "SAME_UPPER"  # TF's "same": the odd pixel at the end
    else:
        lo, hi = (0, 0) if pad == "valid" else pad
        attrs["pads"] = [0, lo, 0, hi]
    inputs = ["x"]
    inits = []
    if op == "Conv":
        inits.append(helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, k], np.ones(k, np.float32)))
        inputs.append("w")
    else:
        attrs["ceil_mode"] = int(ceil)
    node = helper.make_node(op, inputs, ["y"], **attrs)
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": np.zeros((1, 1, 1, size), np.float32)})[0].shape[-1]


def keras_length(op: str, size: int, k: int, s: int, d: int, pad) -> int:
    """The output width Keras' layers compute (compute_output_shape; nothing is built)."""
    import keras
    if pad not in ("same", "valid"):  # explicit pads: ZeroPadding2D, then a "valid" layer
        size, pad = size + pad[0] + pad[1], "valid"
    if op == "Conv":
        layer = keras.layers.Conv2D(1, (1, k), strides=(1, s), dilation_rate=(1, d), padding=pad)
    else:
        layer = keras.layers.MaxPooling2D((1, k), strides=(1, s), padding=pad)
    return layer.compute_output_shape((1, 1, size, 1))[2]


@st.composite
def windows(draw, pool: bool = False):
    """(size, kernel, stride, dilation, pad): pad 'same', 'valid' or explicit (lo, hi). ONNX
    Runtime refuses pool pads as wide as the kernel (pads < kernel taps) and TF's "same"
    (auto_pad SAME_UPPER) with a dilation, so those are not drawn; a conv's pads go up to
    the kernel's extent."""
    k, d = draw(kernels), draw(dilations)
    kind = draw(st.sampled_from(["same", "valid", "explicit"]))
    if kind == "same":
        d = 1
    most = k - 1 if pool else extent(k, d)
    pad = kind if kind != "explicit" else (draw(st.integers(0, most)), draw(st.integers(0, most)))
    return draw(sizes), k, draw(strides), d, pad


@SETTINGS
@given(windows())
def test_conv_length_matches_onnxruntime(w):
    size, k, s, d, pad = w
    out, _ = output_length(size, k, s, d, pad, False)
    assume(out >= 1)  # a window that does not fit is an error for every runtime (and for us)
    assert ort_length("Conv", size, k, s, d, pad, False) == out


@SETTINGS
@given(windows(pool=True), st.booleans())
def test_maxpool_length_matches_onnxruntime_in_floor_and_ceil_mode(w, ceil):
    size, k, s, d, pad = w
    out, _ = output_length(size, k, s, d, pad, ceil)
    assume(out >= 1)
    # ONNX Runtime's pools compute auto_pad SAME_UPPER's total as (out - 1) * s + k - size without
    # TF's max(.., 0) and refuse the negative pad that gives (stride > kernel leaving pixels out)
    assume(pad != "same" or (out - 1) * s + k >= size)
    assert ort_length("MaxPool", size, k, s, d, pad, ceil) == out


@SETTINGS
@given(windows(), st.sampled_from(["Conv", "MaxPool"]))
def test_length_matches_keras(w, op):
    size, k, s, d, pad = w
    if op == "MaxPool":
        d = 1  # Keras' pools have no dilation
    elif s > 1:
        d = 1  # Keras' Conv2D refuses strides > 1 with dilation > 1 (the backend subsamples instead)
    out, _ = output_length(size, k, s, d, pad, False)
    assume(out >= 1)
    assert keras_length(op, size, k, s, d, pad) == out


@SETTINGS
@given(windows(pool=True), st.booleans())
def test_resolved_pads_give_the_length_under_the_floor_rule(w, ceil):
    """What the backends rely on: the pads `resolve` writes (real pads plus the ceil overhang) make
    a floor-rule runtime, ONNX Runtime's MaxPool without ceil_mode, give our output length."""
    size, k, s, d, pad = w
    out, _ = output_length(size, k, s, d, pad, ceil and pad != "same")
    assume(out >= 1)
    p = resolve(pad if pad in ("same", "valid") else (0, 0, *pad), (1, k), (1, s), (1, d), (1, size),
                (1, out))
    assert (p.top, p.bottom, p.over_bottom) == (0, 0, 0)
    lo, hi = p.left, p.right + p.over_right
    if pad == "same":
        assert (lo, hi) == same_split(size, k, s, d, out)
    else:
        assert (lo, p.right) == ((0, 0) if pad == "valid" else pad)
        assert p.over_right == overhang(size, k, s, d, lo, p.right, out)
    assume(max(lo, hi) < k)  # ONNX Runtime's pool limit (an overhang can reach the kernel's width)
    assert ort_length("MaxPool", size, k, s, d, (lo, hi), False) == out


@SETTINGS
@given(windows(pool=True), st.booleans())
def test_a_pools_resolved_pads_are_smaller_than_its_window(w, ceil):
    """The ONNX emitter writes a pool's resolved pads as they are (incdsl/backends/onnx/ops.py), which
    onnxruntime accepts only below the window: true of every pool the shape rules admit (no
    dilation, explicit pads below the window): the ceil overhang and pad=same's split end where the
    last window, which starts inside the input, ends."""
    size, k, s, _, pad = w
    out, _ = output_length(size, k, s, 1, pad, ceil and pad != "same")
    assume(out >= 1)
    p = resolve(pad if pad in ("same", "valid") else (0, 0, *pad), (1, k), (1, s), (1, 1), (1, size),
                (1, out))
    assert max(p.left, p.right + p.over_right) < k


def test_onnx_helpers_see_a_known_case():
    """The two references on a case worked by hand: 7 pixels, kernel 3, stride 2, ceil mode, pads
    (0, 1): ceil((7 + 1 - 3) / 2) + 1 = 4 windows; floor mode 3."""
    assert ort_length("MaxPool", 7, 3, 2, 1, (0, 1), True) == 4 == output_length(7, 3, 2, 1, (0, 1), True)[0]
    assert ort_length("MaxPool", 7, 3, 2, 1, (0, 1), False) == 3 == output_length(7, 3, 2, 1, (0, 1),
                                                                                  False)[0]
    assert keras_length("Conv", 7, 3, 2, 1, "same") == 4 == output_length(7, 3, 2, 1, "same", False)[0]
