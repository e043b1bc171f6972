"""`incdsl fmt SPEC... [--check]`: rewrite specs in the canonical layout (see incdsl/editor/fmt.py)."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from ...errors import SpecError, UsageError


def add_parser(sub) -> None:
    """Add `incdsl fmt SPEC... [--check]` and its options to `sub` (the argparse subparsers of
    `cli.build_parser`); its handler is `run`."""
    p = sub.add_parser("fmt", help="rewrite specs in the one canonical layout",
                       description="Rewrite .inc files in the canonical layout (indentation, spacing, "
                       "line breaks in long chains, aligned trailing comments), keeping every comment. "
                       "A file that does not parse is refused; a file is only written when the new text "
                       "parses back to the same program.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help=".inc files")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl fmt SPEC... [--check]` with the parsed command line `args`; returns the exit code (0 when
    fine).

    Returns 1 when a spec has an error, would be reformatted under `--check`, or cannot be written (that file
    is left whole; the others are still formatted), else 0.
    """
    from ...editor.fmt import format_text
    from ...frontend.program import read_source
    from ...io import atomic_path

    status = 0
    for name in args.specs:
        try:
            text = read_source(Path(name))
            new = format_text(text, name)
        except SpecError as e:
            print(e.render(), file=sys.stderr)
            status = 1
            continue
        if new == text:
            continue
        if args.check:
            print(f"{name}: would reformat", file=sys.stderr)
            status = 1
        else:
            st = os.stat(name)
            mode = stat.S_IMODE(st.st_mode)
            try:  # a symlink's target is rewritten, the link kept; a read-only file is refused
                if st.st_nlink > 1:  # the new file would take this name only: the others keep the old text
                    raise UsageError(
                        f"cannot rewrite {name}: it has {st.st_nlink} hard links (one file under "
                                     f"several names), and the rewrite would replace this name only")
                # the old file stays whole until the new one is complete
                with atomic_path(name, rewrite=True) as tmp:
                    tmp.write_bytes(new.encode())
                    os.chmod(tmp, mode)  # keep the file's permissions (the temporary file has 0600)
            except UsageError as e:  # this file is left as it was; the others are still formatted
                print(f"incdsl fmt: error: {e}; nothing was written", file=sys.stderr)
                status = 1
                continue
            print(f"{name}: reformatted", file=sys.stderr)
    return status
