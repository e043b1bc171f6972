"""Scopes with a parent (scopes.py) and typed given values: the scoping rules of specs/README.md,
held by the structure instead of copies restored by hand (issue 19, structure item 4)."""
from __future__ import annotations

import dataclasses

import pytest

import incdsl
from incdsl.elaborate.scopes import DefaultsInForce, Given, Scope
from incdsl.errors import SpecError


def test_a_child_sees_its_parents_named_values_and_keeps_its_own():
    body = Scope((), {"n": 2}, None)
    body.bind("x", "x")
    branch = body.child(("b1",))
    assert branch.node("x") == "x" and branch.vars is body.vars  # one body, one set of expression names
    branch.bind("y", "b1/y")
    assert branch.node("y") == "b1/y" and body.node("y") is None
    assert branch.names() == ["x", "y"]


def test_a_block_binds_in_its_parent_and_its_defaults_end_with_it():
    body = Scope(("m",), {}, "m")
    entry = DefaultsInForce("conv", {"bn": Given(True, None)}, None)
    inside_if = body.block()
    inside_if.add_defaults((entry,))
    inside_if.bind("y", "m/y")
    assert body.node("y") == "m/y"  # `if aux { y = ... }`: y is the body's
    assert inside_if.defaults == (entry,) and body.defaults == ()


def test_a_module_body_sees_the_callers_defaults_but_not_its_names():
    caller = Scope((), {"width": 1.0}, None)
    caller.bind("x", "x")
    entry = DefaultsInForce("conv", {}, None)
    caller.add_defaults((entry,))
    body = caller.call(("blk_1",), {"c": 8}, "blk")
    assert body.node("x") is None and body.vars == {"c": 8} and body.defaults == (entry,)
    assert body.module == "blk" and body.path == ("blk_1",)


def test_given_values_are_typed_and_frozen():
    g = Given(3, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.value = 4


def test_names_from_an_if_stay_and_its_defaults_end_there(spec_file):
    net = incdsl.load(spec_file("""
network n(a=true) {
  input 8x8x3
  if a { defaults conv(bn=true); y = conv(4, 1) }
  z = y -> conv(2, 1)
  z -> gap
}
"""))
    assert net.layers["y"].attrs["bn"] is True and net.layers["z"].attrs["bn"] is False
    assert net.layers["z"].inputs == ("y",)


def test_names_from_a_named_repeat_pass_stay_inside_it_but_lets_do_not(spec_file):
    text = """
network n() {
  input 8x8x3
  b = repeat 2 { y = conv(4, 1); let k = 5; y -> conv(3, 1) }
  conv(k, 1) -> gap
  %s
}
"""
    net = incdsl.load(spec_file(text % ""))
    assert net.layers["b_1/y"].op == "conv" and net.layers["conv_1"].attrs["filters"] == 5
    with pytest.raises(SpecError, match="unknown name 'y': no op, module or named value"):
        incdsl.load(spec_file(text % "y -> gap", "t2.inc"))
