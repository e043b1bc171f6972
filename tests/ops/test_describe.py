"""The one-line description of a layer (incdsl/ops/describe.py) that the Graphviz labels, the HTML
viewer and `summary`'s report show: each part appears when, and only when, it says something."""
from __future__ import annotations

import incdsl
from incdsl.ops.describe import describe

NET = """
network d() {
  input 16x16x4
  a = conv(4, 3, stride=2x1)
  b = conv(4, 3, stride=2, pad=valid)
  c = conv(4, 3, dilation=2, groups=2, bn=true, act=relu)
  e = maxpool(3, stride=2, ceil=true)
  f = leaky_relu(0.1)
  g = relu
  h = lrn(3)
  i = scale(0.17)
  j = dropout(0.5)
  k = drop_path(0.25)
  l = adaptive_avgpool(2)
  m = sepconv(8, 3x1, stride=1x2)
  gap -> dense(3, act=softmax)
}
"""


def test_each_layer_is_described_by_what_is_not_a_default(spec_file):
    net = incdsl.load(spec_file(NET))
    assert {n: describe(layer) for n, layer in net.layers.items()} == {
        "input": "input",
        "a": "conv 3x3/2x1",  # a stride per axis when they differ
        "b": "conv 3x3/2 valid",  # one number when they agree; padding other than conv's default
        "c": "conv 3x3 dil 2x2 groups 2 bn relu",
        "e": "maxpool 3x3/2 ceil",
        "f": "leaky_relu slope 0.1",  # an activation layer is named by its function
        "g": "relu",
        "h": "lrn 3",
        "i": "scale 0.17",
        "j": "dropout 0.5",
        "k": "drop_path 0.25",
        "l": "adaptive_avgpool 2x2",
        "m": "sepconv 3x1/1x2",
        "gap_1": "gap",
        "dense_1": "dense softmax",
    }
