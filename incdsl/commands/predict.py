"""`incdsl predict`: not built yet (see the open issue)."""
from __future__ import annotations

from ..errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="(not built yet)")
    p.add_argument("rest", nargs="*")
    p.set_defaults(run=run)


def run(args) -> int:
    raise UsageError("'predict' is not built yet")
