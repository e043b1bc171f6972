"""The summary table folds modules and named groups into one row each."""
import incdsl

SPEC = """
network n() {
  input 16x16x3
  mixed = concat {
    conv(8, 1)
    conv(4, 1) -> conv(8, 3)
  }
  gap -> dense(2)
}
"""


def test_named_concat_folds_into_one_row(spec_file):
    net = incdsl.load(spec_file(SPEC))
    rows = [line.split() for line in net.table(depth=1).splitlines()]
    mixed = [r for r in rows if r and r[0] == "mixed"]
    # b1: 3*8+8; b2: 3*4+4 then 9*4*8+8 -> 32 + 16 + 296 = 344 params
    macs = 16 * 16 * (3 * 8 + 3 * 4 + 9 * 4 * 8)
    # % of total: dense(2) on 16 channels adds 34 params and 32 MACs
    assert mixed == [["mixed", "concat", "16x16x16", "344", f"{344 * 100 / 378:.1f}", f"{macs:,}",
                      f"{macs * 100 / (macs + 32):.1f}"]]
