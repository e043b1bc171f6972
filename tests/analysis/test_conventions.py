"""`summary --convention NAME` against the tools themselves: fvcore, ptflops, thop and torchvision's
`_ops` metadata, each run on torchvision's googlenet and inception_v3 (weights=None, eval mode, one
image), compared with our count of the matching spec. The tools are test-only (`incdsl[refs]`)."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

import incdsl
from incdsl.analysis.conventions import COUNTS, totals
from incdsl.cli.main import main

from conftest import SPECS

README = Path(__file__).resolve().parents[2] / "README.md"
NETS = {"googlenet": ("googlenet_tv.inc", 224, "GoogLeNet_Weights"),
        "inception_v3": ("inception_v3_tv.inc", 299, "Inception_V3_Weights")}


def _tools(name: str) -> dict:
    import fvcore.nn
    import ptflops
    import thop
    import torch
    import torchvision

    spec, size, weights = NETS[name]
    model = getattr(torchvision.models, name)(weights=None, aux_logits=False, init_weights=False).eval()
    x = torch.zeros(1, 3, size, size)
    fa = fvcore.nn.FlopCountAnalysis(model, x)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    with contextlib.redirect_stdout(io.StringIO()):
        pt, _ = ptflops.get_model_complexity_info(model, (3, size, size), as_strings=False,
                                                  print_per_layer_stat=False, backend="pytorch")
        th, _ = thop.profile(model, inputs=(x,), verbose=False)
    return {"fvcore": fa.total(), "ptflops": pt, "thop": int(th),
            "torchvision": getattr(torchvision.models, weights).IMAGENET1K_V1.meta["_ops"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETS))
def test_conventions_reproduce_the_tools(name, capsys):
    ref = _tools(name)
    spec = SPECS / NETS[name][0]
    net = incdsl.load(spec, aux=False)
    assert totals(net, "fvcore")["inference"] == ref["fvcore"]
    assert totals(net, "thop")["inference"] == ref["thop"]
    assert totals(net, "torchvision")["printed"] == ref["torchvision"]
    # exact on both: inception_v3_tv.inc marks the pools torchvision calls as functionals
    assert totals(net, "ptflops")["inference"] == ref["ptflops"]
    # the command prints the same figure (with aux heads on by default: --set aux=false matches)
    for conv in ("fvcore", "thop", "ptflops"):
        assert main(["summary", str(spec), "--set", "aux=false", "--convention", conv, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["convention"]["name"] == conv and data["convention"]["inference"] == ref[conv]
    assert main(["summary", str(spec), "--set", "aux=false", "--convention", "fvcore"]) == 0
    assert f"fvcore: {ref['fvcore']:,}" in capsys.readouterr().out
    # the finding's exact command: `summary specs/inception_v3_tv.inc --set aux=false --convention ptflops`
    assert main(["summary", str(spec), "--set", "aux=false", "--convention", "ptflops"]) == 0
    assert f"ptflops: {ref['ptflops']:,} (inference" in capsys.readouterr().out


def test_readme_table_says_what_each_convention_counts():
    text = README.read_text()
    rows = {m.group(1): [c.strip() for c in m.group(2).split("|")]
            for m in re.finditer(r"^\| `([\w-]+)` \|(.*)\|$", text, re.M) if m.group(1) in COUNTS}
    assert set(rows) == set(COUNTS)
    for name, cells in rows.items():
        assert tuple(cells[:7]) == COUNTS[name], name


def test_unknown_convention_is_usage_error(capsys):
    assert main(["summary", str(SPECS / "googlenet.inc"), "--convention", "flopz"]) == 2
    assert "unknown convention 'flopz'" in capsys.readouterr().err
