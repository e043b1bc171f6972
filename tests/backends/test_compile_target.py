"""Issue 28 item 4: `incdsl compile`'s output matches the request. A file name whose suffix
disagrees with --to is refused (exit 2, nothing written); `-o FILE` alone takes the format from
the suffix."""
import pytest

from incdsl.cli.main import main

# what each format's file starts with
MAGIC = {"keras": b"PK", "onnx": b"\x08", "dot": b"digraph", "svg": b"<?xml", "png": b"\x89PNG",
         "html": b"<!DOCTYPE html"}
SUFFIX = {"keras": ".keras", "onnx": ".onnx", "dot": ".dot", "svg": ".svg", "png": ".png", "html": ".html"}
# a wrong name for each format: the next format's suffix
WRONG = dict(zip(SUFFIX, list(SUFFIX.values())[1:] + [".keras"]))


@pytest.fixture
def g(plain32_spec, monkeypatch):
    """nets.PLAIN32 as g.inc in the current directory."""
    monkeypatch.chdir(plain32_spec.parent)
    return plain32_spec


def test_the_issues_case_png_into_svg_is_refused(capsys):
    import os
    import tempfile

    from conftest import SPECS
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "g.svg")
        assert main(["compile", str(SPECS / "googlenet.inc"), "--to", "png", "-o", out]) == 2
        err = capsys.readouterr().err
        assert "-o" in err and "svg" in err and "--to png" in err and "Traceback" not in err
        assert not os.path.exists(out) and os.listdir(d) == []


@pytest.mark.parametrize("to", sorted(SUFFIX))
def test_a_suffix_that_disagrees_with_to_is_refused(g, to, capsys):
    name = "out" + WRONG[to]
    assert main(["compile", "g.inc", "--to", to, "-o", name]) == 2
    err = capsys.readouterr().err
    assert f"--to {to}" in err and name in err and f"*{SUFFIX[to]}" in err
    assert sorted(p.name for p in g.parent.iterdir()) == ["g.inc"]


@pytest.mark.parametrize("to", sorted(SUFFIX))
def test_a_name_without_a_known_suffix_is_refused_with_to(g, to, capsys):
    assert main(["compile", "g.inc", "--to", to, "-o", "out.txt"]) == 2
    assert "out.txt" in capsys.readouterr().err
    assert sorted(p.name for p in g.parent.iterdir()) == ["g.inc"]


def test_neither_to_nor_a_known_suffix_is_bad_usage(g, capsys):
    assert main(["compile", "g.inc", "-o", "out.txt"]) == 2
    assert "--to" in capsys.readouterr().err
    assert main(["compile", "g.inc"]) == 2
    assert main(["compile", "g.inc", "-o", "-"]) == 2
    assert sorted(p.name for p in g.parent.iterdir()) == ["g.inc"]


def _infers(g, to, capsys, extra=()):
    name = "out" + SUFFIX[to]
    assert main(["compile", "g.inc", "-o", name, *extra]) == 0, capsys.readouterr().err
    assert (g.parent / name).read_bytes().startswith(MAGIC[to])
    # the same name with the matching --to is accepted too, and writes the same kind of file
    (g.parent / name).unlink()
    assert main(["compile", "g.inc", "--to", to, "-o", name.upper() if to == "svg" else name, *extra]) == 0


@pytest.mark.parametrize("to", ["dot", "svg", "png", "html"])
def test_o_alone_infers_the_format_from_the_suffix(g, to, capsys):
    _infers(g, to, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("to", ["keras", "onnx"])
def test_o_alone_infers_keras_and_onnx(g, to, capsys):
    _infers(g, to, capsys, ("--no-verify",) if to == "onnx" else ())
