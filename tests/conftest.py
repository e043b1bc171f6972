import importlib.util
import os
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

import nets
import suite_order


def _bytecode_caches() -> None:
    """Let this process, pytest-xdist's workers and the tests' `python -m incdsl` subprocesses keep
    Python's bytecode caches, under the venv (PYTHONPYCACHEPREFIX: nothing beside the sources).
    Where PYTHONDONTWRITEBYTECODE is set (this machine family sets it) in a venv that uv installed
    (uv compiles no bytecode), every process compiled TensorFlow, Keras and torch from source again:
    `import keras` took 18.7 s of CPU, 6.1 s with the caches (issue 29 item 4: the suite's time).
    A prefix the caller set is kept; outside a venv nothing changes."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or sys.prefix == sys.base_prefix:
        return
    prefix = os.environ.get("PYTHONPYCACHEPREFIX") or str(Path(sys.prefix) / "pycache")
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    sys.dont_write_bytecode = False
    sys.pycache_prefix = prefix  # read at each import: the imports from here on are cached


_bytecode_caches()  # before torchvision's import (pytest_configure below)

# JAX's persistent compilation cache for the whole suite: what tests/conftest.py sets here every
# later process inherits (xdist's workers, the tests' `python -m incdsl` subprocesses; freshvenv's
# venv_env passes it on), and JAX reads it when it is imported. XLA's compile of a train step is
# most of a short JAX run's CPU (`incdsl train` of small_bn on synthetic data: 25 s of CPU, 10.5 s
# with the cache warm), and the suite compiles the same programs again (a run and its --resume,
# the same spec in several tests, every later run of the suite). A hit runs the very executable a
# miss would compile (keyed by the program, the compile options and jaxlib's version): the trained
# weights are bit for bit the same. Under the venv, mode 0700 (the user's own, like incdsl's cache:
# a compiled program planted there would run); a folder the caller set is kept.
JAX_CACHE = {"JAX_COMPILATION_CACHE_DIR": str(Path(sys.prefix) / "jax-cache"),
             "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # default 1 s: a small net compiles faster
             "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
if sys.prefix != sys.base_prefix and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    try:
        os.makedirs(JAX_CACHE["JAX_COMPILATION_CACHE_DIR"], mode=0o700, exist_ok=True)
    except OSError:  # a read-only venv: the suite runs without the cache, as before
        pass
    else:
        for _k, _v in JAX_CACHE.items():
            os.environ.setdefault(_k, _v)

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def spec_file(tmp_path):
    """Write a spec into a temp dir and return its path: spec_file(text, name='t.inc')."""
    def make(text: str, name: str = "t.inc") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p
    return make


class CliResult(NamedTuple):
    """What one `incdsl` command line did: its exit code and what it wrote to stdout and stderr.
    A tuple, so `code, out, err = cli(...)` unpacks it."""
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        """stdout then stderr, for checks that do not care which stream a line went to."""
        return self.out + self.err

    @property
    def code_err(self) -> tuple[int, str]:
        """(exit code, stderr), for tests that compare both at once."""
        return self.code, self.err

    @property
    def code_output(self) -> tuple[int, str]:
        """(exit code, stdout then stderr)."""
        return self.code, self.output


class Cli:
    """Runs `incdsl.cli.main.main(argv)` in this process with pytest's capsys; arguments are
    turned into strings (paths welcome). argparse's own usage errors (SystemExit) come back as
    their exit code, like any other."""

    def __init__(self, capsys):
        self._capsys = capsys

    def __call__(self, *argv) -> CliResult:
        from incdsl.cli.main import main
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
        captured = self._capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    def ok(self, *argv) -> str:
        """Run a command that must succeed (exit code 0, else the test fails showing stderr);
        return its stdout."""
        code, out, err = self(*argv)
        assert code == 0, err
        return out


@pytest.fixture
def cli(capsys) -> Cli:
    """`cli(*argv)` -> CliResult(code, out, err); `cli.ok(*argv)` -> stdout of a command that
    must exit 0."""
    return Cli(capsys)


def _spec_fixture(text: str, name: str, doc: str):
    @pytest.fixture
    def fixture(tmp_path) -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p
    fixture.__doc__ = doc
    return fixture


plain_spec = _spec_fixture(nets.PLAIN, "t.inc",
                           "tmp_path/t.inc holding nets.PLAIN (8x8x3, one conv, softmax).")
plain_logits_spec = _spec_fixture(nets.PLAIN_LOGITS, "t.inc",
                                  "tmp_path/t.inc holding nets.PLAIN_LOGITS (PLAIN, no softmax).")
plain32_spec = _spec_fixture(nets.PLAIN32, "g.inc",
                             "tmp_path/g.inc holding nets.PLAIN32 (32x32x3, one conv).")
tiny_bn_spec = _spec_fixture(
    nets.TINY_BN,
    "tiny.inc",
    "tmp_path/tiny.inc holding nets.TINY_BN (16x16x3, BN convs, a concat, 3 classes).",
)
tiny_inception_spec = _spec_fixture(nets.TINY_INCEPTION, "tiny.inc",
                                    "tmp_path/tiny.inc holding nets.TINY_INCEPTION (googlenet's inception, "
                                    "width 0.25, 32x32, aux head).")


def _hands_tests_to_workers(config) -> bool:
    """True in pytest-xdist's controller (`-n 2`, not --collect-only): it imports no test module,
    the workers do (the conditions of xdist's own `_is_distribution_mode`)."""
    return (not hasattr(config, "workerinput") and not config.getoption("collectonly")
            and config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None)))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """torchvision must be imported before TensorFlow: the other way round, TF 2.21 and torchvision
    0.29 crash the process (segmentation fault in `import torchvision`). So every process that
    collects tests imports it first, before any test module; the reference tests compare against
    both. Not in xdist's controller, which runs no test: 3.4 s of CPU before the workers start
    (issue 29 item 4). The front-end tests need neither, so a checkout without the `refs` extra
    still runs them (and a reference test fails loudly on its own import)."""
    if not _hands_tests_to_workers(config) and importlib.util.find_spec("torchvision") is not None:
        import torchvision  # noqa: F401


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A test that drives a browser (the `browser` fixture: chromium through Selenium) is slow, as
    issue 29 has it: the quick suite (-m "not slow") leaves out browsers, fresh venvs and clusters,
    and the full suite runs them. Runs before pytest's own -m selection."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(specname="pytest_collection_modifyitems", trylast=True)
def pytest_collection_modifyitems_longest_first(items):
    """The files of the slowest tests first (tests/suite_order.py), so that under `pytest -n 2
    --dist worksteal` (tools/test) a 500-s test never starts last while the other worker sits idle.
    Runs after pytest's own reordering (trylast), whose order within a file it keeps."""
    rank = {nodeid: i for i, nodeid in enumerate(suite_order.longest_files_first([i.nodeid for i in items]))}
    items.sort(key=lambda item: rank[item.nodeid])


def pytest_sessionfinish(session, exitstatus):
    """Drop the garbage-collector callbacks libraries install (Hypothesis' timing, JAX's
    `_xla_gc_callback`) when the session ends: pytest-xdist (execnet) stops a worker with a
    KeyboardInterrupt delivered to its main thread, and when that lands inside such a callback
    Python reports it as an unraisable exception after the summary line."""
    import gc
    gc.callbacks.clear()
