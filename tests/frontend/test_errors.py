"""The error corpus: every tests/errors/NAME.inc holds a spec that must fail, the command to run on
it and, in `# CHECK:` lines, exactly what that command prints on stderr (location, source line,
caret, notes, hint), as xDSL's and LLVM's filecheck tests do. Directives, in comments:
    # ARGS: check %s --set width=wide     the command line; %s is the case's own file (default: check %s)
    # EXIT: 2                             the expected exit code (default 1)
    # CHECK: text                         one expected line of stderr ("# CHECK:" alone: an empty line)
    # NO-LOCATION: why                    the error is about the file or command, not a place in it
    # FAST: why                           refused in well under a second of CPU (absurd sizes)
The cases run with tests/errors as the working directory, so paths in messages are short. The
expected lines sit below the spec, so they never move the line numbers they quote (a case about
the end of the file keeps them above instead).

To accept new messages after reviewing them:  UPDATE_GOLDEN=1 pytest tests/frontend/test_errors.py
"""
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from incdsl.cli import main as cli

HERE = Path(__file__).resolve().parents[1]
ERRORS = HERE / "errors"
CASES = sorted(p.stem for p in ERRORS.glob("*.inc"))
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
MARK = "# ---- expected: stderr of the command above, line for line ----"
CHECK = "# CHECK:"


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    exit: int
    expected: str | None  # None: no CHECK lines yet
    located: bool
    fast: bool


def read_case(name: str) -> Case:
    path = ERRORS / f"{name}.inc"
    args, code, checks, located, fast = ["check", "%s"], 1, [], True, False
    # latin-1 reads every byte: some cases are deliberately not UTF-8
    for line in path.read_bytes().decode("latin-1").split("\n"):
        if line.startswith("# ARGS:"):
            args = line.removeprefix("# ARGS:").split()
        elif line.startswith("# EXIT:"):
            code = int(line.removeprefix("# EXIT:"))
        elif line.startswith(CHECK):
            checks.append(line.removeprefix(CHECK).removeprefix(" "))
        elif line.startswith("# NO-LOCATION:"):
            located = False
        elif line.startswith("# FAST:"):
            fast = True
    expected = "".join(c + "\n" for c in checks).encode("latin-1").decode("utf-8") if checks else None
    return Case(name, [a.replace("%s", path.name) for a in args], code, expected, located, fast)


def write_expected(name: str, err: str) -> None:
    """UPDATE_GOLDEN: replace the case's CHECK lines (at the end) with `err`."""
    path = ERRORS / f"{name}.inc"
    data = path.read_bytes()
    block = ("\n".join([MARK] + [f"{CHECK} {line}" if line else CHECK for line in err.split("\n")[:-1]])
             + "\n").encode()
    if data.startswith(MARK.encode()):  # a case about the end of the file keeps its lines on top
        lines = data.split(b"\n")
        rest = next(i for i, line in enumerate(lines[1:], 1) if not line.startswith(CHECK.encode()))
        path.write_bytes(block + b"\n".join(lines[rest:]))
        return
    cut = data.find(MARK.encode())
    body = data[:cut] if cut >= 0 else data + (b"" if data.endswith(b"\n") else b"\n")
    path.write_bytes(body + block)


def run_case(name: str, capsys) -> tuple[int, str, str]:
    case = read_case(name)
    cwd = os.getcwd()
    os.chdir(ERRORS)
    try:
        code = cli.main(case.args)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err


def test_corpus_is_not_empty():
    assert len(CASES) >= 60
    assert sum(read_case(c).fast for c in CASES) >= 5
    assert sum(not read_case(c).located for c in CASES) >= 3


@pytest.mark.parametrize("name", CASES)
def test_error_message(name, capsys):
    code, out, err = run_case(name, capsys)
    if UPDATE:
        write_expected(name, err)
    case = read_case(name)
    assert case.expected is not None, (
        f"{name}.inc has no CHECK lines: run with UPDATE_GOLDEN=1 and review them"
    )
    assert err == case.expected, f"stderr differs from the CHECK lines of {name}.inc"
    assert code == case.exit
    assert out == ""


@pytest.mark.parametrize("name", CASES)
def test_messages_are_user_facing(name):
    """No Python or Lark jargon, one screen, and a location for anything in a spec."""
    case = read_case(name)
    text = case.expected or ""
    for jargon in ("Traceback", "__ANON", "RPAR", "LPAR", "RBRACE", "_SEP", "$END", "Token(", "Exception",
                   "NoneType", "KeyError", "ValueError", "TypeError", "<", "internal error"):
        assert jargon not in text, f"{jargon!r} leaks into the message"
    lines = text.splitlines()
    assert 1 <= len(lines) <= 12
    assert all(len(line) <= 160 for line in lines)
    if case.exit == 1 and case.located:
        assert lines[0].split(":")[1].isdigit(), "a spec error must say file:line:col"
        assert lines[2].strip(" |").startswith("^"), "and show a caret under the culprit"


@pytest.mark.parametrize("name", [c for c in CASES if read_case(c).fast])
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
    assert p.stderr == read_case("concat_spatial_mismatch").expected


def test_no_grammar_terminal_name_can_leak():
    """Every terminal Lark may list as expected reads as words or quoted text, never RPAR or __ANON_0."""
    from incdsl.frontend.grammar import parser
    from incdsl.frontend.syntax_errors import describe_terminal as _describe
    for term in [t.name for t in parser().terminals] + ["$END"]:
        d = _describe(term)
        assert d != term and "__" not in d and not d.isupper(), (term, d)


def test_oversized_file_is_refused_before_parsing(tmp_path, capsys):
    from incdsl.frontend.program import MAX_FILE_BYTES
    big = tmp_path / "big.inc"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    t = time.process_time()
    assert cli.main(["check", str(big)]) == 1
    assert time.process_time() - t < 1.0
    err = capsys.readouterr().err
    assert err == f"error: {big} is {MAX_FILE_BYTES + 1:,} bytes; specs are limited to {MAX_FILE_BYTES:,}\n"


# The names the review listed (Keras and PyTorch layers), each with the op it should point at.
FOREIGN_LAYERS = {
    "Conv2D": "conv(", "SeparableConv2D": "sepconv(", "DepthwiseConv2D": "dwconv(",
    "MaxPooling2D": "maxpool(",
    "AveragePooling2D": "avgpool(", "GlobalAveragePooling2D": "gap", "BatchNormalization": "bn",
    "Dense": "'dense'", "Dropout": "'dropout'", "Concatenate": "concat {", "Add": "'add'",
    "Multiply": "'multiply'",
    "Conv2d": "conv(", "MaxPool2d": "maxpool(", "AvgPool2d": "avgpool(",
    "AdaptiveAvgPool2d": "adaptive_avgpool(",
    "BatchNorm2d": "bn", "Linear": "dense(", "ReLU": "'relu'", "stochastic_depth": "drop_path(",
    "ChannelShuffle": "channel_shuffle(", "shuffle": "channel_shuffle(",
}


@pytest.mark.parametrize("name", FOREIGN_LAYERS)
def test_foreign_layer_names_get_our_op(name, tmp_path):
    from incdsl import SpecError, load
    spec = tmp_path / "t.inc"
    spec.write_text(f"network n {{\n  input 8x8x8\n  {name}(2)\n}}\n")
    with pytest.raises(SpecError) as e:
        load(spec)
    assert e.value.hint and FOREIGN_LAYERS[name] in e.value.hint, e.value.hint
