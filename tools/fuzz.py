#!/usr/bin/env python3
"""Long fuzz runs of the front end through the command line's `main` (the fuzzer of
tests/fuzzing.py: mutations of specs/ and tests/errors/, random expressions, token soup).

Run: .venv/bin/python tools/fuzz.py [--minutes 10] [--seed 1] [--bound 5] [--out fuzz-findings]

Prints inputs tried, clean errors, internal errors and hangs; every finding is saved to --out as
NAME.inc with NAME.txt (what happened), to become a test. Exit 1 when anything was found.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import fuzzing  # noqa: E402

SOUP = fuzzing.TOKENS + ["network n()", "module m(a, b=2)", "{", "}", "conv(8, 3)", "x =", "output o =", "1x1",
                         "3.5", "stride=2", "pad=same", "act=relu", "-> relu", "if a", "elif b", "repeat 2 as i",
                         '"s"', "use"]


def soup(rng: random.Random) -> str:
    parts = [rng.choice(SOUP) + rng.choice([" ", "\n", "", "\n\n  ", ";"]) for _ in range(rng.randint(1, 40))]
    text = "".join(parts)
    return text if rng.random() < 0.5 else "network n() {\n  input 8x8x3\n" + text + "\n}\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bound", type=float, default=5.0, help="CPU seconds a command may take (default 5)")
    ap.add_argument("--out", default="fuzz-findings", help="folder for findings (default fuzz-findings)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    corpus = fuzzing.corpus()
    names = sorted(corpus)
    out = Path(args.out)
    tally: Counter = Counter()
    slowest = (0.0, "")
    end = time.monotonic() + args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="incdsl-fuzz-") as d:
        ws = fuzzing.workspace(Path(d))
        while time.monotonic() < end:
            pick = rng.random()
            if pick < 0.6:
                name = rng.choice(names)
                text = corpus[name]
                for _ in range(rng.randint(1, 4)):
                    text = fuzzing.mutate(rng, text)
            elif pick < 0.85:
                name, text = "errors/expr.inc", fuzzing.expression_spec(rng)
            else:
                name, text = "errors/soup.inc", soup(rng)
            path = fuzzing.write_case(ws, name, text)
            try:
                res = fuzzing.run(path, args.bound)
            finally:
                path.unlink(missing_ok=True)
            tally["inputs"] += 1
            tally[res.kind] += 1
            if res.seconds > slowest[0]:
                slowest = (res.seconds, name)
            if res.kind in ("internal", "hang"):
                out.mkdir(exist_ok=True)
                stem = f"{res.kind}_{tally[res.kind]:03d}"
                (out / f"{stem}.inc").write_text(text, encoding="utf-8", errors="surrogatepass")
                (out / f"{stem}.txt").write_text(f"from {name}\n{res.err}\n")
                print(f"{res.kind}: {out / stem}.inc ({res.err.splitlines()[0] if res.err else ''})", flush=True)
            if tally["inputs"] % 1000 == 0:
                print(f"... {tally['inputs']:,} inputs", file=sys.stderr, flush=True)
    print(f"inputs tried {tally['inputs']:,}: ok {tally['ok']:,}, clean errors {tally['error']:,}, "
          f"internal errors {tally['internal']:,}, hangs (over {args.bound:g} s) {tally['hang']:,}; "
          f"slowest {slowest[0]:.2f} s ({slowest[1]}); {args.minutes:g} min, seed {args.seed}")
    return 1 if tally["internal"] or tally["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
