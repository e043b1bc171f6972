"""Issue 27 item 5: `--convention torchinfo` and `--convention ptflops-aten`, each against the tool
itself on torchvision's googlenet and inception_v3 (weights=None), and torchinfo's own golden file
(TylerYep/torchinfo tests/test_output/google.out: googlenet at 112x112, "Total mult-adds (M):
392.46" in train mode, 384.08 in eval). The tools are test-only (`incdsl[refs]`)."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

import incdsl
from incdsl.analysis.conventions import totals
from incdsl.cli.main import main

from conftest import SPECS


def test_torchinfo_golden_googlenet_112(capsys):
    net = incdsl.load(SPECS / "googlenet_tv.inc", size=112)  # aux heads on: torchinfo's train mode runs them
    t = totals(net, "torchinfo")
    assert (t["inference"], t["total"]) == (384_082_888, 392_459_672)
    assert net.total(inference=True).macs == 384_067_328 and net.total().macs == 392_439_552  # incdsl's own
    assert main(["summary", str(SPECS / "googlenet_tv.inc"), "--set", "size=112", "--convention", "torchinfo",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["convention"]["total"] == 392_459_672


def test_ptflops_aten_is_macs_plus_fc_bias_on_v3():
    net = incdsl.load(SPECS / "inception_v3_tv.inc", aux=False)
    assert totals(net, "ptflops-aten")["inference"] == net.total(inference=True).macs + 1000


def _model(name):
    import torchvision
    return getattr(torchvision.models, name)(weights=None, aux_logits=True, init_weights=False)


@pytest.mark.slow
@pytest.mark.parametrize("name, spec, size",
                         [("googlenet", "googlenet_tv.inc", 112), ("googlenet", "googlenet_tv.inc", 224),
                                              ("inception_v3", "inception_v3_tv.inc", 299)])
def test_torchinfo_itself(name, spec, size):
    import torchinfo
    net = incdsl.load(SPECS / spec, size=size)
    t = totals(net, "torchinfo")
    for mode, ours in (("eval", t["inference"]), ("train", t["total"])):
        # batch 2: torch's batch norm refuses one value per channel in training (v3's aux head is 1x1);
        # torchinfo's count is per batch, twice the per-image figure
        got = torchinfo.summary(_model(name), (2, 3, size, size), mode=mode, verbose=0).total_mult_adds
        assert got == 2 * ours, (name, size, mode)


@pytest.mark.slow
@pytest.mark.parametrize("name, spec, size", [("googlenet", "googlenet_tv.inc", 224),
                                              ("inception_v3", "inception_v3_tv.inc", 299)])
def test_ptflops_aten_itself(name, spec, size, capsys):
    import ptflops
    model = _model(name).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        got, _ = ptflops.get_model_complexity_info(model, (3, size, size), as_strings=False,
                                                   print_per_layer_stat=False, backend="aten")
    assert totals(incdsl.load(SPECS / spec, size=size), "ptflops-aten")["inference"] == got
    assert main(["summary", str(SPECS / spec), "--convention", "ptflops-aten", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["convention"]["inference"] == got
