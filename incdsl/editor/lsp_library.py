"""Checks for a file that defines only modules (a library such as specs/lib/inception_v3.inc), for
the language server: `incdsl check` refuses such a file ("defines no network"), so the server
checks it two ways instead.

1. On its own, from the syntax tree: every call names an op, an activation, a module or a value
   named before it; every keyword argument is one the op or module has; every name in an
   arithmetic expression is a parameter, a `let` or a `repeat` variable.
2. Through the networks of the workspace that `use` it (directly or through other files): each is
   elaborated with the library's buffer in place of the file on disk, and the errors and hover
   sites that lie in the library are kept, at their real places in it.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import Note, Span, SpecError, did_you_mean
from ..frontend import ast
from ..frontend.program import MAX_FILE_BYTES, read_regular

MAX_WORKSPACE_FILES = 400  # .inc files scanned for users of a library, so a huge folder stays quick


def static_problems(prog, path: str) -> list[SpecError]:
    """Errors in the modules of the buffer at `path` (a parsed Program), found without elaborating."""
    from ..ops import ALIASES, OPS

    out: list[SpecError] = []
    for name, (d, _file) in prog.modules.items():
        if d.span.file != path:
            continue
        _Walker(prog, out, OPS, ALIASES).module(d)
    return out


class _Walker:
    def __init__(self, prog, out, ops, aliases):
        self.prog, self.out, self.ops, self.aliases = prog, out, ops, aliases

    def module(self, d: ast.Definition) -> None:
        names = {p.name for p in d.params}
        for p in d.params:
            if p.default is not None:
                self.expr(p.default, names, numeric=False)
        self.body(d.body, names, set())

    def body(self, stmts, vars_: set, nodes: set) -> None:
        for st in stmts:
            if isinstance(st, ast.Chain):
                self.chain(st, vars_, nodes)
            elif isinstance(st, ast.Assign):
                if isinstance(st.target, ast.Repeat):
                    self.repeat(st.target, vars_, nodes)
                else:
                    self.chain(st.target, vars_, nodes)
                nodes.add(st.name)
            elif isinstance(st, ast.Let):
                self.expr(st.value, vars_, numeric=False)
                vars_.add(st.name)
            elif isinstance(st, ast.If):
                self.expr(st.cond, vars_, numeric=False)
                self.body(st.then, vars_, set(nodes))
                self.body(st.orelse, vars_, set(nodes))
            elif isinstance(st, ast.Repeat):
                self.repeat(st, vars_, nodes)
            elif isinstance(st, ast.Output):
                self.chain(st.chain, vars_, nodes)
            elif isinstance(st, ast.Defaults):
                for e in st.entries:
                    self.kwargs(e.op, e.kwargs, vars_, e.span)

    def repeat(self, st: ast.Repeat, vars_: set, nodes: set) -> None:
        self.expr(st.count, vars_, numeric=True)
        self.body(st.body, vars_ | ({st.var} if st.var else set()), set(nodes))

    def chain(self, chain: ast.Chain, vars_: set, nodes: set) -> None:
        for i, el in enumerate(chain.elements):
            if isinstance(el, ast.Branches):
                for c in el.chains:
                    self.chain(c, vars_, nodes)
                continue
            if el.bare and i == 0 and el.name in nodes or el.name == "identity":
                continue
            if el.name not in self.ops and el.name not in self.aliases and el.name not in self.prog.modules:
                known = list(nodes) + list(self.prog.modules) + list(self.ops) + list(self.aliases)
                self.out.append(
                    SpecError(f"unknown name '{el.name}': no op, module or named value is called that",
                                          _name_span(el), hint=did_you_mean(el.name, known)))
                continue
            for a in el.args:
                self.expr(a, vars_, numeric=False)
            self.kwargs(el.name, el.kwargs, vars_, el.span)

    def kwargs(self, name: str, kwargs, vars_: set, span: Span) -> None:
        opname, preset = self.aliases.get(name, (name, {}))
        if opname in self.ops:
            known = [a.name for a in self.ops[opname].args if a.name not in preset]
            what, notes = "argument", []
        elif name in self.prog.modules:
            mod = self.prog.modules[name][0]
            known, what = [p.name for p in mod.params], "parameter"
            notes = [Note(f"module {name}({', '.join(known)})", mod.span)]
        else:
            self.out.append(SpecError(f"defaults for unknown op '{name}'", span))
            return
        for kw in kwargs:
            if kw.name not in known:
                self.out.append(SpecError(f"{name} has no {what} '{kw.name}'", kw.span,
                                          hint=did_you_mean(kw.name, known), notes=notes))
            self.expr(kw.value, vars_, numeric=False)

    def expr(self, e, vars_: set, numeric: bool) -> None:
        """Names in arithmetic must be known; a bare name elsewhere may be a word (`act=relu`)."""
        if isinstance(e, ast.Name):
            if numeric and e.name not in vars_:
                self.out.append(SpecError(f"unknown name '{e.name}'", e.span,
                                          hint=did_you_mean(e.name, vars_)))
        elif isinstance(e, ast.BinOp):
            arith = e.op not in ("==", "!=")
            self.expr(e.left, vars_, arith)
            self.expr(e.right, vars_, arith)
        elif isinstance(e, ast.UnaryOp):
            self.expr(e.operand, vars_, e.op != "not")
        elif isinstance(e, ast.BoolOp):
            for x in e.operands:
                self.expr(x, vars_, False)
        elif isinstance(e, ast.Func):
            for x in e.args:
                self.expr(x, vars_, True)
        elif isinstance(e, ast.Tuple):
            for x in e.items:
                self.expr(x, vars_, numeric)


def _name_span(el: ast.Call) -> Span:
    s = el.span
    return Span(s.source, s.line, s.col, s.line, s.col + len(el.name))


def workspace_users(path: str, roots: list[Path]) -> list[Path]:
    """The .inc files under `roots` with a network that `use`s the file at `path`, directly or
    through other files (a cheap text scan first, then the `use` graph)."""
    import re

    target = Path(path).resolve()
    files: list[Path] = []
    for root in roots:
        for f in sorted(root.rglob("*.inc")):
            if any(part.startswith(".") or part in ("node_modules",
                                                    "__pycache__") for part in f.parts[len(root.parts):]):
                continue
            files.append(f)
            if len(files) >= MAX_WORKSPACE_FILES:
                break
    uses: dict[Path, list[Path]] = {}
    has_network: set[Path] = set()
    for f in files:
        try:
            text = read_regular(f, MAX_FILE_BYTES).decode("utf-8", errors="replace")  # a FIFO never blocks it
        except OSError:
            continue
        uses[f.resolve()] = [(f.parent / m).resolve() for m in re.findall(r'^\s*use\s+"([^"\n]+)"', text,
                                                                          re.M)]
        if re.search(r"^\s*network\b", text, re.M):
            has_network.add(f.resolve())

    def reaches(f: Path, seen: set) -> bool:
        if f in seen:
            return False
        seen.add(f)
        return any(u == target or reaches(u, seen) for u in uses.get(f, ()))

    return [f for f in sorted(has_network) if reaches(f, set())]
