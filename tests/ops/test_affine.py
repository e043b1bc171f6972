"""Issue 13, item 4: per-channel preprocessing in the language (normalize, affine), against
torchvision's Normalize and googlenet's _transform_input, in Keras and ONNX."""
from __future__ import annotations

import numpy as np
import pytest

import incdsl
from incdsl.errors import SpecError

SPEC = """network t() {
  input(5, 4, 3)
  concat {
    normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    affine(scale=(0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5),
           shift=((0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5))
    normalize(mean=0.5, std=0.25)
  }
}
"""


def _torch_reference(x):
    import torch
    import torchvision

    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    norm = torchvision.transforms.functional.normalize(t, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    tv = torchvision.models.googlenet(weights=None, transform_input=True, init_weights=False,
                                      aux_logits=False)
    transformed = tv._transform_input(t)  # torchvision's own code for transform_input
    single = torchvision.transforms.functional.normalize(t, [0.5] * 3, [0.25] * 3)
    return torch.cat([norm, transformed, single], 1).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("backend", ["keras", "onnx"])
def test_normalize_and_affine_match_torchvision(spec_file, tmp_path, backend):
    x = np.random.default_rng(0).uniform(0, 1, (2, 5, 4, 3)).astype(np.float32)
    want = _torch_reference(x)
    net = incdsl.load(spec_file(SPEC))
    if backend == "keras":
        got = np.asarray(net.to_keras()(x))
    else:
        import onnxruntime as ort

        from incdsl.backends.onnx.convert import export
        export(net, tmp_path / "t.onnx")  # verified against Keras too
        sess = ort.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.transpose(0, 3, 1, 2)})[0].transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_per_channel_values_must_fit_the_channels(spec_file):
    with pytest.raises(SpecError, match="mean gives 2 values for 3 channels"):
        incdsl.load(spec_file("network t() {\n  input(5, 4, 3)\n  normalize(mean=(1, 2), std=1)\n}\n"))
    with pytest.raises(SpecError, match="std"):
        incdsl.load(spec_file("network t() {\n  input(5, 4, 3)\n  normalize(std=0)\n}\n"))


def test_transform_input_is_off_by_default_as_torchvision_builds_it():
    assert "transform_input" not in incdsl.load("specs/googlenet_tv.inc").layers
    on = incdsl.load("specs/inception_v3_tv.inc", transform_input=True)
    assert on.layers["transform_input"].op == "affine"
    assert list(on.layers["stem/conv_1"].inputs) == ["transform_input"]
