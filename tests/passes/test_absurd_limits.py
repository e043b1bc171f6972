"""The absurd-size limits of shape inference (passes/shapes.py, issue 12) at their exact edges: a
network of exactly MAX_PARAMS params and a tensor of exactly MAX_ELEMENTS elements are accepted,
one more is refused at the layer that crosses the limit, with the figures the user needs."""
from __future__ import annotations

from incdsl.passes.shapes import MAX_ELEMENTS, MAX_PARAMS


def _net(*lines: str) -> str:
    return "network t() {\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


def test_params_at_the_limit_pass_and_one_layer_over_it_is_named(spec_file, cli):
    assert MAX_PARAMS == 2 ** 31
    # 256x256 flattened is 65,536 values; x 32,768 units = 2^31 weights exactly
    out = cli.ok("check", spec_file(_net("input 256x256x1", "flatten", "dense(32768, bias=false)")))
    assert "2,147,483,648 params" in out
    code, out, err = cli("check", spec_file(_net("input 256x256x1", "flatten", "dense(32769, bias=false)")))
    assert code == 1 and out == ""
    assert ("t.inc:4:3: error: the network is absurdly large: this dense has 2,147,549,184 params "
            "(the limit is 2,147,483,648)") in err
    assert "^ 2,147,549,184 params" in err


def test_the_params_limit_is_on_the_whole_network(spec_file, cli):
    # 65,536 x 16,384 = 2^30, then 16,384 x 98,304 = 1.5 x 2^30: each under the limit, together over
    code, _, err = cli("check", spec_file(_net("input 256x256x1", "flatten", "dense(16384, bias=false)",
                                               "dense(98304, bias=false)")))
    assert code == 1
    assert ("t.inc:5:3: error: the network is absurdly large: this dense has 1,610,612,736 params, "
            "2,684,354,560 up to here (the limit is 2,147,483,648)") in err


def test_an_output_at_the_element_limit_passes_and_twice_it_is_refused(spec_file, cli):
    assert MAX_ELEMENTS == 32768 * 65536
    cli.ok("check", spec_file(_net("input 32768x65536x1", "gap")))
    code, _, err = cli("check", spec_file(_net("input 32768x65536x1", "conv(2, 1)", "gap")))
    assert code == 1
    assert ("t.inc:3:3: error: conv output 32768x65536x2 is absurdly large: 4,294,967,296 elements per "
            "image (the limit is 2,147,483,648)") in err
