"""The error corpus: every tests/errors/NAME.inc must fail `incdsl check` with exactly the text of
tests/errors/NAME.err on stderr (location, source line, caret, notes, hint) and exit code 1.

A case may start with directives in comments (lit style):
    # ARGS: check %s --set width=wide     the command line; %s is the case's own file
    # EXIT: 2                             the expected exit code (default 1)
The cases run with tests/errors as the working directory, so paths in messages are short.

To accept new messages after reviewing them:  UPDATE_GOLDEN=1 pytest tests/test_errors.py
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from incdsl import cli

HERE = Path(__file__).resolve().parent
ERRORS = HERE / "errors"
CASES = sorted(p.stem for p in ERRORS.glob("*.inc"))
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))


def directives(path: Path) -> tuple[list[str], int]:
    args, code = ["check", "%s"], 1
    for line in path.read_bytes().decode("latin-1").splitlines():
        if line.startswith("# ARGS:"):
            args = line.removeprefix("# ARGS:").split()
        elif line.startswith("# EXIT:"):
            code = int(line.removeprefix("# EXIT:"))
    return [a.replace("%s", path.name) for a in args], code


def run_case(name: str, capsys) -> tuple[int, str, str]:
    args, _ = directives(ERRORS / f"{name}.inc")
    cwd = os.getcwd()
    os.chdir(ERRORS)
    try:
        code = cli.main(args)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err


def test_corpus_is_not_empty():
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", CASES)
def test_error_message(name, capsys):
    _, want_code = directives(ERRORS / f"{name}.inc")
    code, out, err = run_case(name, capsys)
    golden = ERRORS / f"{name}.err"
    if UPDATE:
        golden.write_text(err)
    assert golden.exists(), f"no {golden.name}: run with UPDATE_GOLDEN=1 and review it"
    assert err == golden.read_text(), f"stderr differs from {golden.name}"
    assert code == want_code
    assert out == ""


def test_every_golden_has_a_case():
    orphans = sorted(p.name for p in ERRORS.glob("*.err") if p.stem not in CASES)
    assert not orphans


@pytest.mark.parametrize("name", CASES)
def test_messages_are_user_facing(name):
    """No Python or Lark jargon, one screen, and a location for anything in a spec."""
    text = (ERRORS / f"{name}.err").read_text()
    for jargon in ("Traceback", "__ANON", "RPAR", "LPAR", "RBRACE", "_SEP", "$END", "Token(", "Exception",
                   "NoneType", "KeyError", "ValueError", "TypeError", "<", "internal error"):
        assert jargon not in text, f"{jargon!r} leaks into the message"
    lines = text.splitlines()
    assert 1 <= len(lines) <= 12
    assert all(len(line) <= 160 for line in lines)
    _, code = directives(ERRORS / f"{name}.inc")
    if code == 1 and name not in ("missing_root_file", "directory_as_spec", "no_network"):
        assert lines[0].split(":")[1].isdigit(), "a spec error must say file:line:col"
        assert lines[2].strip(" |").startswith("^"), "and show a caret under the culprit"


@pytest.mark.parametrize("name", ["repeat_billion", "repeat_nested_too_many", "repeat_nested_empty_steps",
                                  "filters_billion", "number_literal_huge"])
def test_absurd_sizes_fail_fast(name, capsys):
    # CPU time, not wall time: the machine is shared. The limit is generous; these take milliseconds.
    t = time.process_time()
    code, _, err = run_case(name, capsys)
    assert code == 1 and "error:" in err
    assert time.process_time() - t < 1.0


def test_the_real_command_line():
    """One case through a real `incdsl` process: stderr, exit code, nothing on stdout."""
    p = subprocess.run([sys.executable, "-m", "incdsl", "check", "concat_spatial_mismatch.inc"],
                       cwd=ERRORS, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == (ERRORS / "concat_spatial_mismatch.err").read_text()


def test_no_grammar_terminal_name_can_leak():
    """Every terminal Lark may list as expected reads as words or quoted text, never RPAR or __ANON_0."""
    from incdsl.parse import _describe, parser
    for term in [t.name for t in parser().terminals] + ["$END"]:
        d = _describe(term)
        assert d != term and "__" not in d and not d.isupper(), (term, d)


def test_oversized_file_is_refused_before_parsing(tmp_path, capsys):
    from incdsl.parse import MAX_FILE_BYTES
    big = tmp_path / "big.inc"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    t = time.process_time()
    assert cli.main(["check", str(big)]) == 1
    assert time.process_time() - t < 1.0
    err = capsys.readouterr().err
    assert err == f"error: {big} is {MAX_FILE_BYTES + 1:,} bytes; specs are limited to {MAX_FILE_BYTES:,}\n"
