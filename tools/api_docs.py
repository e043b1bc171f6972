#!/usr/bin/env python3
"""Build the API reference from the docstrings with pdoc, into out/docs/ (or --out DIR).

Every warning pdoc raises (a module that fails to import, a reference it cannot resolve, a bad
docstring) is printed and makes the exit code 1, so the test suite can keep the reference clean.
pdoc was chosen over Sphinx/mkdocs: it reads the package as it is (type hints and docstrings, no
configuration or .rst sources), renders Markdown docstrings, and builds in seconds.
Run: tools/docs   (or .venv/bin/python tools/api_docs.py --out DIR)
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# torchvision before TensorFlow (they crash the other way round); pdoc imports every backend
try:
    import torchvision  # noqa: F401
except ImportError:
    pass


def modules() -> list[str]:
    """The package and its public children: incdsl's `__all__` hides its submodules from pdoc's
    walk, so they are named here; pdoc walks the subpackages (backends, passes, ...) itself. A
    child whose name is also in `__all__` (explore: the function shadows its package) pdoc
    already finds from the package, and naming it twice is a warning."""
    import pkgutil

    import incdsl
    return ["incdsl"] + [f"incdsl.{m.name}" for m in pkgutil.iter_modules(incdsl.__path__)
                         if not m.name.startswith("_") and m.name not in incdsl.__all__]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "out" / "docs"), help="output folder")
    args = ap.parse_args()
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="markdown", footer_text="incdsl API reference")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules(), output_directory=Path(args.out))
    ours = [w for w in caught if "pdoc" in (w.filename or "") or "incdsl" in (w.filename or "")]
    for w in ours:
        print(f"{Path(w.filename).name}:{w.lineno}: {w.category.__name__}: {w.message}", file=sys.stderr)
    pages = sorted(p.relative_to(args.out) for p in Path(args.out).rglob("*.html"))
    print(f"wrote {len(pages)} pages to {args.out}" + (f"; {len(ours)} warnings" if ours else ""))
    return 1 if ours else 0


if __name__ == "__main__":
    from incdsl.backends.keras.quiet import (
        native_stderr_filtered,  # TensorFlow's start-up lines, as the CLI hides them
    )
    with native_stderr_filtered():
        code = main()
    sys.exit(code)
