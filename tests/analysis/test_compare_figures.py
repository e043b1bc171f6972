"""`incdsl compare` figures that once went wrong unnoticed (issue 19, faults 6-10): with batch norm
(non-trainable params) and three variants, checked against hand-worked counts and against
keras.applications' InceptionV3: the sign of each delta, deltas against the first variant (not
the previous one), the `(other layers)` row less the blocks' non-trainable params, the total
row's delta, and Pareto ties."""
from __future__ import annotations

import json

import pytest

import incdsl

from conftest import SPECS

# Input size x size x 2; every conv 'same', bias-free, with batch norm (gamma and beta trainable,
# the moving mean and variance not). With c filters, on a 6x6 input:
#   s = conv(c, 1) on 2 channels:  trainable 2c + 2c, non-trainable 2c;  MACs 36 * 2c
#   m = blk(c) on c channels:       trainable (c*c + 2c) + (9c*c + 2c), non-trainable 4c;  MACs 36 * 10c^2
#   dense(3) on 2c channels:        trainable 6c + 3 (bias: `db`), MACs 6c
BN_SPEC = """
module blk(c) {
  concat { conv(c, 1, bias=false, bn=true); conv(c, 3, bias=false, bn=true) }
}
network b(c=4, size=6, db=true) {
  input(size, size, 2)
  s = conv(c, 1, bias=false, bn=true)
  m = blk(c)
  gap -> dense(3, bias=db)
}
"""
REST = "(other layers)"


def hand(c: int, size: int = 6, db: bool = True) -> dict:
    """Per block (trainable, non-trainable, MACs) by the formulas above."""
    hw = size * size
    s, m, d = (4 * c, 2 * c, hw * 2 * c), (10 * c * c + 4 * c, 4 * c, hw * 10 * c * c), (6 * c + 3 * db, 0,
                                                                                         6 * c)
    return {"m": m, REST: tuple(a + b for a, b in zip(s, d)),
            "total": tuple(a + b + e for a, b, e in zip(s, m, d))}


def compare_json(cli, *argv) -> dict:
    return json.loads(cli.ok("compare", *argv, "--json"))


def test_hand_counts_of_the_bn_spec():
    # the formulas themselves, against the front end's per-layer counts (c = 4: 243 params)
    net = incdsl.loads(BN_SPEC)
    assert (net.total().trainable, net.total().non_trainable, net.total().macs) == hand(4)["total"] == (219,
                                                                                                        24,
                                                                                                        6072)


def test_block_deltas_against_the_first_of_three_variants(spec_file, cli):
    # c = 4, 8, 2: the second grows, the third shrinks, and a delta against the previous variant
    # (8 -> 2) differs from the one against the first (4 -> 2)
    data = compare_json(cli, spec_file(BN_SPEC), "--sweep", "c=4,8,2")
    want = {c: hand(c) for c in (4, 8, 2)}
    for row, c in zip(data["rows"], (4, 8, 2)):
        tr, nt, macs = want[c]["total"]
        assert row["params"] == {"total": tr + nt, "trainable": tr,
                                 "non_trainable": nt} and row["macs"] == macs
    blocks = {b["name"]: b["variants"] for b in data["blocks"]}
    assert list(blocks) == ["m", REST]
    for name in ("m", REST):
        for i, c in enumerate((4, 8, 2)):
            tr, nt, macs = want[c][name]
            cell = blocks[name][i]
            # (other layers) holds the stem conv's 2c moving statistics, not the block's 4c as well
            assert cell["params"] == {"total": tr + nt, "trainable": tr, "non_trainable": nt}, (name, c)
            assert cell["macs"] == macs
            t0, n0, m0 = want[4][name]
            assert cell["delta"] == {"params": tr + nt - t0 - n0, "macs": macs - m0}, (name, c)
    # the non-trainable part alone moves m's delta: 704 - 192 = +512 (trainable +496, moving stats +16)
    assert [v["delta"]["params"] for v in blocks["m"]] == [0, 512, -136]
    assert [v["delta"]["params"] for v in blocks[REST]] == [0, 48, -24]


def test_the_total_row_of_the_text_tables(spec_file, cli):
    out = cli.ok("compare", spec_file(BN_SPEC), "--sweep", "c=4,8,2", "--blocks")
    params_table, macs_table = out.split("per-block params")[1].split("per-block MACs")
    # params: 243, 803 (+560), 83 (-160); MACs 6,072, 23,664 (+17,592), 1,596 (-4,476)
    totals = [ln.split() for ln in params_table.splitlines() if ln.startswith("total")]
    assert totals == [["total", "243", "803", "+560", "83", "-160"]]
    assert [hand(c)["total"][2] for c in (4, 8, 2)] == [6072, 23664, 1596]
    totals = [ln.split() for ln in macs_table.splitlines() if ln.startswith("total")]
    assert totals == [["total", "6,072", "23,664", "+17,592", "1,596", "-4,476"]]
    rows = [ln.split() for ln in params_table.splitlines() if ln.startswith(("m ", REST))]
    assert rows == [["m", "blk", "192", "704", "+512", "56", "-136"],
                    ["(other", "layers)", "51", "99", "+48", "27", "-24"]]


def test_pareto_ties(spec_file, cli):
    spec = spec_file(BN_SPEC)
    # a and c are the same network; b has a's params (input size changes no weight) and more MACs;
    # e drops the dense bias: 3 params fewer, MACs equal to a's
    assert hand(4)["total"][:2] == hand(4, size=8)["total"][:2] and hand(4)["total"][2] < hand(4,
                                                                                               size=8)[
                                                                                                   "total"][2]
    variants = ["a:c=4,size=6", "b:c=4,size=8", "c:c=4,size=6", "e:c=4,size=6,db=false"]
    front = lambda *vs: [r["pareto"] for r in compare_json(cli, spec,
                                                           *(x for v in vs for x in ("--variant",
                                                                                     v)))["rows"]]
    # equal params and fewer MACs beats b; an exact tie beats neither of the two
    assert front(*variants[:3]) == [True, False, True]
    # equal MACs and fewer params beats a and c; e beats b on both
    assert front(*variants) == [False, False, False, True]


def _keras_v3_blocks() -> dict[str, tuple[int, int]]:
    """keras.applications.InceptionV3's (trainable, non-trainable) params per block: the stem (up to the
    35x35x192 max pool), mixed0..mixed10 (the layers after the previous block up to the concat Keras
    names mixedN) and the rest (the classifier)."""
    import keras
    import numpy as np
    model = keras.applications.InceptionV3(weights=None)
    count = lambda ws: sum(int(np.prod(w.shape)) for w in ws)
    out, part = {}, (0, 0)
    names = ["stem"] + [f"mixed{i}" for i in range(11)]
    for layer in model.layers:
        part = (part[0] + count(layer.trainable_weights), part[1] + count(layer.non_trainable_weights))
        if len(out) == len(names):
            continue
        if (layer.name == names[len(out)] or not out and isinstance(layer, keras.layers.MaxPooling2D)
                and tuple(layer.output.shape[1:]) == (35, 35, 192)):
            out[names[len(out)]], part = part, (0, 0)
    out[REST] = part
    assert model.count_params() == sum(a + b for a, b in out.values())
    return out


@pytest.mark.slow
def test_inception_v3_blocks_against_keras_applications():
    rows = incdsl.compare(SPECS / "inception_v3.inc", sweep={"width": [1.0, 0.75, 0.5]})
    keras_blocks = _keras_v3_blocks()
    assert list(keras_blocks) == list(rows[0].blocks)
    for name, (tr, nt) in keras_blocks.items():
        c = rows[0].blocks[name].count
        assert (c.trainable, c.non_trainable) == (tr, nt), name
    # the stem's five batch norms (scale=False) keep 2 x (32+32+64+80+192) moving statistics and the
    # classifier none: the rest must not keep the blocks' 34,432 - 800 as well
    assert keras_blocks["stem"][1] == 800 and keras_blocks[REST] == (2048 * 1000 + 1000, 0)
    assert rows[0].total.non_trainable == 34_432
    for r in rows:  # every variant's blocks and rest add up to its total, part by part
        for part in ("trainable", "non_trainable", "macs"):
            assert sum(getattr(b.count, part) for b in r.blocks.values()) == getattr(r.total, part), (r.label,
                                                                                                      part)


def test_inception_v3_deltas_are_against_width_1(cli):
    data = compare_json(cli, SPECS / "inception_v3.inc", "--sweep", "width=1.0,0.75,0.5")
    rows = incdsl.compare(SPECS / "inception_v3.inc", sweep={"width": [1.0, 0.75, 0.5]})
    for b in data["blocks"]:
        counts = [r.blocks[b["name"]].count for r in rows]
        assert [v["params"]["non_trainable"] for v in b["variants"]] == [c.non_trainable for c in counts]
        assert [
            v["delta"]["params"] for v in b["variants"]] == [
                c.params - counts[0].params for c in counts], b["name"]
        assert [
            v["delta"]["macs"] for v in b["variants"]] == [c.macs - counts[0].macs for c in counts], b["name"]
    # mixed10's params shrink with width: the third variant's delta is the larger loss
    mixed10 = next(b for b in data["blocks"] if b["name"] == "mixed10")["variants"]
    assert mixed10[2]["delta"]["params"] < mixed10[1]["delta"]["params"] < 0
