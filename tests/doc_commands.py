"""The commands of the README's and specs/README.md's command blocks, as tests/cli/test_readme_commands.py
runs them: the lines of ```-fenced blocks (plain or shell; not ```python) that start with
`incdsl `, `$ incdsl ` or `tools/`, a trailing backslash joining the next line. In a block that
shows a session (some line starts with `$ `), only the `$ ` lines are commands: the rest is output."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SHELL_FENCES = ("", "sh", "bash", "shell", "console")


@dataclass(frozen=True)
class DocCommand:
    """One documented command: the file and line it sits on, the command as written (comment
    dropped, continuation lines joined) and the lines that follow it in its block (its shown output,
    for a `$ ` command)."""
    file: str
    line: int
    text: str
    shown: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def _without_comment(text: str) -> str:
    # a '#' after white space starts a shell comment (no documented command quotes one)
    return re.split(r"\s+#", text, maxsplit=1)[0].strip()


def doc_commands(path: Path, name: str) -> list[DocCommand]:
    """The commands of the file at `path` (named `name` in ids), in order."""
    out: list[DocCommand] = []
    lines = path.read_text().splitlines()
    fence: str | None = None
    session = False
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        i += 1
        if s.startswith("```"):
            fence = None if fence is not None else s[3:].strip()
            if fence is not None:
                end = next((j for j in range(i, len(lines)) if lines[j].strip().startswith("```")),
                           len(lines))
                session = any(line.strip().startswith("$ ") for line in lines[i:end])
            continue
        if fence is None or fence not in SHELL_FENCES:
            continue
        dollar = s.startswith("$ ")
        if session and not dollar:
            continue
        t = s[2:] if dollar else s
        if not (t.startswith("incdsl ") or t.startswith("tools/")):
            continue
        start, parts = i, [t]
        while parts[-1].endswith("\\") and i < len(lines):
            parts[-1] = parts[-1][:-1].rstrip()
            parts.append(lines[i].strip())
            i += 1
        shown = []
        if dollar:  # the output the block shows, up to the next command or the end of the block
            j = i
            while j < len(lines) and not lines[j].strip().startswith(("```", "$ ")):
                shown.append(lines[j])
                j += 1
        out.append(DocCommand(name, start, _without_comment(" ".join(parts)), tuple(shown)))
    return out
