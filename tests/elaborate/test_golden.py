"""Golden text outputs: `incdsl expand` of the reference specs, byte for byte.

The expansion is the flat network, one layer per line with its canonical call, inputs and shape,
so any change to elaboration, defaults, naming or shape inference shows up here as a diff.
To accept a reviewed change:  UPDATE_GOLDEN=1 pytest tests/elaborate/test_golden.py
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from incdsl.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))

# (golden file, command line run from the repository root)
CASES = {
    "googlenet.expand": ["expand", "specs/googlenet.inc"],
    "googlenet_tv.expand": ["expand", "specs/googlenet_tv.inc"],
    "googlenet_tv_small.expand": ["expand", "specs/googlenet_tv.inc", "--set", "width=0.25", "--set",
                                  "size=64",
                                  "--set", "classes=3", "--set", "aux=false"],
    "googlenet.summary_depth1": ["summary", "specs/googlenet.inc", "--depth", "1"],
    # the JSON others build on (compare, sweeps): its keys and figures for a tiny variant
    "googlenet_tv_small.summary.json": ["summary", "specs/googlenet_tv.inc", "--json", "--set", "width=0.25",
                                        "--set", "size=64", "--set", "classes=3"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(CASES[name]) == 0
    out = capsys.readouterr().out
    path = GOLDEN / name
    if UPDATE:
        path.write_text(out)
    assert path.exists(), f"no {path.name}: run with UPDATE_GOLDEN=1 and review it"
    assert out == path.read_text(), f"output differs from tests/golden/{name}"


def test_golden_facts():
    """A few lines of the goldens checked by meaning, so an UPDATE_GOLDEN run cannot bless nonsense."""
    tv = (GOLDEN / "googlenet_tv.expand").read_text().splitlines()
    assert tv[0] == ("# network googlenet_tv classes=1000 aux=true width=1 size=224 transform_input=false "
                     "top=true pooling=none channels=3")
    layers = [l for l in tv if l and not l.startswith(("#", "output", "train_output"))]
    assert len(layers) == 95
    # torchvision's 5x5 branch quirk: the "5x5" branch convolves 3x3
    b3 = next(l for l in tv if l.startswith("inception3a/b3/conv_2 "))
    assert "kernel=3x3" in b3 and b3.endswith("# 28x28x32")
    assert any(l.startswith("maxpool4 ") and "maxpool(2x2" in l and l.endswith("# 7x7x832") for l in tv)
    assert "train_output aux1(loss_weight=0.3) = aux1" in "\n".join(tv) or any(
        l.startswith("train_output aux1(loss_weight=0.3)") for l in tv)
    paper = (GOLDEN / "googlenet.expand").read_text()
    # the paper's LRN; torchvision has none
    assert "norm1                    = lrn <- pool1  # 56x56x64" in paper
    assert "= lrn" not in "\n".join(tv)
    # inception3a of the paper, by hand: 1x1 192->64, 1x1 192->96 + 3x3 96->128, 1x1 192->16 + 5x5 16->32,
    # pool + 1x1 192->32, each with a bias
    by_hand = (
        192 * 64 + 64) + (192 * 96 + 96) + (9 * 96 * 128 + 128) + (192 * 16 + 16) + (25 * 16 * 32 + 32) \
        + (192 * 32 + 32)
    depth1 = (GOLDEN / "googlenet.summary_depth1").read_text()
    assert f"inception3a     inception              28x28x256     {by_hand:,}" in depth1


def test_expand_through_the_real_command():
    p = subprocess.run([sys.executable, "-m", "incdsl", "expand", "specs/googlenet_tv.inc"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == (GOLDEN / "googlenet_tv.expand").read_text()


def test_summary_json_keys_are_stable():
    import json
    s = json.loads((GOLDEN / "googlenet_tv_small.summary.json").read_text())
    assert list(s) == ["network", "spec", "set", "input", "params", "macs", "flops", "inference", "outputs",
                       "heads",
                       "depth", "blocks", "layers", "taps", "memory"]
    assert s["set"] == {"classes": 3, "aux": True, "width": 0.25, "size": 64, "transform_input": False,
                        "top": True, "pooling": None,
                        "channels": 3}
    assert s["flops"] == 2 * s["macs"]
    assert s["params"]["total"] == sum(l["params"] for l in s["layers"])
    assert s["inference"]["params"]["total"] == sum(l["params"] for l in s["layers"] if not l["train_only"])
