"""tests/suite_order.py, the order the full suite runs in on two workers (issue 29 item 4): its
table names tests that exist, and the files of the longest ones come first, each file's tests
together in their order."""
from __future__ import annotations

import re

from conftest import ROOT
from suite_order import SLOWEST, file_of, longest_files_first


def test_each_slowest_test_still_exists():
    for nodeid in SLOWEST:
        path = ROOT / file_of(nodeid)
        assert path.is_file(), nodeid
        name = re.sub(r"\[.*\]$", "", nodeid.split("::")[-1])
        assert re.search(rf"^def {re.escape(name)}\(", path.read_text(), re.M), nodeid


def test_files_of_the_longest_tests_go_first_each_file_kept_in_order():
    ids = ["tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t1", "tests/c.py::t1[x]", "tests/b.py::t2",
           "tests/c.py::t1[y]", "tests/d.py::t1"]
    slowest = {"tests/b.py::t2": 50, "tests/c.py::t1[y]": 300, "tests/zz.py::gone": 900}
    assert longest_files_first(ids, slowest) == [
        "tests/c.py::t1[x]", "tests/c.py::t1[y]", "tests/b.py::t1", "tests/b.py::t2", "tests/a.py::t1",
        "tests/a.py::t2", "tests/d.py::t1"]
    assert longest_files_first(ids, {}) == ids
