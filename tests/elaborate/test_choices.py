"""Issue 28 item 2: string arguments with a fixed set of values are checked. A parameter lists its
values after `in` (`pooling=none in (none, avg, max)`); `--set`, the Python API, module calls,
variants and defaults refuse any other, with the list and a did-you-mean; fmt round-trips the
syntax; the language server reports the error at its place."""
import subprocess
import sys

import pytest

import incdsl
from incdsl.cli.main import main
from incdsl.editor.fmt import format_text
from incdsl.editor.lsp import analyze
from incdsl.errors import ArgumentError, UsageError
from incdsl.frontend.parse import parse_text

from conftest import ROOT, SPECS

REFERENCE = sorted(p.name for p in SPECS.glob("*.inc"))

MODULE_CALL = """module head(classes, pooling=avg in (avg, max)) {
  if pooling == avg {
    gap
  } else {
    gmp
  }
  dense(classes)
}

network t(mode=avg in (avg, max), n=2 in (1, 2, 4)) {
  input 32x32x3
  conv(8, 3) -> head(10, pooling=mean)
}
"""


def test_the_issues_command_fails_with_the_list_and_avg():
    done = subprocess.run([sys.executable, "-m", "incdsl", "summary", "googlenet", "--set", "top=false",
                           "--set", "pooling=mean", "--set", "aux=false"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert "--set pooling=mean: pooling is one of none, avg, max; did you mean 'avg'?" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value, shape", [("avg", (1024,)), ("max", (1024,)), ("none", (7, 7, 1024))])
def test_allowed_values_still_build(value, shape, capsys):
    net = incdsl.load("googlenet", top=False, pooling=value, aux=False)
    assert list(net.outputs.values()) == [shape]
    assert main(["summary", "googlenet", "--set", "top=false", "--set", f"pooling={value}", "--set",
                 "aux=false"]) == 0


def test_python_api_refuses_with_the_parameter_name():
    with pytest.raises(ArgumentError) as e:
        incdsl.load("googlenet", pooling="mean")
    assert isinstance(e.value, UsageError)
    assert str(e.value) == "pooling='mean': pooling is one of none, avg, max; did you mean 'avg'?"
    with pytest.raises(ArgumentError, match="did you mean 'max'"):
        incdsl.load("inception_v3", pooling="Max ")


@pytest.mark.parametrize("name", REFERENCE)
def test_every_reference_spec_declares_its_pooling_values(name):
    f = parse_text((SPECS / name).read_text(), name)
    net = [d for d in f.items if getattr(d, "kind", None) == "network"][0]
    pooling = {p.name: p for p in net.params}["pooling"]
    assert [c.name for c in pooling.choices] == ["none", "avg", "max"]
    with pytest.raises(ArgumentError, match="pooling is one of none, avg, max"):
        incdsl.load(str(SPECS / name), pooling="gap")


def test_a_module_call_with_a_bad_value_points_at_it(spec_file, capsys):
    path = spec_file(MODULE_CALL)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:12:34: error: head: 'pooling' cannot be mean" in err
    assert "    |                                  ^^^^ pooling is one of avg, max" in err
    assert "hint: did you mean 'avg'?" in err
    assert f"note: module head: pooling takes avg, max ({path}:1:22)" in err


def test_a_variant_and_a_default_outside_the_list_are_errors(spec_file, capsys):
    path = spec_file(
        MODULE_CALL.replace("pooling=mean", "pooling=max").replace(
            "input 32x32x3", "variant v(n=3)\n  input 32x32x3"
        )
    )
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: variant 'v': 'n' cannot be 3" in err and "n is one of 1, 2, 4" in err
    path = spec_file(MODULE_CALL.replace("pooling=mean", "pooling=max").replace("mode=avg in",
                                                                                "mode=mean in"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:10:16: error: network t: 'mode' cannot be mean" in err and "did you mean 'avg'?" in err


def test_numbers_and_set(spec_file, capsys):
    path = spec_file(MODULE_CALL.replace("pooling=mean", "pooling=max"))
    assert main(["check", str(path), "--set", "n=4"]) == 0
    capsys.readouterr()
    assert main(["check", str(path), "--set", "n=3"]) == 2
    assert "--set n=3: n is one of 1, 2, 4" in capsys.readouterr().err
    with pytest.raises(ArgumentError, match="n is one of 1, 2, 4"):
        incdsl.load(str(path), n=True)  # true is not 1


def test_fmt_round_trips_the_syntax():
    text = "network t(pooling = none in(none,avg , max),k=2 in ( 1,2 )) {\n  input 8x8x3\n  gap\n}\n"
    out = format_text(text)
    assert "network t(pooling=none in (none, avg, max), k=2 in (1, 2)) {" in out
    assert format_text(out) == out
    a, b = parse_text(text, "t.inc"), parse_text(out, "t.inc")
    pa = [(p.name, len(p.choices)) for p in a.items[0].params]
    assert pa == [(p.name, len(p.choices)) for p in b.items[0].params] == [("pooling", 3), ("k", 2)]
    for name in REFERENCE:
        text = (SPECS / name).read_text()
        assert format_text(text) == text


def test_the_language_server_reports_it_at_its_place(tmp_path):
    a = analyze(MODULE_CALL, str(tmp_path / "t.inc"))
    assert len(a.problems) == 1
    p = a.problems[0]
    assert "'pooling' cannot be mean" in p.message and (p.span.line, p.span.col) == (12, 34)
    ok = analyze(MODULE_CALL.replace("pooling=mean", "pooling=max"), str(tmp_path / "t.inc"))
    assert ok.problems == [] and ok.sites


def test_in_is_a_keyword_now_and_says_so(spec_file, capsys):
    path = spec_file("network t() {\n  input 8x8x3\n  in = gap\n}\n")
    assert main(["check", str(path)]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_completion_offers_a_parameters_values(tmp_path):
    from incdsl.editor.lsp_complete import completions
    text = MODULE_CALL.replace("pooling=mean", "pooling=max")
    a = analyze(text, str(tmp_path / "t.inc"))
    line = text.splitlines()[11]
    col = line.index("pooling=") + len("pooling=") + 1
    items = completions(a, text, 12, col)
    assert [(label, kind) for label, kind, _, _ in items] == [("avg", "value"), ("max", "value")]
    names = completions(a, text, 12, line.index("pooling") + 1)
    assert any(label == "pooling=" and "one of avg, max" in detail for label, _, detail, _ in names)


def test_none_in_pythons_spelling_is_none(capsys):
    """`--set pooling=None` (Python's str(None)) is the word none, as `pooling=none` is."""
    assert main(["check", "googlenet", "--set", "pooling=None"]) == 0
    assert incdsl.load("googlenet", pooling="None").arguments["pooling"] is None


STAGE = """module stage(n in (1, 2, 4)) {
  repeat n { conv(8, 3, pad=same) }
}
module sw(pool in (avg, max)) {
  if pool == "avg" { gap } else { gmp }
}
network t() {
  input 16x16x3
  stage(CALL) -> sw(POOL) -> dense(2)
}
"""


@pytest.mark.parametrize("call, pool, where, message", [
    ("3", "avg", "9:9", "stage: 'n' cannot be 3"),
    ("n=3", "avg", "9:11", "stage: 'n' cannot be 3"),
    ("7", "avg", "9:9", "stage: 'n' cannot be 7"),
    ("2", "mean", "9:18", "sw: 'pool' cannot be mean"),
])
def test_a_parameter_without_a_default_is_checked_too(spec_file, capsys, call, pool, where, message):
    """`n in (1, 2, 4)` with no default (the form specs/README.md shows) refuses other values as
    `n=1 in (...)` does: Lark's placeholders for the missing `= expr` once hid the list."""
    path = spec_file(STAGE.replace("CALL", call).replace("POOL", pool))
    assert main(["check", str(path)]) == 1
    assert f"{path}:{where}: error: {message}" in capsys.readouterr().err
    ok = spec_file(STAGE.replace("CALL", "4").replace("POOL", "max"), name="ok.inc")
    assert main(["check", str(ok)]) == 0
    assert "ok: network t" in capsys.readouterr().out


def test_fmt_keeps_the_list_of_a_parameter_without_a_default(tmp_path):
    path = tmp_path / "s.inc"
    path.write_text(STAGE.replace("CALL", "4").replace("POOL", "max"))
    assert main(["fmt", str(path)]) == 0
    assert "module stage(n in (1, 2, 4)) {" in path.read_text(
        ) and "module sw(pool in (avg, max)) {" in path.read_text()


@pytest.mark.parametrize("given", ['"avg"', "'avg'"])
def test_a_quoted_word_from_set_is_the_word(capsys, given):
    """specs/README.md: a word given from --set as the spec would quote it ("avg") is the bare word."""
    assert main(["summary", "googlenet", "--set", "top=false", "--set", f"pooling={given}", "--set",
                 "aux=false"]) == 0
    assert "1024" in capsys.readouterr().out
