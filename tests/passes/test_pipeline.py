"""The passes as named, ordered steps (passes/pipeline.py) that build one frozen record
(passes/record.py) and the IR verifier (passes/verify.py): every reference spec leaves the IR valid
after each pass, and the verifier catches a pass that breaks it, naming that pass (issue 19,
structure item 3; issue 26 item 4: passes produce a value)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import incdsl
from incdsl.elaborate.statements import elaborate
from incdsl.ir.graph import Layer
from incdsl.network import Spec
from incdsl.ops import REQUIRED, Count
from incdsl.passes import PIPELINE, Pass, Record, pipeline, verify
from incdsl.passes.record import FACTS
from incdsl.passes.verify import IRError

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.inc"))
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
    """Run the real pipeline on graph `g` with the verifier after each pass; the record it built
    and the facts it checked."""
    checked = []
    real = verify.verify_after

    def spy(net, name, facts, added=()):
        checked.append((name, frozenset(facts)))
        real(net, name, facts, added)

    verify.verify_after = spy
    try:
        record = pipeline.run(Record(g), verify=True)
    finally:
        verify.verify_after = real
    return record, checked


@pytest.mark.parametrize("spec, overrides", list(_cases()))
def test_every_reference_spec_keeps_the_ir_valid_after_each_pass(spec, overrides, monkeypatch):
    monkeypatch.delenv("INCDSL_VERIFY", raising=False)  # the plain build below must not verify
    g = elaborate(Spec(spec).program, None, overrides)
    state, checked = _verified(g)
    assert [name for name, _ in checked] == ["elaborate"] + [p.name for p in PIPELINE]
    assert checked[-1][1] == set(FACTS) == {
        "elaborated", "graph", "shapes", "counts", "derivations", "inference", "pads"}
    # the same numbers as a build that does not verify
    net = incdsl.load(spec, **overrides)
    assert state.shapes == net.shapes and state.counts == net.counts and state.inference == net.inference
    assert net.record.pads is None  # on demand: a plain build does not resolve them
    assert state.pads == net.pads and net.record.pads is net.pads  # resolved once, then kept
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
    for off in ("", "0"):  # set but empty, or 0: off
        calls.clear()
        monkeypatch.setenv("INCDSL_VERIFY", off)
        incdsl.load(spec_file(TINY))
        assert calls == []


def test_pruning_is_a_pass_not_part_of_elaboration(spec_file):
    prog = Spec(spec_file(TINY)).program
    g = elaborate(prog)
    assert "lost" in g.layers and g.unused == []
    net = incdsl.Network(g)
    assert "lost" not in net.layers and net.graph.unused == ["lost"]
    assert str(net.graph.unused_spans["lost"]).endswith("t.inc:6:15")  # the layer written there
    assert "lost" in g.layers and g.unused == [] and net.record.elaborated is g  # data in, data out: g kept


def test_a_dropped_nested_call_is_warned_about_at_the_outermost_call(spec_file, cli):
    path = spec_file("module inner(c) { conv(c, 1) }\nmodule outer(c) { inner(c) -> inner(c) }\n"
                     "module top(c) { outer(c) }\n"
                     "network n() {\n  input 4x4x3\n  x = conv(4, 1)\n  lost = x -> top(4)\n"
                     "  x -> gap -> dense(2)\n}\n")
    net = incdsl.load(path)
    assert net.graph.unused == ["lost/outer_1/inner_1/conv_1", "lost/outer_1/inner_2/conv_1"]
    # the call in the network's file (line 7), not the calls inside top's, outer's or inner's bodies
    assert {n: str(s).rsplit(":", 2)[-2:] for n, s in net.graph.unused_spans.items()} == {
        "lost/outer_1/inner_1/conv_1": ["7", "15"], "lost/outer_1/inner_2/conv_1": ["7", "15"]}
    assert net.graph.blocks == [] and len(net.record.elaborated.blocks) == 4  # the calls went with them
    code, out, err = cli("check", path)
    assert code == 0 and f"{path}:7:15: warning: 'lost/outer_1/inner_1/conv_1' reaches no output" in err


def test_the_passes_build_a_frozen_record_from_what_each_needs(spec_file):
    g = elaborate(Spec(spec_file(TINY)).program)
    rec = Record(g)
    assert (rec.graph, rec.shapes, rec.pads) == (None, None, None)
    after = PIPELINE[0].apply(rec)  # prune: elaborated -> graph, a new record
    assert rec.graph is None and after.elaborated is g and "lost" not in after.graph.layers
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.shapes = {}  # type: ignore[misc]
    net = incdsl.Network(g)
    assert isinstance(net.record, Record) and net.record.elaborated is g
    for fact in ("graph", "shapes", "counts", "derivations", "inference"):  # Network reads its record
        assert getattr(net, fact) is getattr(net.record, fact) is not None
    assert net.inference == frozenset(net.layers) - {"side", "gap_1"} and isinstance(net.inference, frozenset)
    assert net.record.pads is None
    pads = net.pads
    assert net.record.pads is pads and net.pads is pads and set(pads) == {
        "x", "b1/conv_1", "b2/avgpool_1", "b2/conv_1", "blk_1/conv_1"}
    assert pipeline.demand(net.record, "pads") is net.record  # asked again: nothing recomputed
    with pytest.raises(KeyError) as e:
        pipeline.demand(net.record, "shapes")  # not an on-demand fact
    assert e.value.args == ("shapes",)


def test_infer_shapes_writes_fit_kernels_into_a_new_graph(spec_file):
    """A `fit` conv's kernel at its input's size (TF-slim's aux heads): infer-shapes returns it as a
    rewritten graph for the backends, and leaves the graph it was given as it was."""
    g = elaborate(Spec(spec_file(
        "network n() { input 6x6x3\n conv(4, 5, pad=valid) -> conv(2, 5, pad=valid, fit=shrink) -> gap }"
    )).program)
    net = incdsl.Network(g)
    assert g.layers["conv_2"].attrs["kernel"] == (5, 5) and net.layers["conv_2"].attrs["kernel"] == (2, 2)
    assert net.shapes["conv_2"] == (1, 1, 2) and net.graph is not net.record.elaborated
    plain = incdsl.Network(elaborate(Spec(spec_file("network n() { input 8x8x3\n conv(2, 3) -> gap }"))
                                     .program))
    assert plain.graph is plain.record.elaborated  # nothing pruned, nothing fitted: no copy


def _state(spec_file):
    return Record(elaborate(Spec(spec_file(TINY)).program))


FIELDS = ("graph", "shapes", "counts", "derivations", "inference", "pads")


def _breaking(name: str, fault) -> tuple[Pass, ...]:
    """The pipeline with a faulty pass `name` at its end (after every fact is there). `fault`
    gets the record, changes what its fields hold in place or returns a dict of fields to replace
    (anything else it returns, such as what a `pop` gave, is not a change)."""
    def run(*values):
        changed = fault(Record(None, **dict(zip(FIELDS, values))))
        changed = changed if isinstance(changed, dict) else {}
        return tuple(changed.get(f, v) for f, v in zip(FIELDS, values))

    return PIPELINE + (Pass(name, FIELDS, FIELDS, "breaks the IR on purpose", run),)


def _replace(g, node: str, **changes):
    g.layers[node] = dataclasses.replace(g.layers[node], **changes)


# the messages below that are the whole problem, not a part of it
WHOLE = {"the graph has no output", "a layer named unused is still in the graph",
         "layer 'x' (conv) has no stride",
         "the inference set names layers that are not in the graph", "layer 'x' (conv) has unknown bogus"}


@pytest.mark.parametrize("fault, message", [
    (lambda s: _replace(s.graph, "gap_1", inputs=("nowhere",)),
     "layer 'gap_1' reads 'nowhere', which does not exist"),
    (lambda s: s.graph.layers.update({"x": s.graph.layers.pop("x")}),
     "layer 'b1/conv_1' reads 'x', which comes after it"),
    (lambda s: _replace(s.graph, "concat_1", inputs=list(s.graph.layers["concat_1"].inputs)),
     "not an ordered tuple"),
    (lambda s: _replace(s.graph, "x", attrs={**s.graph.layers["x"].attrs, "kernel": 3}),
     "layer 'x' (conv) has 'kernel' = 3, not normalized ((3, 3))"),
    (lambda s: _replace(s.graph, "x",
                        attrs={k: v for k, v in s.graph.layers["x"].attrs.items() if k != "stride"}),
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
    (lambda s: s.shapes.__setitem__("x", (8, 8, 9)),
     "layer 'x' has shape (8, 8, 9), but its rule gives (8, 8, 8)"),
    (lambda s: s.counts.__setitem__("x", Count(0, 0, 0)),
     "layer 'x' has count (0, 0, 0), but its rule's weights give"),
    (lambda s: {"inference": frozenset(s.graph.layers)},
     "the inference set keeps 'gap_1', which the inference outputs do not read"),
    (lambda s: {"inference": set(s.inference)}, "the inference set is a set, not a frozenset"),
    (lambda s: {"graph": dataclasses.replace(s.graph, layers={**s.graph.layers, "spare": dataclasses.replace(
        s.graph.layers["gap_1"], name="spare")})},  # a new graph, not a change in place
     "layer 'spare' reaches no output"),
    (lambda s: s.pads.pop("x"), "'x' has a window but no pads"),
    (lambda s: _replace(s.graph, "x", attrs={**s.graph.layers["x"].attrs, "pad": (1, 0, 0, 1)}),
     "layer 'x' has pads (0, 1, 0, 1), but its pad argument says (1, 0, 0, 1)"),
    (lambda s: s.graph.layers.update({"extra": Layer("extra", "gap", s.graph.layers["gap_1"].attrs, ("x",),
                                                     None)}), "reaches no output"),
    # each invariant's own message, so that the pass author reads what broke
    (lambda s: {"graph": "a graph"}, "the graph is a str, not a Graph"),
    (lambda s: _replace(s.graph, "gap_1", inputs=()), "layer 'gap_1' (gap) has 0 inputs, not 1"),
    (lambda s: _replace(s.graph, "concat_1", inputs=()),
     "layer 'concat_1' (concat) has 0 inputs, not one or more"),
    # one input is a concat's right: what is wrong here is the branch left behind
    (lambda s: _replace(s.graph, "concat_1", inputs=("b1/conv_1",)),
     "layer 'b2/avgpool_1' reaches no output"),
    (lambda s: s.graph.outputs.append(s.graph.outputs[0]), "two outputs are called 'dense_1'"),
    (lambda s: s.graph.outputs.clear(), "the graph has no output"),
    (lambda s: s.graph.blocks.__setitem__(0, dataclasses.replace(s.graph.blocks[0], output="gone")),
     "module call 'blk_1' returns 'gone', which does not exist"),
    (lambda s: s.graph.blocks.append(s.graph.blocks[0]), "module call 'blk_1' shares its name"),
    (lambda s: _replace(s.graph, "x", attrs={**s.graph.layers["x"].attrs, "bogus": 1}),
     "layer 'x' (conv) has unknown bogus"),
    (lambda s: _replace(s.graph, "x", attrs={**{k: v for k, v in s.graph.layers["x"].attrs.items()
                                                if k not in ("stride", "kernel")}, "bogus": 1, "extra": 2}),
     "layer 'x' (conv) has no kernel, stride; unknown bogus, extra"),
    (lambda s: s.shapes.__setitem__("x", [8, 8, 8]),
     "layer 'x' has shape [8, 8, 8], not a tuple of positive ints"),
    (lambda s: _replace(s.graph, "x", attrs={**s.graph.layers["x"].attrs, "filters": REQUIRED}),
     "layer 'x' (conv) has no value for 'filters'"),
    (lambda s: _replace(s.graph, "x", attrs={**s.graph.layers["x"].attrs, "kernel": (0, 3)}),
     "layer 'x' (conv) has a bad argument: must be at least 1, got 0"),
    (lambda s: {"graph": dataclasses.replace(s.graph, unused=["x"])},
     "a layer named unused is still in the graph"),
    (lambda s: s.shapes.__setitem__("ghost", (1,)), "'ghost' has no layer: shape and layers disagree"),
    (lambda s: s.counts.__setitem__("x", Count(-1, 0, 0)), "layer 'x' has count Count(trainable=-1"),
    (lambda s: s.counts.__setitem__("x", Count(1.5, 0, 0)), "not a Count of non-negative ints"),
    (lambda s: s.derivations.__setitem__("ghost", "ceil(1 / 1) = 1"),
     "derivation of 'ghost' is 'ceil(1 / 1) = 1': not text about a layer of the graph"),
    (lambda s: s.derivations.__setitem__("x", 8), "derivation of 'x' is 8"),
    (lambda s: {"inference": s.inference | {"ghost"}},
     "the inference set names layers that are not in the graph"),
    (lambda s: {"inference": s.inference - {"dense_1"}},
     "output 'dense_1' is not training-only but 'dense_1' is not kept for inference"),
    (lambda s: {"inference": s.inference - {"x"}},
     "the inference set drops 'x', which the inference outputs read"),
    (lambda s: s.pads.__setitem__("gap_1", s.pads["x"]), "'gap_1' has pads but no window"),
    # an explicit pad argument: its pads must still give the inferred output, and none negative
    (lambda s: (_replace(s.graph, "b1/conv_1",
                         attrs={**s.graph.layers["b1/conv_1"].attrs, "pad": (0, 0, 0, 0)}),
                s.pads.__setitem__("b1/conv_1", dataclasses.replace(s.pads["b1/conv_1"], over_bottom=1))),
     "layer 'b1/conv_1': pads Pads(top=0, bottom=0, left=0, right=0, over_bottom=1, over_right=0) "
     "do not give the inferred output (8, 8)"),
    (lambda s: (_replace(s.graph, "b1/conv_1",
                         attrs={**s.graph.layers["b1/conv_1"].attrs, "pad": (0, 0, 0, 0)}),
                s.pads.__setitem__("b1/conv_1", dataclasses.replace(s.pads["b1/conv_1"], over_right=-1))),
     "layer 'b1/conv_1' has negative pads Pads(top=0, bottom=0, left=0, right=0, over_bottom=0, "
     "over_right=-1)"),
])
def test_the_verifier_names_the_pass_that_broke_the_ir(spec_file, fault, message):
    state = _state(spec_file)
    with pytest.raises(IRError) as e:
        pipeline.run(state, _breaking("faulty", fault), verify=True)
    assert e.value.pass_name == "faulty" and message in e.value.problem
    if message in WHOLE:
        assert e.value.problem == message
    assert message in str(e.value) and str(e.value).startswith("internal error: after pass 'faulty': ")


def test_the_verifier_checks_the_elaborated_graph_and_promised_facts(spec_file):
    state = _state(spec_file)
    _replace(state.elaborated, "gap_1", inputs=("nowhere",))
    with pytest.raises(IRError, match="after pass 'elaborate': layer 'gap_1' reads 'nowhere'"):
        pipeline.run(state, verify=True)
    liar = Pass("resolve-nothing", ("shapes",), ("extra",), "promises extra, sets none", lambda shapes: None)
    start = Extended(_state(spec_file).elaborated)
    with pytest.raises(IRError, match="after pass 'resolve-nothing': the pass promised 'extra'"):
        pipeline.run(start, PIPELINE + (liar,), verify=True)
    honest = Pass("resolve-extra", ("shapes",), ("extra",), "sets extra",
                  lambda shapes: dict.fromkeys(shapes, 0))
    done = pipeline.run(start, PIPELINE + (honest,), verify=True)
    assert type(done) is Extended and done.extra.keys() == done.shapes.keys() and start.extra is None
    plain = pipeline.run(start, PIPELINE + (honest,), verify=False)  # one record at the end, of the same kind
    assert type(plain) is Extended and plain.extra == done.extra and plain.pads is None


@dataclasses.dataclass(frozen=True)
class Extended(Record):
    """A record with one more field, as a new pass would add one."""
    extra: dict | None = None


def test_the_pipeline_is_named_and_ordered_by_what_each_pass_needs():
    assert [p.name for p in PIPELINE] == ["prune", "infer-shapes", "mark-inference", "resolve-pads"]
    assert [p.name for p in PIPELINE if p.on_demand] == ["resolve-pads"]
    assert all(p.doc and len(p.doc.splitlines()) == 1 for p in PIPELINE)
    pipeline.check_order(PIPELINE)
    with pytest.raises(ValueError, match="pass 'infer-shapes' needs graph, which no earlier pass adds"):
        pipeline.check_order(PIPELINE[1:])
    with pytest.raises(ValueError, match="pass 'prune' is in the pipeline twice"):
        pipeline.check_order(PIPELINE + PIPELINE[:1])
    late = Pass("resolve-extra", ("shapes",), ("extra",), "one more fact", lambda shapes: None)
    pipeline.check_order(PIPELINE + (late,), Extended)  # extending it is one entry and one field
    with pytest.raises(ValueError, match="pass 'resolve-extra' adds extra, which Record has no field for"):
        pipeline.check_order(PIPELINE + (late,))
    with pytest.raises(ValueError, match="needs shapes"):
        pipeline.check_order((late,) + PIPELINE, Extended)
    both = Pass("both", ("graph", "shapes"), ("extra", "more"), "two of each", lambda g, s: (1, 2, 3))
    with pytest.raises(ValueError, match="pass 'both' needs graph, shapes, which no earlier pass adds"):
        pipeline.check_order((both,))
    with pytest.raises(ValueError, match="pass 'both' adds extra, more, which Record has no field for"):
        pipeline.check_order(PIPELINE + (both,))
    with pytest.raises(ValueError):  # three values for two fields: a broken pass, not a silent cut
        both.results(None, None)


def test_dilated_windows_get_pads_over_their_extent_and_verify(spec_file):
    """A 3x3 kernel dilated 2 spans 5 pixels: `same` pads 2 on each side (4 in all), not 1; `valid`
    none. The verifier accepts them (it applies the dilation too)."""
    g = elaborate(Spec(spec_file("network t() {\n  input 8x8x3\n  conv(4, 3, dilation=2)\n"
                                 "  conv(4, 3, dilation=2, pad=valid)\n  gap\n}\n")).program)
    record = pipeline.run(Record(g), verify=True)
    assert record.pads["conv_1"].real == (2, 2, 2, 2) and record.shapes["conv_1"] == (8, 8, 4)
    assert record.pads["conv_2"].real == (0, 0, 0, 0) and record.shapes["conv_2"] == (4, 4, 4)
