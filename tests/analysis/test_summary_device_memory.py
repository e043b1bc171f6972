"""The new-user review of `summary --device/--memory` and `diff --set-a/--set-b` (issue 18 fixes),
each on the exact command the review names."""
from __future__ import annotations

import json

import incdsl
from incdsl.analysis.roofline import DEVICES, layer_bounds

from conftest import SPECS

V3 = str(SPECS / "inception_v3.inc")


def test_roofline_peaks_per_precision_from_the_datasheets():
    # NVIDIA H200/H100 SXM datasheets: TF32 989 and BF16 1,979 TFLOPS "with sparsity": dense is half
    for name in ("h200", "h100"):
        dev = DEVICES[name]
        assert dev.peak("float32") == 989e12 / 2 == 494.5e12
        assert dev.peak("mixed_bfloat16") == dev.peak("bfloat16") == dev.peak("float16") == 1979e12 / 2
        assert "datasheet" in dev.source and "sparsity" in dev.source
    net = incdsl.load(SPECS / "googlenet.inc")
    conv = "conv2"  # 192 filters 3x3 over 56x56x64: compute bound at batch 128
    f32 = layer_bounds(net, DEVICES["h200"], 128, "float32")[conv]
    bf16 = layer_bounds(net, DEVICES["h200"], 128, "mixed_bfloat16")[conv]
    macs = net.counts[conv].macs
    assert f32.compute_bound and f32.seconds == 2 * macs * 128 / 494.5e12
    assert bf16.seconds == 2 * macs * 128 / 989.5e12


def test_custom_device_printed_once_and_the_model_stated(cli):
    code, out, err = cli("summary", SPECS / "googlenet.inc", "--device", "989T,4.8T")
    assert code == 0, err
    foot = out[out.index("roofline bound"):]
    assert foot.count("9.89e+14") == 1 and foot.count("4.8e+12") == 1
    assert "unfused" in foot and "reading its inputs and weights and writing its output once" in foot


def test_memory_beyond_gib_prints_tib(cli):
    code, out, err = cli("summary", V3, "--memory", "--batch", "1000000")
    assert code == 0, err
    step = [l for l in out.splitlines() if "training step at batch 1000000" in l][0]
    assert "TiB" in step and "91922.50 GiB" not in out
    data = json.loads(cli("summary", V3, "--json", "--batch", "1000000")[1])
    tib = data["memory"]["training_step"]["total"] / 2**40
    assert f"{tib:.2f} TiB" in step


def test_diff_sets_each_side(cli):
    code, out, err = cli("diff", V3, V3, "--set-b", "width=0.5", "--json")
    assert code == 0, err
    data = json.loads(out)
    a, b = incdsl.load(V3).total(), incdsl.load(V3, width=0.5).total()
    text = json.dumps(data)
    assert str(a.params) in text and str(b.params) in text and a.params != b.params
    code, out, err = cli("diff", V3, V3, "--set-b", "width=0.5")
    assert f"params: {a.params:,} -> {b.params:,}" in out
    # --set applies to both, a side's own setting wins over it
    code, out, err = cli("diff", V3, V3, "--set", "width=0.5", "--set-a", "width=1.0")
    assert f"params: {a.params:,} -> {b.params:,}" in out
