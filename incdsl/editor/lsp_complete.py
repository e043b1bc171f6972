"""What the language server reads in a buffer's text itself: the word at a place, where a name is
defined (a module or a `use`d file), and the completions offered inside and outside a call's
parentheses. The analysis they use (`lsp.Analysis`) comes from `lsp.analyze`.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..source import Span

KEYWORDS = ("network", "module", "use", "defaults", "input", "output", "train_output", "let", "if", "elif",
            "else", "repeat", "as", "in", "concat", "add", "variant", "and", "or", "not", "true", "false")


def word_at(text: str, line: int, col: int) -> tuple[str, str] | None:
    """('name', word) or ('string', contents) at the 1-based (line, col)."""
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    src = lines[line - 1]
    for m in re.finditer(r'"[^"\n]*"|[A-Za-z_][A-Za-z0-9_]*', src):
        if m.start() < col <= m.end() + 1:
            w = m.group()
            return ("string", w[1:-1]) if w.startswith('"') else ("name", w)
    return None


def definition(a, text: str, line: int, col: int) -> tuple[str, Span | None] | None:
    """(file, span) of what the word at (line, col) names: a module's definition or a `use`d file.
    `a` is the document's `lsp.Analysis`."""
    hit = word_at(text, line, col)
    if hit is None:
        return None
    kind, word = hit
    lines = text.split("\n")
    if kind == "string" and re.match(r"\s*use\b", lines[line - 1]):
        target = Path(a.path).parent / word
        return (str(target), None) if target.is_file() else None
    if kind == "name" and a.program is not None and word in a.program.modules:
        d, _ = a.program.modules[word]
        return d.span.file, d.span
    return None


def completions(a, text: str, line: int, col: int) -> list[tuple[str, str, str, str]]:
    """(label, kind, detail, documentation) items for the 1-based (line, col): argument names inside
    a call's parentheses, else ops, activations, modules and keywords. `a` is the document's
    `lsp.Analysis` (None before the first one)."""
    from ..ops import ACTIVATIONS, OPS

    lines = text.split("\n")
    before = lines[line - 1][:col - 1] if 0 < line <= len(lines) else ""
    modules = a.program.modules if a is not None and a.program is not None else {}
    call = _open_call(before)
    if call is not None:
        if call in OPS:
            return [(f"{arg.name}=", "argument", f"{call} argument: {arg.kind}, " + _default(arg), arg.doc)
                    for arg in OPS[call].args]
        if call in modules:
            d, _ = modules[call]
            params = {p.name: p for p in d.params}
            typed = re.search(r"(\w+)\s*=\s*\w*$", before)
            # `pooling=`: its values
            if typed and typed.group(1) in params and params[typed.group(1)].choices:
                p = params[typed.group(1)]
                return [(_choice_text(c), "value", f"{call}'s {p.name}", f"one of the values {p.name} takes")
                        for c in p.choices]
            return [(f"{p.name}=", "argument", f"{call} parameter" + ("" if p.default else ", required")
                     + (f", one of {', '.join(_choice_text(c) for c in p.choices)}" if p.choices else ""),
                     f"parameter of module {call}") for p in d.params]
    items = [(name, "op", f"op {name}({', '.join(x.name for x in op.args)})",
              op.doc) for name, op in OPS.items()]
    items += [(name, "op", "activation", f"the {name} activation as a layer") for name in ACTIVATIONS]
    items += [(name, "module", f"module {name}({', '.join(p.name for p in d.params)})", f"defined in {f}")
              for name, (d, f) in modules.items()]
    items += [(k, "keyword", "keyword", "") for k in KEYWORDS]
    return items


def _choice_text(expr) -> str:
    """One of a parameter's listed values as the spec writes it (`avg`, `2`, `"same"`)."""
    if hasattr(expr, "name"):
        return expr.name
    text = expr.span.source_line() if expr.span is not None else None
    if text is not None and expr.span.line == expr.span.end_line:
        return text[expr.span.col - 1:expr.span.end_col - 1]
    return str(getattr(expr, "value", expr))


def _default(arg) -> str:
    from ..ops import REQUIRED

    if arg.default is REQUIRED:
        return "required"
    shown = {None: "none", True: "true", False: "false"}.get(arg.default, arg.default) \
        if not isinstance(arg.default, (int, float)) or isinstance(arg.default, bool) else arg.default
    return f"default {shown}"


def _open_call(before: str) -> str | None:
    """The name of the call whose '(' is still open at the end of `before`, if any."""
    depth = 0
    for i in range(len(before) - 1, -1, -1):
        ch = before[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", before[:i])
                return m.group(1) if m else None
            depth -= 1
    return None
