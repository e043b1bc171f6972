"""Every construct of the .inc language, each on a tiny spec written to a temp dir."""
import pytest

import incdsl
from incdsl.errors import SpecError, UsageError


def net_of(spec_file, body: str, params: str = "", head: str = "", **overrides):
    """A network `n(params)` with a 8x8x3 input and `body`, after `head` (modules, defaults)."""
    return incdsl.load(spec_file(f"{head}\nnetwork n({params}) {{\n  input 8x8x3\n{body}\n}}\n"), **overrides)


def attrs(net, name):
    return net.layers[name].attrs


# --- sequence, names, taps ----------------------------------------------------------------------

def test_chain_and_lines_are_the_same_sequence(spec_file):
    a = net_of(spec_file, "conv(4, 3) -> relu -> maxpool(2)")
    b = net_of(spec_file, "conv(4, 3)\nrelu\nmaxpool(2)")
    c = net_of(spec_file, "conv(4, 3); relu; maxpool(2)")
    assert list(a.layers) == list(b.layers) == list(c.layers) == ["input", "conv_1", "relu_1", "maxpool_1"]
    assert a.shapes["maxpool_1"] == (4, 4, 4)
    assert a.layers["relu_1"].op == "act" and attrs(a, "relu_1")["fn"] == "relu"


def test_line_continuation_after_arrow_and_inside_parentheses(spec_file):
    net = net_of(spec_file, "conv(4,\n     3) ->\n  relu\n  -> gap")
    assert [l.op for l in net.layers.values()] == ["input", "conv", "act", "gap"]


def test_named_layers_and_taps(spec_file):
    net = net_of(spec_file, """
  stem = conv(4, 3)
  head = gap -> dense(2)
  output main = head
  train_output side(loss_weight=0.25) = stem -> gap -> dense(5)
""")
    assert net.layers["head"].op == "dense" and net.layers["head"].inputs == ("gap_1",)
    side = next(h for h in net.heads if h.name == "side")
    assert side.train_only and side.loss_weight == 0.25 and side.shape == (5,)
    # the tap branches from `stem`, not from the last layer
    assert net.layers[side.node].inputs[0].startswith("gap")
    assert net.layers[net.layers[side.node].inputs[0]].inputs == ("stem",)


def test_train_output_is_left_out_of_inference_totals(spec_file):
    net = net_of(spec_file, """
  x = conv(4, 3)
  output main = gap -> dense(2)
  train_output aux = x -> gap -> dense(7)
""")
    main = (3 * 3 * 3 * 4 + 4) + (4 * 2 + 2)
    aux = 4 * 7 + 7
    assert net.total(inference=True).params == main
    assert net.total().params == main + aux
    assert net.is_train_only("aux") and not net.is_train_only("x")
    s = net.report()
    assert s["inference"]["params"]["total"] == main and s["params"]["total"] == main + aux


def test_unused_tap_is_pruned_with_a_warning(spec_file):
    net = net_of(spec_file, "x = conv(4, 3)\nlost = x -> maxpool(2)\nx -> gap")
    assert "lost" not in net.layers and net.graph.unused == ["lost"]


# --- concat and add ---------------------------------------------------------------------------

def test_concat_branches_in_order(spec_file):
    net = net_of(spec_file,
                 "concat {\n  conv(4, 1)\n  conv(2, 1) -> conv(6, 3)\n  maxpool(3, stride=1, pad=same)\n}")
    cat = net.layers["concat_1"]
    assert cat.inputs == ("b1/conv_1", "b2/conv_2", "b3/maxpool_1")
    assert net.shapes["concat_1"] == (8, 8, 4 + 6 + 3)


def test_nested_concat_and_residual_add(spec_file):
    net = net_of(spec_file, """
  conv(8, 1)
  add {
    identity
    concat { conv(4, 1); conv(4, 3) }
  }
""")
    add = net.layers["add_1"]
    assert add.inputs == ("conv_1", "b2/concat_1")
    assert net.shapes["add_1"] == (8, 8, 8)


# --- modules ------------------------------------------------------------------------------------

BLOCK = "module block(c, k=3, act=relu) {\n  conv(c, 1) -> conv(c, k, act=act)\n}"


def test_module_params_defaults_and_keywords(spec_file):
    net = net_of(spec_file, "block(4)\nb = block(6, k=5)\nblock(2, act=none, k=1)", head=BLOCK)
    assert attrs(net, "block_1/conv_2")["kernel"] == (3, 3) and attrs(net, "block_1/conv_2")["act"] == "relu"
    assert attrs(net, "b/conv_2")["kernel"] == (5, 5) and net.shapes["b/conv_2"] == (8, 8, 6)
    assert attrs(net, "block_2/conv_2")["act"] is None and attrs(net, "block_2/conv_2")["kernel"] == (1, 1)
    assert [b.name for b in net.graph.blocks] == ["block_1", "b", "block_2"]
    assert all(b.module == "block" for b in net.graph.blocks)


def test_module_default_can_use_earlier_param(spec_file):
    net = net_of(spec_file, "m(4)", head="module m(c, d=c * 2) { conv(d, 1) }")
    assert net.shapes["m_1/conv_1"] == (8, 8, 8)


def test_nested_modules(spec_file):
    head = BLOCK + "\nmodule stage(c) {\n  block(c)\n  block(c * 2)\n}"
    net = net_of(spec_file, "s = stage(2)", head=head)
    assert "s/block_2/conv_2" in net.layers and net.shapes["s/block_2/conv_2"] == (8, 8, 4)
    assert [b.name for b in net.graph.blocks] == ["s/block_1", "s/block_2", "s"]


def test_modules_see_only_their_own_names(spec_file):
    # lexical scoping of expression names: the network's `width` is not visible in the module
    with pytest.raises(SpecError, match="unknown name 'width'"):
        net_of(spec_file, "m()", params="width=2", head="module m() { conv(width, 1) }")


# --- defaults -----------------------------------------------------------------------------------

def test_defaults_apply_and_explicit_wins(spec_file):
    net = net_of(spec_file, "defaults conv(act=relu, bias=false)\nconv(4, 3)\nconv(4, 3, act=tanh)")
    assert attrs(net, "conv_1")["act"] == "relu" and attrs(net, "conv_1")["bias"] is False
    assert attrs(net, "conv_2")["act"] == "tanh" and attrs(net, "conv_2")["bias"] is False


def test_innermost_defaults_win(spec_file):
    net = net_of(spec_file, """
  defaults conv(act=relu, bn=true)
  defaults conv(act=sigmoid)
  conv(4, 1)
""")
    assert attrs(net, "conv_1")["act"] == "sigmoid" and attrs(net, "conv_1")["bn"] is True


def test_defaults_end_with_their_block(spec_file):
    net = net_of(spec_file, """
  if true {
    defaults conv(act=relu)
    conv(4, 1)
  }
  conv(4, 1)
  repeat 1 {
    defaults conv(bias=false)
    conv(4, 1)
  }
  conv(4, 1)
""")
    assert attrs(net, "conv_1")["act"] == "relu"
    assert attrs(net, "conv_2")["act"] is None
    assert attrs(net, "conv_3")["bias"] is False
    assert attrs(net, "conv_4")["bias"] is True


def test_defaults_inside_a_module_do_not_leak_out(spec_file):
    net = net_of(spec_file, "m()\nconv(4, 1)",
                 head="module m() {\n  defaults conv(act=relu)\n  conv(4, 1)\n}")
    assert attrs(net, "m_1/conv_1")["act"] == "relu"
    assert attrs(net, "conv_1")["act"] is None


def test_defaults_reach_into_module_calls_dynamically(spec_file):
    head = "module m(c) { conv(c, 1) -> conv(c, 1, bn=false) }"
    net = net_of(spec_file, "m(4)\ndefaults conv(bn=true, act=relu)\nm(4)", head=head)
    assert attrs(net, "m_1/conv_1")["bn"] is False           # before the defaults
    assert attrs(net, "m_2/conv_1")["bn"] is True and attrs(net, "m_2/conv_1")["act"] == "relu"
    assert attrs(net, "m_2/conv_2")["bn"] is False          # the module's explicit argument wins


def test_module_defaults_beat_the_callers(spec_file):
    head = "module m() {\n  defaults conv(act=tanh)\n  conv(4, 1)\n}"
    net = net_of(spec_file, "defaults conv(act=relu)\nm()", head=head)
    assert attrs(net, "m_1/conv_1")["act"] == "tanh"


def test_top_level_defaults_apply_to_the_network(spec_file):
    net = net_of(spec_file, "conv(4, 1)", head="defaults conv(bias=false), maxpool(pad=same)")
    assert attrs(net, "conv_1")["bias"] is False


# --- use ------------------------------------------------------------------------------------------

def test_use_is_relative_to_the_importing_file(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.inc").write_text('use "more/deep.inc"\nmodule block(c) { deep(c) }\n')
    (tmp_path / "lib" / "more").mkdir()
    (tmp_path / "lib" / "more" / "deep.inc").write_text("module deep(c) { conv(c, 3) }\n")
    (tmp_path / "net").mkdir()
    spec = tmp_path / "net" / "n.inc"
    spec.write_text('use "../lib/blocks.inc"\nnetwork n() {\n  input 8x8x3\n  block(5)\n}\n')
    net = incdsl.load(spec)
    assert net.shapes["block_1/deep_1/conv_1"] == (8, 8, 5)


def test_use_twice_is_loaded_once(tmp_path):
    (tmp_path / "a.inc").write_text("module a() { relu }\n")
    (tmp_path / "b.inc").write_text('use "a.inc"\nmodule b() { a() }\n')
    (tmp_path / "n.inc").write_text('use "a.inc"\nuse "b.inc"\nnetwork n() {\n  input 8x8x3\n  b()\n}\n')
    assert "b_1/a_1/relu_1" in incdsl.load(tmp_path / "n.inc").layers


def test_imported_networks_are_not_the_root_network(tmp_path):
    (tmp_path / "base.inc").write_text("module m() { relu }\nnetwork base() {\n  input 4x4x1\n}\n")
    (tmp_path / "n.inc").write_text('use "base.inc"\nnetwork mine() {\n  input 8x8x3\n  m()\n}\n')
    assert incdsl.load(tmp_path / "n.inc").name == "mine"


# --- repeat, if, let --------------------------------------------------------------------------------

def test_repeat_unnamed_and_as_i(spec_file):
    net = net_of(spec_file, "repeat 3 as i {\n  conv(i * 2, 1)\n}")
    assert [net.shapes[f"conv_{i}"][-1] for i in (1, 2, 3)] == [2, 4, 6]


def test_repeat_zero_times_is_nothing(spec_file):
    net = net_of(spec_file, "repeat 0 { conv(4, 1) }\ngap")
    assert list(net.layers) == ["input", "gap_1"]


def test_named_repeat_numbers_its_passes(spec_file):
    net = net_of(spec_file, "b = repeat 3 { block(4) }", head=BLOCK)
    assert [b.name for b in net.graph.blocks] == ["b_1", "b_2", "b_3"]
    net = net_of(spec_file, "b = repeat 2 as i {\n  conv(i, 1)\n  relu\n}")
    assert {"b_1/conv_1", "b_1/relu_1", "b_2/conv_1", "b_2/relu_1"} <= set(net.layers)
    assert net.shapes["b_2/conv_1"] == (8, 8, 2)
    assert net.layers["b_2/conv_1"].inputs == ("b_1/relu_1",)


def test_if_elif_else(spec_file):
    body = "if depth == 1 { conv(1, 1) } elif depth == 2 { conv(2, 1) } else { conv(3, 1) }"
    for depth, want in [(1, 1), (2, 2), (7, 3)]:
        net = net_of(spec_file, body, params="depth=1", depth=depth)
        assert net.shapes["conv_1"][-1] == want


def test_if_on_boolean_logic(spec_file):
    body = "if aux and not small or width > 2 { conv(9, 1) }"
    assert "conv_1" in net_of(spec_file, body, params="aux=true, small=false, width=1").layers
    assert "conv_1" not in net_of(spec_file, body, params="aux=true, small=true, width=1").layers
    assert "conv_1" in net_of(spec_file, body, params="aux=false, small=true, width=3").layers


def test_let(spec_file):
    net = net_of(spec_file, "let c = base * 3\nconv(c, 1)\nlet c = c + 1\nconv(c, 1)", params="base=2")
    assert net.shapes["conv_1"][-1] == 6 and net.shapes["conv_2"][-1] == 7


# --- arithmetic ---------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, want", [
    ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("17 // 5", 3), ("17 % 5", 2), ("int(7 / 2)", 3), ("-3 + 10", 7),
    ("int(64 * 0.75)", 48), ("round(2.5)", 2), ("round(3.5)", 4), ("ceil(7 / 2)", 4), ("floor(7 / 2)", 3),
    ("min(3, 9, 5)", 3), ("max(3, 9, 5)", 9), ("abs(-4)", 4), ("10 - 2 - 3", 5), ("2 * 3 // 4", 1),
    ("int(1e1)", 10), ("int(.5 * 4)", 2),
])
def test_arithmetic(spec_file, expr, want):
    assert net_of(spec_file, f"conv({expr}, 1)").shapes["conv_1"][-1] == want


def test_sizes_and_tuples(spec_file):
    net = net_of(spec_file, "conv(2, 1x3)\nconv(2, (3, 1), pad=(1, 0))\nmaxpool(2x1, stride=(2, 1))")
    assert attrs(net, "conv_1")["kernel"] == (1, 3)
    assert attrs(net, "conv_2")["pad"] == (1, 1, 0, 0)
    assert net.shapes["maxpool_1"] == (4, 8, 2)


def test_input_from_expressions(spec_file):
    net = incdsl.load(spec_file("network n(size=16) {\n  input(size, size * 2, 1)\n}\n"))
    assert net.input_shape == (16, 32, 1)


# --- parameters, variants, overrides --------------------------------------------------------------

PARAMS = "classes=10, width=1.0, aux=true, k=3, act=relu, size=8x8"


def test_set_overrides_are_read_as_the_defaults_type(spec_file):
    path = spec_file(f"network n({PARAMS}) {{\n  input 8x8x3\n  conv(int(8 * width), k, act=act)\n"
                     "  if aux { relu }\n  gap -> dense(classes)\n}\n")
    net = incdsl.load(path, classes="3", width="0.5", aux="false", k="1", act="tanh", size="4x2")
    assert net.params == {"classes": 3, "width": 0.5, "aux": False, "k": 1, "act": "tanh", "size": (4, 2)}
    assert net.shapes["conv_1"] == (8, 8, 4) and attrs(net, "conv_1")["act"] == "tanh"
    assert "relu_1" not in net.layers
    assert net.heads[0].shape == (3,)
    # Python values pass through untouched
    assert incdsl.load(path, width=0.25, aux=True).params["width"] == 0.25
    for word in ("yes", "on", "1", "TRUE"):
        assert incdsl.load(path, aux=word).params["aux"] is True


@pytest.mark.parametrize("name, value", [("classes", "3.5"), ("width", "wide"), ("aux", "maybe"), ("k", "x")])
def test_set_bad_values_are_usage_errors(spec_file, name, value):
    path = spec_file(f"network n({PARAMS}) {{\n  input 8x8x3\n}}\n")
    with pytest.raises(UsageError, match=f"^{name}='{value}': {name} is ") as caught:
        incdsl.load(path, **{name: value})
    assert "--set" not in str(caught.value)  # Python's words from Python; the CLI says --set


def test_set_unknown_parameter_suggests(spec_file):
    with pytest.raises(UsageError, match="did you mean 'width'"):
        incdsl.load(spec_file(f"network n({PARAMS}) {{\n  input 8x8x3\n}}\n"), widht="1")


def test_spec_builds_many_variants_from_one_parse(spec_file):
    spec = incdsl.Spec(spec_file("network n(width=1.0) {\n  input 8x8x3\n  conv(int(16 * width), 1)\n}\n"))
    assert spec.params == {"width": 1.0}
    widths = [spec.build(width=w).shapes["conv_1"][-1] for w in ("0.25", "0.5", 1.0)]
    assert widths == [4, 8, 16]


def test_named_variants(spec_file):
    path = spec_file("variant tiny(width=0.25, aux=false)\nnetwork n(width=1.0, aux=true) {\n"
                     "  variant half(width=0.5)\n  input 8x8x3\n}\n")
    spec = incdsl.Spec(path)
    assert spec.variants == {"tiny": {"width": 0.25, "aux": False}, "half": {"width": 0.5}}
    assert spec.build(**spec.variants["tiny"]).params == {"width": 0.25, "aux": False}


def test_pick_a_network_by_name(spec_file):
    path = spec_file("network a() {\n  input 4x4x1\n}\nnetwork b() {\n  input 8x8x1\n}\n")
    assert incdsl.load(path, "b").input_shape == (8, 8, 1)
    with pytest.raises(UsageError, match="several networks"):
        incdsl.load(path)
    with pytest.raises(UsageError, match="did you mean 'b'"):
        incdsl.load(path, "bb")


# --- comments, strings, the API's figures -----------------------------------------------------------

def test_comments_and_blank_lines(spec_file):
    net = incdsl.load(
        spec_file("# top\n\nnetwork n() {  # here\n\n  input 8x8x3  # in\n  # alone\n  relu\n\n}\n"))
    assert list(net.layers) == ["input", "relu_1"]


def test_counts_and_depth(spec_file):
    net = net_of(spec_file,
                 "conv(4, 3, bias=false, bn=true) -> concat { conv(2, 1); conv(2, 1) -> conv(2, 1) }"
                            " -> gap -> dense(3)")
    assert net.counts["conv_1"].trainable == 3 * 3 * 3 * 4 + 8 and net.counts["conv_1"].non_trainable == 8
    assert net.depth == 4  # layers with weights on the longest path: conv_1, branch 2's two convs, dense


def test_set_on_the_command_line(spec_file, capsys):
    import json

    from incdsl.cli import main as cli
    path = spec_file("network n(width=1.0, aux=true, k=3) {\n  input 8x8x3\n  conv(int(8 * width), k)\n"
                     "  if aux { relu }\n}\n")
    assert cli.main(["summary", str(path), "--json", "--set", "width=0.5", "--set", "aux=no", "--set",
                     "k = 1"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["set"] == {"width": 0.5, "aux": False, "k": 1}
    assert [(l["name"], l["shape"]) for l in s["layers"]] == [("input", [8, 8, 3]), ("conv_1", [8, 8, 4])]
    assert cli.main(["check", str(path), "--set", "k=3.5"]) == 2
    assert "k is an integer" in capsys.readouterr().err
