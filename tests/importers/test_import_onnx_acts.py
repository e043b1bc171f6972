"""ONNX activations whose attributes decide what they compute: HardSigmoid (ONNX's default alpha
is 0.2, PyTorch's and Keras' hard_sigmoid is alpha 1/6), Elu's alpha and Gelu's approximation. An
op with the activation's own attributes imports as it and gives onnxruntime's outputs back; any other
value is refused by name, never imported as the wrong function."""
import onnx
import pytest
from onnx import helper

from test_import import _onnx_round_trip


def _torch_act(tmp_path, act, name):
    """conv 3x3 -> `act` -> global average pool -> dense(4), exported by torch at opset 18."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), act, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 4)).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(m, torch.randn(1, 3, 8, 8), path, dynamo=False, opset_version=18,
                      input_names=["input"], output_names=["logits"])
    return path


def _set_attr(path, op_type, **attrs):
    """Rewrite the attributes of the one `op_type` node of the ONNX file at `path` (None: drop it,
    so ONNX's default applies)."""
    model = onnx.load(path)
    node = next(n for n in model.graph.node if n.op_type == op_type)
    keep = [a for a in node.attribute if a.name not in attrs]
    del node.attribute[:]
    node.attribute.extend(keep)
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items() if v is not None)
    onnx.save(model, path)


def test_hard_sigmoid_with_pytorchs_alpha_imports_and_matches_onnxruntime(tmp_path, cli):
    from torch import nn
    path = _torch_act(tmp_path, nn.Hardsigmoid(), "hs")
    node = next(n for n in onnx.load(path).graph.node if n.op_type == "HardSigmoid")
    assert abs(helper.get_attribute_value(node.attribute[0]) - 1 / 6) < 1e-6
    text, _ = _onnx_round_trip(cli, tmp_path, path, 8)
    assert "act=hard_sigmoid" in text


@pytest.mark.parametrize("op,torch_act,attrs,message", [
    ("HardSigmoid", "Hardsigmoid", {"alpha": None},
     "alpha=0.2 is not incdsl's hard_sigmoid (alpha=0.166667, beta=0.5)"),
    ("HardSigmoid", "Hardsigmoid", {"beta": 0.6}, "beta=0.6 is not incdsl's hard_sigmoid"),
    ("Elu", "ELU", {"alpha": 0.5}, "alpha=0.5 is not incdsl's elu (alpha=1)"),
    ("Gelu", "GELU", {"approximate": "tanh"}, "approximate=tanh is not incdsl's gelu (approximate=none)"),
])
def test_other_attribute_values_are_refused_by_name(tmp_path, cli, op, torch_act, attrs, message):
    from torch import nn
    path = _torch_act(tmp_path, getattr(nn, torch_act)(), op)
    if op == "Gelu":  # torch writes exact GELU at opset 18 as Erf arithmetic: make it ONNX's Gelu op
        model = onnx.load(path)
        model.opset_import[0].version = 20
        g = model.graph
        first = next(i for i, n in enumerate(g.node) if n.op_type == "Div")
        last = next(i for i, n in enumerate(g.node) if n.op_type == "Mul" and i > first + 2)
        x, y = g.node[first].input[0], g.node[last].output[0]
        kept = [n for i, n in enumerate(g.node) if not first <= i <= last]
        del g.node[:]
        g.node.extend(kept[:first] + [helper.make_node("Gelu", [x], [y], name="gelu")] + kept[first:])
        onnx.save(model, path)
    _set_attr(path, op, **attrs)
    out = tmp_path / "out.inc"
    code, _, err = cli("import", path, "-o", out)
    assert code == 1 and message in err, err
    assert "Traceback" not in err and not out.exists()
