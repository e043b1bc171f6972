"""Parsing keeps no global state (issue 19, structure item 5): spans point to their own `Source`,
each parse has its own transformer, and nothing in the package grows with the number of buffers
parsed, as a language server parsing edited buffers for hours needs."""
from __future__ import annotations

import dataclasses
import gc
import sys
import threading

import pytest

from incdsl import SpecError
from incdsl.frontend.parse import parse_text
from incdsl.frontend.program import load_program_text
from incdsl.source import Source, Span

GOOD = """module stem_{i}(c) {{
  conv(c, 3) -> maxpool(3, stride=2)
}}

network n{i}(classes={i}) {{
  input 32x32x3
  stem_{i}({c}) -> conv({c}, 1x{k})
  gap -> dense(classes, act=softmax)
}}
"""
BAD = "network n{i}() {{\n  input 32x32x3\n  conv({c}, 3 -> gap\n}}\n"


def _sizes() -> dict[str, int]:
    """The size of every dict, list, set and lru_cache held at the top level of a loaded incdsl
    module (or as a class attribute of one of its classes)."""
    out = {}
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not (mod_name == "incdsl" or mod_name.startswith("incdsl.")):
            continue
        holders = [(mod_name, vars(mod))]
        holders += [(f"{mod_name}.{k}", vars(v)) for k, v in vars(mod).items()
                    if isinstance(v, type) and v.__module__ == mod_name]
        for where, space in holders:
            for k, v in list(space.items()):
                if isinstance(v, (dict, list, set, bytearray)) and not k.startswith("__"):
                    out[f"{where}.{k}"] = len(v)
                elif hasattr(v, "cache_info"):
                    out[f"{where}.{k}()"] = v.cache_info().currsize
    return out


def _spans(node):
    if isinstance(node, Span):
        yield node
    elif dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            yield from _spans(getattr(node, f.name))
    elif isinstance(node, tuple):
        for x in node:
            yield from _spans(x)


@pytest.mark.slow  # ~3 s of CPU: a leak bound, for the full suite (issue 29's quick budget)
def test_parsing_2000_buffers_grows_nothing_and_keeps_no_source():
    """2,000 different buffers under 2,000 names, as the language server sees edits: every
    module-level container of incdsl keeps its size and no Source outlives its AST."""
    parse_text(GOOD.format(i=0, c=8, k=3), "warm.inc")  # lazy caches (the parser tables) fill here
    with pytest.raises(SpecError):
        parse_text(BAD.format(i=0, c=8), "warm_bad.inc")
    gc.collect()
    before = _sizes()
    errors = 0
    prog = tree = None
    for i in range(1, 2001):
        name = f"buffer_{i}.inc"
        try:
            if i % 4 == 0:
                load_program_text(BAD.format(i=i, c=i), name)
            elif i % 2:
                prog = load_program_text(GOOD.format(i=i, c=i, k=1 + i % 7), name)
                assert prog.networks[0].span.file == name
            else:
                tree = parse_text(GOOD.format(i=i, c=i, k=1 + i % 7), name)
                assert {s.file for s in _spans(tree)} == {name}
        except SpecError as e:
            errors += 1
            assert e.span.file == f"buffer_{i}.inc" and f"conv({i}, 3 -> gap" in e.render()
    assert errors == 500
    prog = tree = None  # the last buffer's AST: dropped like the others
    gc.collect()
    after = _sizes()
    grown = {k: (before.get(k), n) for k, n in after.items() if n > before.get(k, 0)}
    assert not grown, f"grew while parsing: {grown}"
    alive = [o for o in gc.get_objects() if type(o) is Source and o.name.startswith("buffer_")]
    assert not alive, f"{len(alive)} Sources outlive their parse"


def test_two_threads_parse_different_files_at_once():
    """Two threads parse different files (and a syntax error each) at the same time: every span
    and every error names the thread's own file and shows the thread's own line."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: parses interleave
    barrier = threading.Barrier(2)
    failures: list[str] = []

    def work(tag: str, c: int):
        barrier.wait()
        for i in range(60):
            name = f"{tag}/spec_{i}.inc"
            tree = parse_text(GOOD.format(i=i, c=c, k=3), name)
            files = {s.file for s in _spans(tree)}
            if files != {name}:
                failures.append(f"{name}: spans name {sorted(files)}")
            try:
                parse_text(BAD.format(i=i, c=c), name)
                failures.append(f"{name}: no syntax error")
            except SpecError as e:
                text = e.render()
                if e.span.file != name or f"conv({c}, 3 -> gap" not in text or not text.startswith(name):
                    failures.append(f"{name}: error reads {text.splitlines()[:2]}")

    threads = [threading.Thread(target=work, args=(tag, c)) for tag, c in (("alpha", 11), ("beta", 22))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not failures, failures[:5]


def test_an_old_error_shows_its_own_text_after_the_file_is_parsed_again():
    """An error kept from an earlier version of a buffer renders that version's line, not the
    line of the same number in a later parse of a file of the same name (SOURCES did the latter)."""
    with pytest.raises(SpecError) as first:
        parse_text("network n() {\n  conv(8, 3 -> gap\n}\n", "edited.inc")
    parse_text("network n() {\n  input 8x8x3\n  gap\n}\n", "edited.inc")
    assert first.value.render().splitlines()[1] == " 2 |   conv(8, 3 -> gap"


def test_span_made_from_a_file_name_still_works():
    """`Span(file, line, col, ...)`, the spelling before Source, names the file and has no text."""
    s = Span("x.inc", 3, 4, 3, 9)
    assert str(s) == "x.inc:3:4" and s.file == "x.inc" and s.source_line() is None
    assert SpecError("bad", s).render() == "x.inc:3:4: error: bad"


def test_source_lines_count_as_lark_does():
    """Lines end at "\\n" only (a form feed or U+2028 inside a line does not end it); "\\r" is dropped."""
    src = Source("f.inc", "a\x0cb\r\nc\u2028d\n")
    assert [src.line(n) for n in range(0, 5)] == [None, "a\x0cb", "c\u2028d", "", None]
    assert Source("f.inc").line(1) is None


def test_control_characters_never_reach_the_terminal(tmp_path, capsys):
    """A spec line or a file name holding ESC sequences (clear screen, colours) is echoed with
    control pictures, one character for one, so the caret stays under the culprit."""
    from incdsl.cli.main import main
    spec = tmp_path / "esc.inc"
    spec.write_text("network n() {\n  input 8x8x3\n  conv(4, 3) -> bo\x1b[2Jgus\n}\n")
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err
    line, caret = err.splitlines()[1:3]
    assert line.endswith("conv(4, 3) -> bo\u241b[2Jgus") and caret.index("^") == line.index("\u241b")
    assert main(["check", str(tmp_path / "a\x1b]0;pwned\x07.inc")]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "a\u241b]0;pwned\u2407.inc" in err
