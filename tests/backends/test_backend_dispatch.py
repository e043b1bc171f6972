"""Each backend maps an op to its translation through one dict (issue 26, item 3, as TVM's
`_convert_map`), and each dict has an entry for every op of the table: a new op that a backend
forgets fails here, not in a user's export."""
import pytest

from incdsl.ops import OPS

EVERY = set(OPS) - {"input"}  # the input is each backend's graph input, not a translated layer


def test_the_numpy_reference_runs_every_op():
    from incdsl.backends.numpy_ref import RUNNERS
    assert set(RUNNERS) == EVERY
    assert all(callable(f) for f in RUNNERS.values())


def test_the_onnx_emitter_emits_every_op():
    from incdsl.backends.onnx.direct import EMITTERS
    assert set(EMITTERS) == EVERY
    assert all(callable(f) for f in EMITTERS.values())


def test_an_op_missing_from_the_numpy_dict_is_refused_by_name(monkeypatch):
    """The dict is what run() consults: an op without an entry is Unsupported, named."""
    import numpy as np

    import incdsl
    from incdsl.backends import numpy_ref
    net = incdsl.loads("network n() {\n  input 4x4x2\n  lrn(3) -> gap\n}\n")
    monkeypatch.delitem(numpy_ref.RUNNERS, "lrn")
    with pytest.raises(numpy_ref.Unsupported, match="op lrn"):
        numpy_ref.run(net, {}, np.zeros((1, 4, 4, 2)))


@pytest.mark.slow  # imports Keras (TensorFlow): some 13 s
def test_the_keras_backend_builds_every_op():
    from incdsl.backends.keras.build import BUILDERS
    assert set(BUILDERS) == EVERY
