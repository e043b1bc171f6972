"""The fuzzer shared by tests/frontend/test_fuzz_corpus.py (a fixed budget in the suite) and tools/fuzz.py
(long runs): inputs from mutating the reference specs and the error corpus (tests/errors), and
random expressions; each runs through the command line's own entry point (`incdsl.cli.main.main`, as
`check`, `summary --json` and `expand`) under a time bound.

A run is fine when it exits 0, 1 or 2 with no "internal error" and no traceback. Anything else is
a finding: `internal` (exit 3, or an exception that escaped `main`), or `hang` (over the bound).
"""
from __future__ import annotations

import contextlib
import io
import random
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
ERRORS = ROOT / "tests" / "errors"

NUMBERS = ["0", "-1", "1", "2", "3.5", "0.0", "-0.5", "1e30", "1e-30", "65536", "65537", "1000000",
           "2147483648",
           "99999999999999999999999", "1x1", "0x0", "3x", "1x2x3x4", "224x224x0", "1024", "\u0661", "1_0"]
TOKENS = ["(", ")", "{", "}", "->", ",", "=", "==", '"', "#", "\n", ";", "x", "0", "-", "*", "/", "//", "%",
          "concat", "add", "identity", "repeat 3", "repeat 0", "if", "else", "elif", "let", "input 8x8x3",
          "input", "output", "train_output", 'use "googlenet.inc"', 'use "nothere.inc"', 'use "lib"',
          'use "."',
          "module", "network", "defaults", "variant", "true", "false", "none", "gap", "flatten",
          "dense(3)", "conv(0, 1)", "maxpool(99)", "maxpool(3, pad=5)", "avgpool(2, pad=(9, 9, 9, 9))",
          "as i", "not", "and", "or", "\t", "\u00a0", "\u201c", "\x00", "int(", "1e999", "min()", "min(1)",
          "max(2.5)", "max(1, true)", "relu", "softmax", "add { identity }", "concat { }", "dense(1000000)",
          "flatten -> dense(100000)", "bn(eps=0)", "\ufeff", "\r", "\x0c", "\u2028"]
WORDS = ["x", "conv", "width", "classes", "size", "inception", "stem", "input", "aux", "i", "b1", "k5",
         "relu",
         "nothere", "repeat", "true", "none", "gap", "add", "concat", "q" * 5000]
FUNCS = ["int", "float", "round", "floor", "ceil", "abs", "min", "max", "nothere"]


def corpus() -> dict[str, str]:
    """name -> text of every reference spec, library and error-corpus spec."""
    out = {f"specs/{p.relative_to(SPECS)}": p.read_text() for p in sorted(SPECS.rglob("*.inc"))}
    out |= {f"errors/{p.relative_to(ERRORS)}": p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(ERRORS.rglob("*.inc"))}
    return out


def mutate(rng: random.Random, text: str) -> str:
    """One random edit: delete, duplicate or swap lines; change a number; delete characters;
    insert a token or character; rename an identifier (once or everywhere)."""
    lines = text.split("\n")
    kind = rng.choice(["delete_line", "duplicate_line", "swap_lines", "number", "number", "delete_chars",
                       "insert_token", "insert_token", "insert_char", "rename", "rename", "repeat_line"])
    if kind in ("delete_line", "duplicate_line", "swap_lines", "repeat_line"):
        i = rng.randrange(len(lines))
        if kind == "delete_line":
            del lines[i]
        elif kind == "duplicate_line":
            lines.insert(i, lines[i])
        elif kind == "repeat_line":
            lines[i:i] = [lines[i]] * rng.choice([10, 100, 1000])
        else:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    if kind == "number":
        spots = [m.span() for m in re.finditer(r"\d+(\.\d+)?(x\d+)*", text)]
        if not spots:
            return text
        a, b = rng.choice(spots)
        new = rng.choice(NUMBERS) if rng.random() < 0.7 else str(rng.randint(-10, 10**7))
        return text[:a] + new + text[b:]
    if kind == "delete_chars":
        a = rng.randrange(max(len(text), 1))
        return text[:a] + text[a + rng.randint(1, 8):]
    a = rng.randint(0, len(text))
    if kind == "insert_token":
        tok = rng.choice(TOKENS)
        return text[:a] + (f" {tok} " if rng.random() < 0.5 else tok) + text[a:]
    if kind == "insert_char":
        return text[:a] + chr(rng.choice([rng.randint(0, 127), rng.randint(128, 0x2FFF)])) + text[a:]
    spots = list(re.finditer(r"[A-Za-z_]\w*", text))
    if not spots:
        return text
    m = rng.choice(spots)
    new = rng.choice(WORDS + sorted({s.group() for s in spots[:200]}))
    if rng.random() < 0.5:
        return re.sub(rf"\b{re.escape(m.group())}\b", new, text)
    return text[:m.start()] + new + text[m.end():]


def expression(rng: random.Random, depth: int = 0) -> str:
    """A random expression of the spec language (and some near misses)."""
    if depth > 4 or rng.random() < 0.3:
        return rng.choice(["1", "0", "2", "3.5", "-1", "1e300", "0.0", "true", "false", "none", "width",
                           "classes",
                           "nothere", "same", "relu", "3x3", "(1, 2)", '"s"', "1e-300", "99999999999999999"])
    kind = rng.choice(["bin", "bin", "cmp", "bool", "not", "neg", "func", "paren", "tuple"])
    e = lambda: expression(rng, depth + 1)
    if kind == "bin":
        return f"{e()} {rng.choice(['+', '-', '*', '/', '//', '%'])} {e()}"
    if kind == "cmp":
        return f"{e()} {rng.choice(['==', '!=', '<', '<=', '>', '>='])} {e()}"
    if kind == "bool":
        return f"{e()} {rng.choice(['and', 'or'])} {e()}"
    if kind == "not":
        return f"not {e()}"
    if kind == "neg":
        return f"-{e()}"
    if kind == "func":
        return f"{rng.choice(FUNCS)}({', '.join(e() for _ in range(rng.randint(0, 3)))})"
    if kind == "paren":
        return f"({e()})"
    return f"({', '.join(e() for _ in range(rng.randint(1, 4)))})"


def expression_spec(rng: random.Random) -> str:
    """A network that uses a random expression where arguments, `let`, `if` and `repeat` take one."""
    x = expression(rng)
    where = rng.choice(["filters", "kernel", "stride", "let", "if", "repeat", "dense", "param", "pad", "act"])
    body = {
        "filters": f"conv({x}, 1)", "kernel": f"conv(8, {x})", "stride": f"maxpool(2, stride={x})",
        "let": f"let c = {x}\n  conv(c, 1)", "if": f"if {x} {{ relu }} else {{ identity }}",
        "repeat": f"repeat {x} {{ relu }}", "dense": f"gap -> dense({x})", "param": "conv(width, 1)",
        "pad": f"avgpool(3, pad={x})", "act": f"conv(8, 1, act={x})",
    }[where]
    params = f"width={x}" if where == "param" else "width=8, classes=10"
    return f"network n({params}) {{\n  input 16x16x3\n  {body}\n}}\n"


class Hang(BaseException):  # not an Exception: `main` must not catch it as an internal error
    pass


@dataclass
class Outcome:
    code: int | None  # exit code; None when an exception escaped main
    seconds: float
    err: str
    kind: str  # "ok", "error" (a clean error), "internal", "hang"


def _alarm(signum, frame):
    raise Hang()


# Diagnosis is linear in the input, at about 3 CPU seconds per MB of dense expressions (Lark's
# per-token cost): a run may take `bound` plus this much per MB of input before it is a hang.
SECONDS_PER_MB = 8.0


def run(path: Path, bound: float, commands=(("check",), ("summary", "--json"), ("expand",))) -> Outcome:
    """Run incdsl's `main` on `path` for each command; the first finding, else the last outcome.
    A command is a hang past `bound` CPU seconds plus SECONDS_PER_MB for each MB of the file."""
    bound = bound + SECONDS_PER_MB * path.stat().st_size / 1e6
    last = Outcome(0, 0.0, "", "ok")
    for cmd in commands:
        last = run_argv([*cmd[:1], str(path), *cmd[1:]], bound, " ".join(cmd))
        if last.kind in ("hang", "internal") or last.code != 0:
            break  # a finding, or an error the other commands would repeat
    return last


def run_argv(argv: list[str], bound: float, label: str = "") -> Outcome:
    """Run incdsl's `main(argv)` once under a CPU-time bound of `bound` seconds (see `run`)."""
    from incdsl.cli.main import main
    cmd = label or " ".join(argv[:1])
    err, out = io.StringIO(), io.StringIO()
    # a CPU-time alarm (ITIMER_VIRTUAL), not a wall clock: a loaded machine must not make hangs
    old = signal.signal(signal.SIGVTALRM, _alarm)
    signal.setitimer(signal.ITIMER_VIRTUAL, bound * 2)  # a real hang is stopped; over `bound` is reported
    t = time.process_time()
    code = None
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
    except Hang:
        pass
    except BaseException as e:  # noqa: BLE001 - anything escaping main is the finding
        err.write(f"escaped main: {type(e).__name__}: {e}")
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, old)
    seconds = time.process_time() - t
    text = err.getvalue()
    if seconds > bound or (code is None and not text):
        return Outcome(code, seconds, f"{cmd}: {seconds:.1f} s, over the bound of {bound:.1f} s", "hang")
    if code not in (0, 1, 2) or "internal error" in text or "Traceback" in text:
        return Outcome(code, seconds, f"{cmd}: {text}", "internal")
    return Outcome(code, seconds, text, "ok" if code == 0 else "error")


def workspace(tmp: Path) -> Path:
    """A copy of specs/ and tests/errors/ under `tmp`, so `use` paths resolve for mutated files."""
    shutil.copytree(SPECS, tmp / "specs")
    shutil.copytree(ERRORS, tmp / "errors")
    return tmp


def write_case(ws: Path, name: str, text: str) -> Path:
    """Write a mutated file beside its original (a library replaces the real one: restore it)."""
    path = ws / Path(name).parent / f"_fuzz_{Path(name).name}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path
