"""The op table is complete: every op has a Keras builder, an ONNX emitter and a description, and
on one small network that uses every op, the counts equal the weight shapes the rules give, and
those equal the shapes of the weights Keras itself creates (issue 19, item 1)."""
import math

import pytest

import incdsl
from incdsl.ops import NON_TRAINABLE, OPS, ZERO, Count, apply, describe
from incdsl.weights.arrays import keras_name, weight_shapes

EVERY_OP = """
network every_op() {
  input 16x16x4
  normalize((0.5, 0.4, 0.3, 0.2), 0.25) -> affine(2.0, 0.1) -> zeropad((1, 0, 1, 0))
  conv(8, 3, groups=2, bn=true, bn_scale=false, act=relu)
  dwconv(3, multiplier=2, stride=2, bn=true) -> act(leaky_relu, 0.1)
  sepconv(16, 3, multiplier=2, bias=false, bn=true, act=relu6, dilation=2)
  bn(scale=false) -> lrn(4) -> channel_shuffle(4) -> scale(0.5)
  maxpool(3, stride=2, pad=1, ceil=true)
  add { identity; conv(16, 1, bias=false) -> drop_path(0.1) }
  multiply { identity; gap -> dense(16, act=sigmoid) }
  avgpool(3, stride=1, pad=same, count_pad=true)
  concat { gap; gmp; adaptive_avgpool(3) -> flatten }
  dropout(0.2) -> dense(10, act=softmax)
}
"""


@pytest.fixture(scope="module")
def net():
    return incdsl.loads(EVERY_OP)


def test_the_network_uses_every_op(net):
    assert {layer.op for layer in net.layers.values()} == set(OPS)


def test_every_op_has_an_onnx_emitter_and_a_description(net):
    from incdsl.backends.onnx.direct import EMITTERS
    missing = [op for op in OPS if op != "input" and not callable(EMITTERS.get(op))]
    assert not missing, missing
    seen = {}
    for layer in net.layers.values():
        text = describe(layer)
        assert text.split()[0] == (layer.attrs["fn"] if layer.op == "act" else layer.op)
        seen.setdefault(layer.op, text)
    # one text for every place: the summary's op column and the Graphviz label say the same
    from incdsl.analysis.report import describe as report_describe
    from incdsl.backends.dot_labels import op_text
    for layer in net.layers.values():
        assert op_text(layer) == report_describe(layer) == describe(layer)
    assert seen["conv"] == "conv 3x3 groups 2 bn relu" and seen["maxpool"] == "maxpool 3x3/2 pad 1 ceil"


def _count_of(shapes: dict) -> tuple[int, int]:
    non = sum(math.prod(s) for k, s in shapes.items() if k in NON_TRAINABLE)
    return sum(math.prod(s) for s in shapes.values()) - non, non


def test_counts_equal_the_weight_shapes(net):
    """Hand-worked figures for the weighted layers, and each layer's count from its weights."""
    for name, layer in net.layers.items():
        shapes = weight_shapes(net, name)
        assert (net.counts[name].trainable, net.counts[name].non_trainable) == _count_of(shapes), name
        rule = apply(OPS[layer.op], layer.attrs, [net.shapes[i] for i in layer.inputs])
        assert rule.out == net.shapes[name] and rule.count == net.counts[name]
    conv = next(n for n, l in net.layers.items() if l.op == "conv" and l.attrs["groups"] == 2)
    # 17x17x4 in (zeropad), groups 2: each of 8 filters sees 2 channels; bn without gamma
    assert weight_shapes(net, conv) == {"kernel": (3, 3, 2, 8), "bias": (8,), "beta": (8,),
                                        "moving_mean": (8,), "moving_variance": (8,)}
    assert net.counts[conv] == Count(3 * 3 * 2 * 8 + 8 + 8, 16, 17 * 17 * 8 * 3 * 3 * 2)
    sep = next(n for n, l in net.layers.items() if l.op == "sepconv")
    # 9x9x16 in (dwconv 8 -> 16 at stride 2), multiplier 2: 32 depthwise channels, then 32 -> 16
    assert weight_shapes(net, sep)["pointwise_kernel"] == (1, 1, 32, 16)
    assert net.counts[sep].macs == 9 * 9 * (32 * 3 * 3 + 32 * 16)
    assert net.counts["input"] == ZERO


@pytest.mark.slow  # imports Keras (TensorFlow): some 13 s
def test_every_op_has_a_keras_builder_whose_weights_are_the_rules(net):
    """Every op has a builder, and Keras builds the same arrays, with the same names and shapes,
    and counts the same params."""
    from incdsl.backends.keras.build import BUILDERS
    assert set(OPS) - {"input"} <= set(BUILDERS)
    model = net.to_keras()
    layers = {layer.name: layer for layer in model.layers}
    for name, layer in net.layers.items():
        want = weight_shapes(net, name)
        got = {}
        for part in ("", "bn"):
            if keras_name(name, part) in layers and (part == "" or layer.op != "bn"):
                for v in layers[keras_name(name, part)].weights:
                    key = v.path.split("/")[-1]
                    # Keras 3 calls DepthwiseConv2D's kernel plain "kernel" (Keras 2: depthwise_kernel)
                    got["depthwise_kernel" if layer.op == "dwconv" and key == "kernel" else key] = tuple(
                        v.shape
                    )
        assert got == want, name
    assert model.count_params() == net.total().params
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    assert trainable == net.total().trainable


def test_a_weight_without_an_initial_value_rule_is_an_error_not_zeros(monkeypatch):
    """A new op whose rule names a weight `init_weights` has no rule for ("alpha") must say so,
    not start it at zero (found in review: a new op's weights were exported all zero)."""
    from incdsl.weights import arrays as weights
    net = incdsl.loads("network n() {\n  input 8x8x3\n  conv(4, 3) -> gap -> dense(2)\n}\n")
    assert set(weights.init_weights(net)) == {"conv_1", "dense_1"}
    monkeypatch.setattr(weights, "weight_shapes",
                        lambda net, layer: {"alpha": (4,)} if layer == "conv_1" else {})
    with pytest.raises(ValueError, match="no initial value for weight 'alpha' of conv layer 'conv_1'"):
        weights.init_weights(net)
