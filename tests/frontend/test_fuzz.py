"""Property: whatever a spec says, the front end answers with a network or a clean error.

Hypothesis mutates the reference specs with `fuzzing.mutate` (delete, duplicate, repeat and swap
lines; change numbers to 0, negative, fractional and huge values; delete or insert characters and
tokens; rename identifiers) and runs load -> summary -> expand -> table on the result in process. Every
outcome must be a success or a SpecError / UsageError whose message renders; any other exception is a
front-end bug.

The mutated file is written beside a copy of the real specs, so `use "lib/..."` still resolves.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import incdsl
from incdsl.errors import SpecError, UsageError

import fuzzing

SPECS = Path(__file__).resolve().parents[2] / "specs"
SOURCES = {p.name: p.read_text() for p in sorted(SPECS.glob("*.inc"))}
# Libraries are mutated in place and checked through the first spec that uses them.
LIBS = {f"lib/{p.name}": p.read_text() for p in sorted(SPECS.glob("lib/*.inc"))}
USERS = {lib: next(n for n, t in SOURCES.items() if f'"{lib}"' in t) for lib in LIBS
         if any(f'"{lib}"' in t for t in SOURCES.values())}

@pytest.fixture(scope="module")
def spec_dir():
    d = Path(tempfile.mkdtemp(prefix="incdsl-fuzz-"))
    shutil.copytree(SPECS, d / "specs")
    yield d / "specs"
    shutil.rmtree(d, ignore_errors=True)


@st.composite
def mutated(draw):
    """A reference spec or library after one to three of `fuzzing.mutate`'s edits (the same edits
    tools/fuzz.py and test_fuzz_corpus.py make, here run in process through the Python API)."""
    name = draw(st.sampled_from(sorted(SOURCES) + sorted(USERS)))
    text = SOURCES.get(name) or LIBS[name]
    rng = draw(st.randoms(use_true_random=False))
    for _ in range(draw(st.integers(1, 3))):
        text = fuzzing.mutate(rng, text)
    return name, text


def check_one(spec_dir: Path, name: str, text: str) -> str:
    if name in USERS:  # a library: replace it for one load of a spec that uses it
        path, root = spec_dir / name, spec_dir / USERS[name]
    else:
        path = root = spec_dir / f"_fuzz_{name}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        net = incdsl.load(root)
        net.report()
        net.expand()
        net.table()
        net.table(1)
        return "ok"
    except (SpecError, UsageError) as e:
        rendered = e.render() if isinstance(e, SpecError) else str(e)
        assert rendered.strip(), "an error must say something"
        assert "Traceback" not in rendered
        return "error"
    finally:
        if name in USERS:
            path.write_text(LIBS[name])
        else:
            path.unlink()


# A fixed seed keeps CI reproducible; INCDSL_FUZZ=N runs N random examples when hunting bugs.
FUZZ = int(os.environ.get("INCDSL_FUZZ", "0"))


@settings(max_examples=FUZZ or 80, deadline=None, derandomize=not FUZZ, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_mutated_specs_fail_cleanly(spec_dir, case):
    """80 mutants in the quick suite (~3 s of CPU); the full suite runs 200 more below."""
    name, text = case
    check_one(spec_dir, name, text)


@pytest.mark.slow
@settings(max_examples=FUZZ or 280, deadline=None, derandomize=not FUZZ, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_more_mutated_specs_fail_cleanly(spec_dir, case):
    """The quick test's mutants and 200 more (the quick suite ran 200 before issue 29's budget)."""
    name, text = case
    check_one(spec_dir, name, text)


@pytest.mark.parametrize("name", sorted(SOURCES) + sorted(USERS))
def test_unmutated_specs_load(spec_dir, name):
    """The fuzz harness itself: the copies of the real specs and libraries load from the temp dir."""
    assert check_one(spec_dir, name, SOURCES.get(name) or LIBS[name]) == "ok"


def test_harness_notices_a_crash(spec_dir, monkeypatch):
    """check_one lets anything but SpecError / UsageError through, so a front-end crash fails the test."""
    monkeypatch.setattr(incdsl.Network, "expand", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        check_one(spec_dir, "googlenet.inc", SOURCES["googlenet.inc"])


@pytest.mark.parametrize("text", [
    "", "\n\n", "#", "network", "network n", "network n(", "network n() {", "network n() { input }",
    "network n() { input 8x8x3 }", 'use "', 'use ""', "use \"specs\"\nnetwork n() { input 1x1x1 }",
    "network n() { input 8x8x3\n repeat -1 { relu } }", "network n(a=(1,2)) { input 8x8x3\n conv(a, 1) }",
    "network n(a=true) { input 8x8x3\n conv(-a, 1) }", "network n() { input 8x8x3\n conv(min(), 1) }",
    "network n() { input 8x8x3\n conv(int(1e300 * 1e300), 1) }", "network n() { input 8x8x3 -> relu }",
    "network n() { input(8, 8, 3.5) }", "network n() { input(8, 8, true) }",
    "network n() { input(8, 8, 3, 4) }",
    "network n() { input 8x8x3\n x = repeat 2 { } }", "network n() { input 8x8x3\n output o = identity }",
    "network n() { input 8x8x3\n train_output o = gap }", "network n() { input 8x8x3\n zeropad((1, 2, 3)) }",
    "network n() { input 8x8x3\n adaptive_avgpool(9) }", "network n() { input 8x8x3\n flatten -> flatten }",
    "network n() { input 8x8x3\n conv(3, 1, pad=\"\") }", "network n() { input 8x8x3\n add { } }",
    "network n() { input 8x8x3\n concat { gap\n relu } }", "network n() { input 8x8x3\n dropout(1) }",
    "network n() { input 8x8x3\n lrn(0) }", "network n() { input 8x8x3\n scale(1e400) }",
    "variant v(a=1)\nnetwork n() { input 8x8x3 }", "network n() { variant v(a=1)\n input 8x8x3 }",
    "module m() { }\nnetwork n() { input 8x8x3\n m() }",
    "module m() { output o = gap }\nnetwork n() { input 8x8x3\n m() }",
    "network n() { input 8x8x3\n defaults act(fn=relu)\n act() }", "network n() { input 8x8x3\n x = x }",
    "network n() { input 65536x65536x3\n conv(1048576, 65536) }",
    "network a() { input 1x1x1 }\nnetwork b() { input 1x1x1 }",
    "network n() { input 8x8x3\n repeat 3 as i { conv(i - 1, 1) } }",
    "network n() { input 8x8x3\n maxpool(3, pad=(1, 2, 3, 4), ceil=true) }",
])
def test_hand_picked_edge_cases(spec_dir, text):
    check_one(spec_dir, "edge.inc", text)


# Token soup: random sequences of the language's own words and symbols, mostly rejected by the
# parser, which exercises the syntax-error path (expected sets, bracket notes, hints) everywhere.
SOUP = fuzzing.TOKENS + ["network n()", "module m(a, b=2)", "{", "}", "conv(8, 3)", "x =", "output o =",
                         "1x1", "3.5",
                 "stride=2", "pad=same", "act=relu", "-> relu", "if a", "elif b", "repeat 2 as i", "\"s\"",
                         "use"]


@settings(max_examples=FUZZ or 150, deadline=2000, derandomize=not FUZZ, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.tuples(st.sampled_from(SOUP), st.sampled_from([" ", "\n", "", "\n\n  ", ";"])),
                      min_size=1, max_size=40))
def test_token_soup_fails_cleanly(spec_dir, parts):
    text = "".join(tok + sep for tok, sep in parts)
    check_one(spec_dir, "soup.inc", text)
    check_one(spec_dir, "soup.inc", "network n() {\n  input 8x8x3\n" + text + "\n}\n")
