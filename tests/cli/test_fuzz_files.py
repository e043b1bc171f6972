"""A fixed budget of the file and language-server fuzzers (tests/fuzzing_files.py,
tests/fuzzing_lsp.py; long runs: tools/fuzz.py --targets files,lsp): mutated .keras, .weights.h5,
.pth, .safetensors and ONNX files give clean errors, never an internal error, a hang or an output
holding a file they point at; the server answers after every hostile message."""
import os
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fuzzing  # noqa: E402
import fuzzing_files  # noqa: E402
import fuzzing_lsp  # noqa: E402


@pytest.mark.slow  # builds the seeds with Keras and torch, then 60 reads: about a minute
def test_mutated_weights_and_model_files_fail_cleanly(tmp_path):
    rng = random.Random(3)
    seeds = fuzzing_files.make_seeds(tmp_path / "seeds")
    kinds = {}
    for _ in range(60):
        suffix, data = fuzzing_files.mutant(rng, seeds)
        res = fuzzing_files.run_file(seeds, suffix, data, 10.0, rng)
        assert res.kind in ("ok", "error"), (suffix, res.err[-3000:])
        kinds[suffix] = kinds.get(suffix, 0) + 1
    assert set(kinds) == {".keras", ".weights.h5", ".pth", ".safetensors", ".onnx"}


@pytest.mark.slow  # one server, 150 hostile messages
def test_the_language_server_answers_after_every_hostile_message(tmp_path):
    rng = random.Random(5)
    corpus = list(fuzzing.corpus().values())
    os.mkfifo(tmp_path / "fifo.inc")
    server = fuzzing_lsp.Server(tmp_path)
    try:
        for _ in range(150):
            raw = fuzzing_lsp.message(rng, corpus, tmp_path)
            assert server.send(raw) and server.alive(60), raw[:300]
    finally:
        server.close()
