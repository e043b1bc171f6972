"""Small networks the tests share, as spec text. conftest.py writes each to a temp file through a
fixture (`plain_spec`, `plain32_spec`, `tiny_bn_spec`, `tiny_inception_spec`); tests that want the
text itself (incdsl.loads, a variant made with str.replace) import it from here. Tests assert figures
of these networks, so a change here is a change to those tests."""

from pathlib import Path

SPECS = Path(__file__).resolve().parent.parent / "specs"

# One conv, global pooling and a softmax classifier on an 8x8 RGB input: the smallest network every
# command accepts (compile, train, predict, import round trips).
PLAIN = "network t() {\n  input 8x8x3\n  conv(4, 3) -> gap -> dense(2, act=softmax)\n}\n"

# PLAIN with logits out (no softmax).
PLAIN_LOGITS = PLAIN.replace("dense(2, act=softmax)", "dense(2)")

# The same shape of network at 32x32 with ten classes and no softmax (output files, compile targets).
PLAIN32 = """network g() {
  input 32x32x3
  conv(8, 3) -> gap -> dense(10)
}
"""

# Batch-norm convs and one concat at 16x16: trains in a second on a handful of images.
TINY_BN = """network tiny(classes=3) {
  defaults conv(bias=false, bn=true, act=relu)
  input(16, 16, 3)
  stem = conv(8, 3, stride=2)
  block = concat {
    conv(8, 1)
    conv(8, 3)
  }
  output fc = gap -> dense(classes)
}
"""

# GoogLeNet's own inception module (specs/googlenet.inc) at width 0.25 and 32x32, with an auxiliary
# training head that `aux=false` removes.
TINY_INCEPTION = f"""
use "{SPECS / 'googlenet.inc'}"

network tiny(classes=3, aux=true, width=0.25, size=32) {{
  defaults conv(act=relu)
  input(size, size, 3)
  conv1 = conv(16, 3, stride=2)
  a = inception(64, 96, 128, 16, 32, 32, width)
  pool = maxpool(3, stride=2, pad=same)
  b = inception(64, 96, 128, 16, 32, 32, width)
  output fc = gap -> dense(classes)
  if aux {{
    train_output aux(loss_weight=0.3) = a -> gap -> dense(classes, act=softmax)
  }}
}}
"""
