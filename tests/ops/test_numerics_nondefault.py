"""Numerics at non-default values (issue 29, item 1): LRN size/alpha/beta/bias, batch-norm epsilon
and momentum, depthwise and separable convs with a depth multiplier above 1, in the ONNX emitter
(run by onnxruntime) and the Keras backend, against references of our own making neither:
torch.nn.LocalResponseNorm, torch's batch norm and grouped convolution, and the formulas from the
papers / Keras docs written out in numpy here. The values are chosen so that a wrong formula shows
(alpha 0.6 not divided by the size, epsilon 0.5 against variances near 1, momentum 0.7, 3 filters
per channel); the shipped specs use the defaults, which hide such faults. Tiny shapes: quick."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

import incdsl
from incdsl.backends.onnx.direct import emit
from incdsl.weights.arrays import init_weights

H, W, C = 5, 6, 4
RNG_SEED = 29


def net_of(body: str):
    return incdsl.loads(f"network t() {{\n  input {H}x{W}x{C}\n  {body}\n}}\n")


def weights_of(net, seed: int = RNG_SEED) -> dict:
    """Seeded weights with non-trivial biases, gammas, betas and moving statistics (the
    initializers' zeros and ones would hide a wrong epsilon or a swapped gamma/beta)."""
    rng = np.random.default_rng(seed)
    weights = init_weights(net, seed)
    for arrays in weights.values():
        for k in ("bias", "beta", "moving_mean"):
            if k in arrays:
                arrays[k] = rng.standard_normal(arrays[k].shape).astype("float32")
        for k in ("gamma", "moving_variance"):
            if k in arrays:
                arrays[k] = rng.uniform(0.3, 1.5, arrays[k].shape).astype("float32")
    return weights


def batch(seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((2, H, W, C)) * scale).astype("float32")


def run_onnx(net, weights, x: np.ndarray, fold_bn: bool = True) -> np.ndarray:
    """The network's single output for NHWC `x`, from the direct ONNX emitter run by onnxruntime."""
    model = emit(net, weights, layout="nhwc", fold_bn=fold_bn).model
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def run_keras(net, weights, x: np.ndarray) -> np.ndarray:
    return np.asarray(net.to_keras(weights=weights)(x, training=False))


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).detach().numpy()


def the(weights: dict, op: str) -> dict:
    return next(v for k, v in weights.items() if k.startswith(op))


def check(net, weights, x, want, fold_bn=True, tol=1e-4):
    for name, got in (("onnx", run_onnx(net, weights, x, fold_bn)), ("keras", run_keras(net, weights, x))):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=name)


# --- LRN --------------------------------------------------------------------------------------

def lrn_formula(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """Krizhevsky et al. 2012, Section 3.3, in Caffe/PyTorch's form: b_c = a_c / (k + alpha/n *
    sum of a_j^2 over j in [c - n//2, c + (n-1)//2])^beta, channels last, zero beyond the edges."""
    c = x.shape[-1]
    out = np.empty_like(x, dtype=np.float64)
    for i in range(c):
        lo, hi = max(0, i - size // 2), min(c, i + (size - 1) // 2 + 1)
        s = (x[..., lo:hi].astype(np.float64) ** 2).sum(-1)
        out[..., i] = x[..., i] / (bias + alpha / size * s) ** beta
    return out.astype(np.float32)


@pytest.mark.parametrize("size,alpha,beta,bias", [(3, 0.6, 0.9, 1.5), (4, 0.3, 0.6, 2.0), (1, 0.8, 1.2, 0.7)])
def test_lrn_with_non_default_size_alpha_beta_bias(size, alpha, beta, bias):
    net = net_of(f"lrn({size}, alpha={alpha}, beta={beta}, bias={bias})")
    x = batch(1, scale=2.0)  # squares of order 4: alpha / size * sum dominates the bias
    want = nhwc(torch.nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=bias)(nchw(x)))
    np.testing.assert_allclose(lrn_formula(x, size, alpha, beta, bias), want, rtol=1e-5, atol=1e-6)
    check(net, {}, x, want)


# --- batch norm: epsilon at inference ---------------------------------------------------------

def bn_formula(x: np.ndarray, p: dict, eps: float) -> np.ndarray:
    """Ioffe & Szegedy 2015, Algorithm 2 (inference): gamma * (x - mean) / sqrt(var + eps) + beta."""
    gamma = p.get("gamma", 1.0)
    return (
        gamma * (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + eps) + p["beta"]).astype(np.float32)


def test_standalone_bn_epsilon():
    net = net_of("bn(eps=0.5, momentum=0.7)")  # on the input: nothing to fold into
    w = weights_of(net)
    x = batch(2)
    p = the(w, "bn")
    want = nhwc(F.batch_norm(nchw(x), *(torch.from_numpy(p[k]) for k in
                                          ("moving_mean", "moving_variance", "gamma", "beta")), eps=0.5))
    np.testing.assert_allclose(bn_formula(x, p, 0.5), want, rtol=1e-5, atol=1e-5)
    check(net, w, x, want)


@pytest.mark.parametrize("fold_bn", [True, False])
def test_conv_bn_epsilon_folded_and_not(fold_bn):
    # the conv's own batch norm, and a standalone one after a conv (which the emitter folds in)
    for body in ("conv(3, 1, bias=true, bn=true, bn_eps=0.5, bn_momentum=0.7)",
                 "conv(3, 1, bias=false) -> bn(eps=0.5, scale=false)"):
        net = net_of(body)
        w = weights_of(net)
        x = batch(3)
        k = the(w, "conv")
        z = x @ k["kernel"][0, 0] + k.get("bias", 0.0)  # a 1x1 conv is a matrix product per pixel
        p = k if "moving_mean" in k else the(w, "bn")
        check(net, w, x, bn_formula(z, p, 0.5), fold_bn=fold_bn)


# --- batch norm: momentum in training (Keras; an inference graph has no momentum) -------------

@pytest.mark.parametrize("body",
                         ["bn(eps=0.5, momentum=0.7)", "conv(3, 1, bn=true, bn_eps=0.5, bn_momentum=0.7)"])
def test_bn_momentum_updates_the_moving_statistics(body):
    """Keras' BatchNormalization docs: moving_mean = moving_mean * momentum + mean(batch) * (1 -
    momentum), the same for the variance (of the batch, biased). torch's momentum is 1 minus
    Keras': torch.nn.BatchNorm2d(momentum=0.3) gives the same moving mean."""
    import keras
    net = net_of(body)
    w = weights_of(net)
    model = net.to_keras(weights=w)
    x = batch(4)
    (bn,) = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert (bn.momentum, bn.epsilon) == pytest.approx((0.7, 0.5))
    p = {k: v.copy() for k, v in (w.get("bn_1") or the(w, "conv")).items()}
    z = x if body.startswith("bn") else x @ p["kernel"][0, 0] + p["bias"]
    y = np.asarray(model(x, training=True))
    mean, var = z.mean((0, 1, 2)), z.var((0, 1, 2))  # the batch's, biased
    np.testing.assert_allclose(np.asarray(bn.moving_mean), 0.7 * p["moving_mean"] + 0.3 * mean, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), 0.7 * p["moving_variance"] + 0.3 * var,
                               rtol=1e-5, atol=1e-5)
    ref = torch.nn.BatchNorm2d(C if body.startswith("bn") else 3, eps=0.5, momentum=0.3)
    with torch.no_grad():
        ref.running_mean.copy_(torch.from_numpy(p["moving_mean"]))
        ref.running_var.copy_(torch.from_numpy(p["moving_variance"]))
        ref.weight.copy_(torch.from_numpy(p["gamma"]))
        ref.bias.copy_(torch.from_numpy(p["beta"]))
    want = nhwc(ref.train()(nchw(z.astype("float32"))))  # training: normalized by the batch's own statistics
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), ref.running_mean.numpy(), rtol=1e-5, atol=1e-5)


# --- depth multiplier > 1 ---------------------------------------------------------------------

def grouped(kernel: np.ndarray) -> torch.Tensor:
    """Keras' depthwise kernel (kh, kw, cin, multiplier) as torch's grouped weight (cin *
    multiplier, 1, kh, kw): output channel c * multiplier + j is input channel c's j-th filter."""
    kh, kw, cin, m = kernel.shape
    return torch.from_numpy(kernel.transpose(2, 3, 0, 1).reshape(cin * m, 1, kh, kw).copy())


def test_dwconv_with_multiplier_3():
    net = net_of("dwconv(3, multiplier=3, stride=2, pad=valid, bn=true, bn_eps=0.5)")
    w = weights_of(net)
    x = batch(5)
    p = the(w, "dwconv")
    assert p["depthwise_kernel"].shape == (3, 3, C, 3)
    z = F.conv2d(nchw(x), grouped(p["depthwise_kernel"]), torch.from_numpy(p["bias"]), stride=2, groups=C)
    want = bn_formula(nhwc(z), p, 0.5)
    assert want.shape == (2, 2, 2, 3 * C)
    check(net, w, x, want)


def test_sepconv_with_multiplier_2():
    net = net_of("sepconv(5, 3, multiplier=2, pad=same, bn=true, bn_eps=0.5)")
    w = weights_of(net)
    x = batch(6)
    p = the(w, "sepconv")
    assert p["depthwise_kernel"].shape == (3, 3, C, 2) and p["pointwise_kernel"].shape == (1, 1, 2 * C, 5)
    mid = F.conv2d(F.pad(nchw(x), (1, 1, 1, 1)), grouped(p["depthwise_kernel"]), groups=C)
    pw = torch.from_numpy(p["pointwise_kernel"].transpose(3, 2, 0, 1).copy())
    z = F.conv2d(mid, pw, torch.from_numpy(p["bias"]))
    check(net, w, x, bn_formula(nhwc(z), p, 0.5))
