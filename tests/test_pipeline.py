"""The passes as named, ordered steps (passes/pipeline.py) and the IR verifier (passes/verify.py):
every reference spec leaves the IR valid after each pass, and the verifier catches a pass that
breaks it, naming that pass (issue 19, structure item 3)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

import incdsl
from incdsl.elaborate import elaborate
from incdsl.graph import Layer
from incdsl.ops import Count
from incdsl.network import Spec
from incdsl.passes import PIPELINE, Pass, pipeline, verify
from incdsl.passes.verify import IRError

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.inc"))
TINY = """
module blk(c) { conv(c, 1) }
network n(aux=true) {
  input 16x16x3
  x = conv(8, 3, stride=2, bn=true, act=relu)
  lost = x -> maxpool(2)
  x -> concat { conv(4, 1); avgpool(3, stride=1, pad=same) -> conv(4, 1) }
  if aux { train_output side(loss_weight=0.3) = x -> gap -> dense(5) }
  blk(4) -> gap -> dense(10, act=softmax)
}
"""


def _cases():
    for spec in SPECS:
        params = Spec(spec).params
        yield pytest.param(spec, {}, id=spec.stem)
        if "aux" in params:  # the auxiliary heads on and off, whichever the default is
            yield pytest.param(spec, {"aux": not params["aux"]}, id=f"{spec.stem}-aux={not params['aux']}")


def _verified(g):
    """Run the real pipeline on graph `g` with the verifier after each pass; the facts it checked."""
    state = SimpleNamespace(graph=g)
    checked = []
    real = verify.verify_after

    def spy(net, name, facts, added=()):
        checked.append((name, frozenset(facts)))
        real(net, name, facts, added)

    verify.verify_after = spy
    try:
        pipeline.run(state, verify=True)
    finally:
        verify.verify_after = real
    return state, checked


@pytest.mark.parametrize("spec, overrides", list(_cases()))
def test_every_reference_spec_keeps_the_ir_valid_after_each_pass(spec, overrides, monkeypatch):
    monkeypatch.delenv("INCDSL_VERIFY", raising=False)  # the plain build below must not verify
    g = elaborate(Spec(spec).program, None, overrides)
    state, checked = _verified(g)
    assert [name for name, _ in checked] == ["elaborate"] + [p.name for p in PIPELINE]
    assert checked[-1][1] >= {"graph", "pruned", "shapes", "counts", "derivations", "inference", "pads"}
    # the same numbers as a build that does not verify
    net = incdsl.load(spec, **overrides)
    assert state.shapes == net.shapes and state.counts == net.counts and state.inference == net.inference
    assert "pads" not in vars(net)  # on demand: a plain build does not resolve them
    assert state.pads == net.pads
    if overrides.get("aux") or Spec(spec).params.get("aux") and not overrides:
        assert any(o.train_only for o in g.outputs) and state.inference < set(g.layers)


def test_the_debug_flag_verifies_every_build(spec_file, monkeypatch):
    calls = []
    monkeypatch.setattr(verify, "verify_after", lambda net, name, facts, added=(): calls.append(name))
    monkeypatch.delenv("INCDSL_VERIFY", raising=False)
    incdsl.load(spec_file(TINY))
    assert calls == []  # a user's build does not pay for the verifier
    monkeypatch.setenv("INCDSL_VERIFY", "1")
    incdsl.load(spec_file(TINY))
    assert calls == ["elaborate", "prune", "infer-shapes", "mark-inference", "resolve-pads"]


def test_pruning_is_a_pass_not_part_of_elaboration(spec_file):
    prog = Spec(spec_file(TINY)).program
    g = elaborate(prog)
    assert "lost" in g.layers and g.unused == []
    net = incdsl.Network(g)
    assert "lost" not in net.layers and net.graph.unused == ["lost"]
    assert str(net.graph.unused_spans["lost"]).endswith("t.inc:6:15")  # the layer written there


def _state(spec_file):
    return SimpleNamespace(graph=elaborate(Spec(spec_file(TINY)).program))


def _breaking(name: str, fn) -> tuple[Pass, ...]:
    """The pipeline with a faulty pass `name` at its end (after every fact is there)."""
    bad = Pass(name, ("graph",), (), "breaks the IR on purpose", fn)
    return PIPELINE + (bad,)


def _replace(g, node: str, **changes):
    g.layers[node] = dataclasses.replace(g.layers[node], **changes)


@pytest.mark.parametrize("fault, message", [
    (lambda s: _replace(s.graph, "gap_1", inputs=("nowhere",)), "layer 'gap_1' reads 'nowhere', which does not exist"),
    (lambda s: s.graph.layers.update({"x": s.graph.layers.pop("x")}), "layer 'b1/conv_1' reads 'x', which comes after it"),
    (lambda s: _replace(s.graph, "concat_1", inputs=list(s.graph.layers["concat_1"].inputs)), "not an ordered tuple"),
    (lambda s: _replace(s.graph, "x", attrs={**s.graph.layers["x"].attrs, "kernel": 3}),
     "layer 'x' (conv) has 'kernel' = 3, not normalized ((3, 3))"),
    (lambda s: _replace(s.graph, "x", attrs={k: v for k, v in s.graph.layers["x"].attrs.items() if k != "stride"}),
     "layer 'x' (conv) has no stride"),
    (lambda s: _replace(s.graph, "x", op="convv"), "unknown op 'convv'"),
    (lambda s: _replace(s.graph, "x", name="y"), "not the layer of that name"),
    (lambda s: s.graph.layers.update({"a//b": dataclasses.replace(s.graph.layers["gap_1"], name="a//b")}),
     "layer id 'a//b' is not identifiers joined by '/'"),
    (lambda s: s.graph.outputs.__setitem__(0, dataclasses.replace(s.graph.outputs[0], node="gone")),
     "reads 'gone', which does not exist"),
    (lambda s: s.graph.blocks.append(dataclasses.replace(s.graph.blocks[0], name="x")),
     "module call 'x' shares its name"),
    (lambda s: s.shapes.pop("gap_1"), "'gap_1' has no shape"),
    (lambda s: s.shapes.__setitem__("gap_1", (0, 8)), "not a tuple of positive ints"),
    (lambda s: s.counts.pop("x"), "'x' has no count"),
    (lambda s: s.pads.__setitem__("x", dataclasses.replace(s.pads["x"], bottom=s.pads["x"].bottom + 2)),
     "layer 'x' has pads (0, 3, 0, 1), not TF's same split"),
    (lambda s: s.pads.__setitem__("x", dataclasses.replace(s.pads["x"], top=1, bottom=0)),  # SAME_LOWER
     "layer 'x' has pads (1, 0, 0, 1), not TF's same split"),
    (lambda s: s.shapes.__setitem__("x", (8, 8, 9)), "layer 'x' has shape (8, 8, 9), but its rule gives (8, 8, 8)"),
    (lambda s: s.counts.__setitem__("x", Count(0, 0, 0)), "layer 'x' has count (0, 0, 0), but its rule's weights give"),
    (lambda s: setattr(s, "inference", set(s.graph.layers)), "the inference set keeps 'gap_1', which the inference outputs do not read"),
    (lambda s: s.pads.pop("x"), "'x' has a window but no pads"),
    (lambda s: _replace(s.graph, "x", attrs={**s.graph.layers["x"].attrs, "pad": (1, 0, 0, 1)}),
     "layer 'x' has pads (0, 1, 0, 1), but its pad argument says (1, 0, 0, 1)"),
    (lambda s: s.graph.layers.update({"extra": Layer("extra", "gap", s.graph.layers["gap_1"].attrs, ("x",), None)}), "reaches no output"),
])
def test_the_verifier_names_the_pass_that_broke_the_ir(spec_file, fault, message):
    state = _state(spec_file)
    with pytest.raises(IRError) as e:
        pipeline.run(state, _breaking("faulty", fault), verify=True)
    assert e.value.pass_name == "faulty"
    assert message in str(e.value) and str(e.value).startswith("internal error: after pass 'faulty': ")


def test_the_verifier_checks_the_elaborated_graph_and_promised_facts(spec_file):
    state = _state(spec_file)
    _replace(state.graph, "gap_1", inputs=("nowhere",))
    with pytest.raises(IRError, match="after pass 'elaborate': layer 'gap_1' reads 'nowhere'"):
        pipeline.run(state, verify=True)
    liar = Pass("resolve-nothing", ("shapes",), ("extra",), "promises extra, sets none", lambda net: None)
    with pytest.raises(IRError, match="after pass 'resolve-nothing': the pass promised 'extra'"):
        pipeline.run(_state(spec_file), PIPELINE + (liar,), verify=True)
    honest = Pass("resolve-extra", ("shapes",), ("extra",), "sets extra", lambda net: setattr(net, "extra", {}))
    pipeline.run(_state(spec_file), PIPELINE + (honest,), verify=True)


def test_the_pipeline_is_named_and_ordered_by_what_each_pass_needs():
    assert [p.name for p in PIPELINE] == ["prune", "infer-shapes", "mark-inference", "resolve-pads"]
    assert [p.name for p in PIPELINE if p.on_demand] == ["resolve-pads"]
    assert all(p.doc and len(p.doc.splitlines()) == 1 for p in PIPELINE)
    pipeline.check_order(PIPELINE)
    with pytest.raises(ValueError, match="pass 'infer-shapes' needs pruned, which no earlier pass adds"):
        pipeline.check_order(PIPELINE[1:])
    with pytest.raises(ValueError, match="pass 'prune' is in the pipeline twice"):
        pipeline.check_order(PIPELINE + PIPELINE[:1])
    late = Pass("resolve-extra", ("shapes",), ("extra",), "one more fact", lambda net: None)
    pipeline.check_order(PIPELINE + (late,))  # extending it is one entry
    with pytest.raises(ValueError, match="needs shapes"):
        pipeline.check_order((late,) + PIPELINE)
