#!/usr/bin/env python3
"""Long fuzz runs through the command line's `main` and the language server:
- specs: the fuzzer of tests/fuzzing.py (mutations of specs/ and tests/errors/, random expressions,
  token soup) through check, summary and expand;
- files: mutated .keras, .weights.h5, .pth, .safetensors and ONNX files (tests/fuzzing_files.py)
  through `compile --to onnx --weights` and `import`; a `leak` is an output holding the bytes of
  the secret file that mutations point HDF5 external storage and links at;
- lsp: malformed frames and mutated messages to one `incdsl lsp` process (tests/fuzzing_lsp.py),
  which must answer a request after each.

Run: .venv/bin/python tools/fuzz.py [--minutes 10] [--seed 1] [--bound 5] [--targets specs,files,lsp]
     [--out fuzz-findings]

Prints, per target, inputs tried, clean errors, internal errors, hangs and leaks, and the peak
memory of this process and of the server; every finding is saved to --out (the input and a .txt
saying what happened), to become a test. Exit 1 when anything was found.
"""
from __future__ import annotations

import argparse
import os
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

SOUP = fuzzing.TOKENS + ["network n()", "module m(a, b=2)", "{", "}", "conv(8, 3)", "x =", "output o =",
                         "1x1",
                         "3.5", "stride=2", "pad=same", "act=relu", "-> relu", "if a", "elif b",
                         "repeat 2 as i",
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
    ap.add_argument("--targets", default="specs", help="comma-separated: specs, files, lsp (default specs); "
                    "the time is shared equally")
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    if set(targets) - {"specs", "files", "lsp"}:
        ap.error(f"--targets takes specs, files and lsp; got {args.targets}")
    codes = []
    for k, target in enumerate(targets):
        minutes = args.minutes / len(targets)
        run = {"specs": fuzz_specs, "files": fuzz_files, "lsp": fuzz_lsp}[target]
        codes.append(run(args, minutes, random.Random(args.seed + k)))
    print(f"peak memory: this process {_hwm('self') / 2**20:,.0f} MiB (VmHWM; Keras, JAX and torch loaded "
          f"in it), "
          f"the language server {LSP_PEAK[0] / 2**20:,.0f} MiB")
    return max(codes)


LSP_PEAK = [0]


def _hwm(pid) -> int:
    """Peak resident memory (VmHWM) of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        return 1024 * int(next(l for l in f if l.startswith("VmHWM:")).split()[1])


def _finding(out: Path, kind: str, n: int, suffix: str, data: bytes, what: str) -> None:
    out.mkdir(exist_ok=True)
    stem = f"{kind}_{n:03d}"
    (out / f"{stem}{suffix}").write_bytes(data)
    (out / f"{stem}.txt").write_text(what + "\n")
    print(f"{kind}: {out / stem}{suffix} ({what.splitlines()[0] if what else ''})", flush=True)


def _report(target: str, tally: Counter, minutes: float, seed: int, extra: str = "") -> int:
    print(f"{target}: inputs tried {tally['inputs']:,}: ok {tally['ok']:,}, clean errors {tally['error']:,}, "
          f"internal errors {tally['internal']:,}, hangs {tally['hang']:,}, leaks {tally['leak']:,}{extra}; "
          f"{minutes:g} min, seed {seed}", flush=True)
    return 1 if tally["internal"] or tally["hang"] or tally["leak"] else 0


def fuzz_files(args, minutes: float, rng: random.Random) -> int:
    """Mutated weights and model files, read by compile --weights and import."""
    import fuzzing_files

    tally: Counter = Counter()
    with tempfile.TemporaryDirectory(prefix="incdsl-fuzz-files-") as d:
        seeds = fuzzing_files.make_seeds(Path(d))
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end:
            suffix, data = fuzzing_files.mutant(rng, seeds)
            res = fuzzing_files.run_file(seeds, suffix, data, args.bound, rng)
            tally["inputs"] += 1
            tally[res.kind] += 1
            tally[f"inputs{suffix}"] += 1
            if res.kind in ("internal", "hang", "leak"):
                _finding(Path(args.out), res.kind, tally[res.kind], suffix, data, res.err)
    kinds = ", ".join(f"{k[6:]} {v:,}" for k, v in sorted(tally.items()) if k.startswith("inputs."))
    return _report("files", tally, minutes, args.seed, f" ({kinds})")


def fuzz_lsp(args, minutes: float, rng: random.Random) -> int:
    """Hostile messages to one language server, which must answer after each."""
    import fuzzing
    import fuzzing_lsp

    tally: Counter = Counter()
    corpus = list(fuzzing.corpus().values())
    with tempfile.TemporaryDirectory(prefix="incdsl-fuzz-lsp-") as d:
        ws = Path(d)
        (ws / "lib.inc").write_text("module m() {\n  conv(4, 3)\n}\n")
        os.mkfifo(ws / "fifo.inc")
        server = fuzzing_lsp.Server(ws)
        end = time.monotonic() + minutes * 60
        try:
            while time.monotonic() < end:
                raw = fuzzing_lsp.message(rng, corpus, ws)
                tally["inputs"] += 1
                sent = server.send(raw)
                if sent and server.alive(args.bound * 6):
                    tally["ok"] += 1
                    if tally["inputs"] % 100 == 0:
                        LSP_PEAK[0] = max(LSP_PEAK[0], server.peak())
                    continue
                kind = "internal" if server.p.poll() is not None or not sent else "hang"
                tally[kind] += 1
                _finding(Path(args.out), kind, tally[kind], ".lsp", raw,
                         f"lsp: the server {'exited' if kind == 'internal' else 'stopped answering'}")
                server.close()
                server = fuzzing_lsp.Server(ws)
        finally:
            LSP_PEAK[0] = max(LSP_PEAK[0], server.peak())
            server.close()
    return _report("lsp", tally, minutes, args.seed)


def fuzz_specs(args, minutes: float, rng: random.Random) -> int:
    """The spec fuzzer (tests/fuzzing.py) through check, summary --json and expand."""

    corpus = fuzzing.corpus()
    names = sorted(corpus)
    out = Path(args.out)
    tally: Counter = Counter()
    slowest = (0.0, "")
    end = time.monotonic() + minutes * 60
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
                print(f"{res.kind}: {out / stem}.inc ({res.err.splitlines()[0] if res.err else ''})",
                      flush=True)
            if tally["inputs"] % 1000 == 0:
                print(f"... {tally['inputs']:,} inputs", file=sys.stderr, flush=True)
    return _report("specs", tally, minutes, args.seed, f"; slowest {slowest[0]:.2f} s ({slowest[1]})")


if __name__ == "__main__":
    sys.exit(main())
