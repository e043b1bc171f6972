"""`incdsl fmt`: the canonical layout, its fixed point, comments kept, and refusals."""
from pathlib import Path

import pytest

from incdsl.cli import main as cli
from incdsl.editor import fmt
from incdsl.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").rglob("*.inc"))
CORPUS = sorted((ROOT / "tests" / "errors").glob("*.inc"))

MESSY = """\
# a messy spec
module   blk( c , w=1.0 ){   # a block
    concat{
  conv( int( c*w ),1 )   # one
      conv(c,1)->conv(c,3,pad = 1) ->   # two
      conv(c, 3)


  }
}
network n(classes = 10,width=1.0){
  input 32x32x3
  x=conv(16,3)->blk(8,w=width)
  #  a comment alone
  y = x ->
    gap
  output out = y -> dense(classes, act=softmax)   # logits
}
"""

CANONICAL = """\
# a messy spec
module blk(c, w=1.0) {  # a block
  concat {
    conv(int(c * w), 1)                 # one
    conv(c, 1) -> conv(c, 3, pad=1) ->  # two
        conv(c, 3)
  }
}
network n(classes=10, width=1.0) {
  input 32x32x3
  x = conv(16, 3) -> blk(8, w=width)
  #  a comment alone
  y = x
      -> gap
  output out = y -> dense(classes, act=softmax)  # logits
}
"""


def test_every_spec_in_specs_is_formatted():
    assert SPECS and cli.main(["fmt", "--check", *map(str, SPECS)]) == 0


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_idempotent_on_the_specs(path):
    once = fmt.format_text(path.read_text(), str(path))
    assert fmt.format_text(once, str(path)) == once


def test_canonical_layout_keeps_every_comment():
    out = fmt.format_text(MESSY, "m.inc")
    assert out == CANONICAL
    assert fmt.format_text(out, "m.inc") == out
    assert [l for l in MESSY.splitlines() if "#" in l and l.split("#", 1)[1].strip()] and \
        all(c in out for c in ("# a messy spec", "# a block", "# one", "# two", "#  a comment alone",
                               "# logits"))


def test_fmt_reads_every_terminal_of_the_grammar():
    import re
    grammar = (ROOT / "incdsl" / "frontend" / "grammar.lark").read_text()
    terminals = set(re.findall(r"^([A-Z_][A-Z0-9_]*)(?:\.\d+)?\s*:", grammar, re.M))
    assert terminals and terminals <= fmt.TERMINALS, terminals - fmt.TERMINALS


def test_long_chain_breaks_before_arrows():
    chain = " -> ".join(f"conv({64 + i}, 3)" for i in range(12))
    out = fmt.format_text(f"network n() {{\n  input 8x8x3\n  {chain}\n}}\n", "c.inc")
    lines = out.splitlines()[2:-1]
    assert len(lines) > 1 and all(len(l) <= fmt.MAX_WIDTH for l in lines)
    assert all(l.startswith("      -> ") for l in lines[1:])


def test_check_exits_1_and_writes_nothing(tmp_path, capsys):
    p = tmp_path / "messy.inc"
    p.write_text(MESSY)
    assert cli.main(["fmt", "--check", str(p)]) == 1
    assert "would reformat" in capsys.readouterr().err
    assert p.read_text() == MESSY
    p.chmod(0o644)
    assert cli.main(["fmt", str(p)]) == 0
    assert p.read_text() == CANONICAL and p.stat().st_mode & 0o777 == 0o644
    assert cli.main(["fmt", "--check", str(p)]) == 0


def test_refuses_a_file_that_does_not_parse(tmp_path, capsys):
    p = tmp_path / "bad.inc"
    text = "network n() {\n  input 8x8x3\n  conv(64, 3\n}\n"
    p.write_text(text)
    assert cli.main(["fmt", str(p)]) == 1
    err = capsys.readouterr().err
    assert f"{p}:4:1: error: unexpected '}}'" in err and "^" in err and "Traceback" not in err
    assert p.read_text() == text and list(tmp_path.iterdir()) == [p]


@pytest.mark.parametrize("broken", ["drop_token", "change_number"])
def test_never_writes_what_does_not_parse_back_the_same(tmp_path, capsys, monkeypatch, broken):
    real = fmt._layout

    def bad_layout(rows):
        text = real(rows)
        return text.replace("3)", "3", 1) if broken == "drop_token" else text.replace("16", "17", 1)

    monkeypatch.setattr(fmt, "_layout", bad_layout)
    p = tmp_path / "messy.inc"
    p.write_text(MESSY)
    assert cli.main(["fmt", str(p)]) == 1
    err = capsys.readouterr().err
    assert "nothing was written" in err and "Traceback" not in err
    assert p.read_text() == MESSY and list(tmp_path.iterdir()) == [p]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_error_corpus_refused_or_formatted_to_the_same_program(path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return  # read_source refuses non-UTF-8 before fmt sees it (test_refuses covers refusals)
    try:
        out = fmt.format_text(text, path.name)
    except SpecError as e:
        assert "a bug in incdsl fmt" not in e.message, e.message
        return
    assert fmt.format_text(out, path.name) == out


def test_fmt_of_a_symlink_formats_its_target_and_keeps_the_link(tmp_path, capsys):
    tgt = tmp_path / "tgt.inc"
    tgt.write_text(MESSY)
    lnk = tmp_path / "lnk.inc"
    lnk.symlink_to(tgt.name)
    assert cli.main(["fmt", str(lnk)]) == 0
    assert lnk.is_symlink() and lnk.readlink() == Path("tgt.inc")
    assert tgt.read_text() == CANONICAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lnk.inc", "tgt.inc"]


def test_fmt_refuses_a_read_only_file(tmp_path, capsys):
    p = tmp_path / "ro.inc"
    p.write_text(MESSY)
    p.chmod(0o444)
    other = tmp_path / "other.inc"
    other.write_text(MESSY)
    assert cli.main(["fmt", str(p), str(other)]) == 1
    assert other.read_text() == CANONICAL  # the next file is still formatted
    other.unlink()
    err = capsys.readouterr().err
    assert f"error: cannot write {p}: the file is read-only; nothing was written" in err
    assert "Traceback" not in err
    assert p.read_text() == MESSY and p.stat().st_mode & 0o777 == 0o444
    assert list(tmp_path.iterdir()) == [p]
