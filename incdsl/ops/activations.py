"""The activation table: one record per activation of the language, with everything a backend or
importer needs to know of it, so that adding one (hardswish, say) is one row here (and its line in
specs/README.md). tests/ops/test_activation_table.py checks every row: each field is there, and the
numpy function agrees with Keras' activation, torch.nn's module and onnxruntime on sample values.

The meaning is Keras 3's (keras.activations) with Keras' defaults: gelu is exact (erf, not tanh),
leaky_relu's slope is 0.2 unless a spec gives one (LEAKY_RELU_SLOPE), elu's alpha is 1.0,
hard_sigmoid is relu6(x + 3) / 6 (Keras 3's, and PyTorch's Hardsigmoid); softmax and log_softmax
run over the channels (the last axis in NHWC).

This module imports nothing heavy: the front end reads the names. The numpy functions take the
array module as their first argument (`xp`, numpy in practice) so that reading the table does not
load numpy; the ONNX builders take the emitter (backends/onnx/direct.py) and call its `node` and
`const`, so that they need no `onnx` import either.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

# leaky_relu's negative slope when none is given: Keras' default (keras.layers.LeakyReLU,
# keras.activations.leaky_relu); torch.nn.LeakyReLU's is 0.01, TF-slim's tf.nn.leaky_relu 0.2.
LEAKY_RELU_SLOPE = 0.2
ELU_ALPHA = 1.0  # keras.activations.elu's alpha, torch.nn.ELU's and ONNX Elu's default


@dataclass(frozen=True, slots=True)
class Activation:
    """One activation: `name` (the language's word, `act=name`), `keras` (its keras.activations
    name, for `keras.layers.Activation`), `onnx` (emitter, x, layer name, slope) -> the name of the
    tensor it produced, named after the layer (NCHW: softmax over axis 1), `numpy` (xp, x, slope)
    -> the activation of array x (NHWC: softmax over the last axis), `torch` (its torch.nn module
    class name) and `onnx_op` (the ONNX op type that, with its default attributes, is this
    activation, read back by the ONNX importer; None where it takes more than one node or
    attributes the importer checks itself) and `onnx_attrs`, the attributes that op must carry to
    be this activation (as the `onnx` builder writes them; the importer checks them, ONNX's
    defaults filled in: HardSigmoid's default alpha is 0.2, Keras' and PyTorch's is 1/6).
    `slope` is leaky_relu's negative slope (None: the default); the others ignore it.
    """
    name: str
    keras: str
    onnx: Callable
    numpy: Callable
    torch: str
    onnx_op: str | None = None
    onnx_attrs: tuple[tuple[str, float | str], ...] = ()


def _slope(slope) -> float:
    return LEAKY_RELU_SLOPE if slope is None else slope


def _one(op_type: str, **attrs) -> Callable:
    """An ONNX builder that is one node of `op_type` with `attrs`."""
    return lambda em, x, n, slope: em.node(op_type, [x], n, **attrs)


def _relu6_onnx(em, x, n, slope):
    return em.node("Clip", [x, em.const(f"{n}/relu6_min", 0.0), em.const(f"{n}/relu6_max", 6.0)], n)


def _silu_onnx(em, x, n, slope):
    return em.node("Mul", [x, em.node("Sigmoid", [x], f"{n}/sigmoid")], n)


def _gelu_onnx(em, x, n, slope):
    """Exact (erf) GELU, keras.activations.gelu(approximate=False): ONNX's Gelu from opset 20, before
    that x / 2 * (1 + erf(x / sqrt 2))."""
    if em.opset >= 20:
        return em.node("Gelu", [x], n)
    r = em.node("Mul", [x, em.const(f"{n}/gelu_rsqrt2", 1 / math.sqrt(2.0))], f"{n}/gelu_scaled")
    e = em.node("Erf", [r], f"{n}/gelu_erf")
    e1 = em.node("Add", [e, em.const(f"{n}/gelu_one", 1.0)], f"{n}/gelu_erf1")
    hx = em.node("Mul", [x, em.const(f"{n}/gelu_half", 0.5)], f"{n}/gelu_half_x")
    return em.node("Mul", [hx, e1], n)


def _softmax_np(xp, x, slope, log=False):
    z = x - x.max(axis=-1, keepdims=True)
    lse = xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
    return z - lse if log else xp.exp(z - lse)


TABLE: dict[str, Activation] = {a.name: a for a in (
    Activation("relu", "relu", _one("Relu"), lambda xp, x, s: xp.maximum(x, 0), "ReLU", "Relu"),
    Activation("relu6", "relu6", _relu6_onnx, lambda xp, x, s: xp.clip(x, 0, 6), "ReLU6"),
    Activation("sigmoid", "sigmoid", _one("Sigmoid"), lambda xp, x, s: 1 / (1 + xp.exp(-x)), "Sigmoid",
               "Sigmoid"),
    Activation("hard_sigmoid", "hard_sigmoid", _one("HardSigmoid", alpha=1.0 / 6.0, beta=0.5),
               lambda xp, x, s: xp.clip(x + 3, 0, 6) / 6, "Hardsigmoid", "HardSigmoid",
               (("alpha", 1.0 / 6.0), ("beta", 0.5))),
    Activation("tanh", "tanh", _one("Tanh"), lambda xp, x, s: xp.tanh(x), "Tanh", "Tanh"),
    Activation("softmax", "softmax", _one("Softmax", axis=1), _softmax_np, "Softmax"),
    Activation("log_softmax", "log_softmax", _one("LogSoftmax", axis=1),
               lambda xp, x, s: _softmax_np(xp, x, s, log=True), "LogSoftmax"),
    Activation("silu", "silu", _silu_onnx, lambda xp, x, s: x / (1 + xp.exp(-x)), "SiLU"),
    Activation("gelu", "gelu", _gelu_onnx,
               lambda xp, x, s: 0.5 * x * (1 + xp.vectorize(math.erf)(x / math.sqrt(2))), "GELU", "Gelu",
               (("approximate", "none"),)),
    Activation("elu", "elu", _one("Elu", alpha=ELU_ALPHA),
               lambda xp, x, s: xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0))), "ELU", "Elu",
               (("alpha", ELU_ALPHA),)),
    Activation("leaky_relu", "leaky_relu",
               lambda em, x, n, slope: em.node("LeakyRelu", [x], n, alpha=_slope(slope)),
               lambda xp, x, s: xp.where(x > 0, x, _slope(s) * x), "LeakyReLU"),
)}

NAMES = tuple(TABLE)  # the language's activation words, in the order messages list them
ALIASES = {"swish": "silu"}  # other names of the same function (Ramachandran et al. 2017)
