"""Keep it that way (issue 12): mutations of the reference specs and of the error corpus, and
random expressions, through the command line's `main`, within a fixed budget. Fails on any
internal error (exit 3, an escaped exception, a traceback) and on any run over the time bound.
tools/fuzz.py runs the same fuzzer for as long as you like."""
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzing

CORPUS = fuzzing.corpus()
BOUND = 5.0  # CPU seconds per command: the largest reference spec takes about 0.05
FUZZ = int(os.environ.get("INCDSL_FUZZ", "0"))  # INCDSL_FUZZ=N: N random examples instead of the fixed ones


@pytest.fixture(scope="module")
def ws():
    with tempfile.TemporaryDirectory(prefix="incdsl-fuzz-") as d:
        yield fuzzing.workspace(Path(d))


def _check(ws, name, text):
    path = fuzzing.write_case(ws, name, text)
    try:
        out = fuzzing.run(path, BOUND)
    finally:
        path.unlink()
    assert out.kind in ("ok",
                        "error"), f"{out.kind} on a mutation of {name}:\n{out.err}\n--- input:\n{text[:3000]}"


SETTINGS = dict(deadline=None, derandomize=not FUZZ, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


@settings(max_examples=FUZZ or 120, **SETTINGS)
@given(name=st.sampled_from(sorted(CORPUS)), rng=st.randoms(use_true_random=False), edits=st.integers(1, 4))
def test_mutated_corpus_fails_cleanly(ws, name, rng, edits):
    text = CORPUS[name]
    for _ in range(edits):
        text = fuzzing.mutate(rng, text)
    _check(ws, name, text)


@settings(max_examples=FUZZ or 150, **SETTINGS)
@given(rng=st.randoms(use_true_random=False))
def test_random_expressions_fail_cleanly(ws, rng):
    _check(ws, "errors/expr.inc", fuzzing.expression_spec(rng))


def test_the_fuzzer_reports_internal_errors_and_hangs(ws, monkeypatch):
    """The harness itself: a crash and a hang in the front end are findings, not passes."""
    import incdsl.network
    path = fuzzing.write_case(ws, "specs/googlenet.inc", CORPUS["specs/googlenet.inc"])
    assert fuzzing.run(path, BOUND).kind == "ok"
    monkeypatch.setattr(incdsl.network.Network, "expand", lambda self: 1 / 0)
    assert fuzzing.run(path, BOUND).kind == "internal"

    def spin(self):
        while True:
            pass
    monkeypatch.setattr(incdsl.network.Network, "expand", spin)
    assert fuzzing.run(path, 0.3).kind == "hang"
    path.unlink()


def test_reference_specs_run_unmutated_from_the_workspace(ws):
    for name, text in CORPUS.items():
        if name.startswith("specs/") and not name.startswith("specs/lib/"):
            path = fuzzing.write_case(ws, name, text)
            assert fuzzing.run(path, BOUND).kind == "ok", name
            path.unlink()
