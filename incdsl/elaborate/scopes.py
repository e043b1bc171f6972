"""What elaboration sees at one place of a spec: scopes, and the values given to a layer's arguments.

Scoping rules (specs/README.md states them for users):
- expression names (parameters, `let`, loop variables) are lexical: a module sees only its own
  parameters and lets; a network sees its parameters. Every block of one body (branches, `if`,
  `repeat`) shares its body's names;
- `defaults` are dynamic, like TF-slim's arg_scope: they apply to every layer elaborated after them
  in the enclosing block, including inside the modules called from there; the innermost wins and
  an explicit argument always wins;
- named values (`x = ...`) are visible for the rest of their body and inside its concat/add
  branches; a name given inside a branch (or a named `repeat`'s pass) stays inside it, one given
  inside `if` or an unnamed `repeat` is the body's.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import Span


@dataclass(frozen=True, slots=True)
class Given:
    """A value given to an argument, and where: the expression that gave it, or the `defaults`
    entry it came from. `span` is None for a value no spec place wrote (an alias's preset)."""
    value: object
    span: Span | None


@dataclass(frozen=True, slots=True)
class DefaultsInForce:
    """One entry of a `defaults` statement: the op it is for (`conv`, or `act:leaky_relu` for an
    activation word), the values it gives (each with the entry's span), and the entry's span."""
    op: str
    values: dict[str, Given]
    span: Span


class Scope:
    """One block of statements during elaboration: a network or module body, a branch, an `if`.

    `path` is the hierarchical name prefix (`inception3a`, `b2`) of the layers made here; `vars`
    the expression names in lexical scope (parameters, `let`s, loop variables: one dict shared by
    every block of a body); `defaults` the active `defaults` entries, innermost last: a block
    starts with its parent's and its own end with it; `module` the module being expanded (None in
    the network body). Named values (`x = ...`) are looked up through `parent`: a block that opens
    a namespace (`child`) keeps its own, one that does not (`block`) binds in its parent's.
    """
    __slots__ = ("path", "vars", "defaults", "module", "parent", "_nodes")

    def __init__(self, path: tuple[str, ...], vars: dict, module: str | None,
                 defaults: tuple[DefaultsInForce, ...] = (), parent: Scope | None = None,
                 namespace: bool = True):
        self.path = path
        self.vars = vars
        self.module = module
        self.defaults = defaults
        self.parent = parent
        self._nodes: dict[str, str] | None = {} if namespace else None

    def child(self, path: tuple[str, ...]) -> Scope:
        """A branch or a named `repeat` pass at `path`: the same names, its own named values and defaults."""
        return Scope(path, self.vars, self.module, self.defaults, self)

    def block(self) -> Scope:
        """An `if` or an unnamed `repeat` pass: the same names and named values, its own defaults."""
        return Scope(self.path, self.vars, self.module, self.defaults, self, namespace=False)

    def call(self, path: tuple[str, ...], params: dict, module: str) -> Scope:
        """The body of a call of `module` at `path`: its parameters, no named values of the
        caller, the caller's defaults (they are dynamic)."""
        return Scope(path, params, module, self.defaults)

    def add_defaults(self, entries: tuple[DefaultsInForce, ...]):
        """A `defaults` statement: its entries apply from here to the end of this block."""
        self.defaults = self.defaults + entries

    def node(self, name: str) -> str | None:
        """The graph node a named value stands for, looked up through the parents; None if unnamed."""
        s = self
        while s is not None:
            if s._nodes is not None and name in s._nodes:
                return s._nodes[name]
            s = s.parent
        return None

    def bind(self, name: str, node: str):
        """Name `node` `name` in the nearest scope that keeps named values."""
        s = self
        while s._nodes is None:
            s = s.parent
        s._nodes[name] = node

    def names(self) -> list[str]:
        """Every named value visible here, outermost first (for did-you-mean hints)."""
        chain = []
        s = self
        while s is not None:
            if s._nodes is not None:
                chain.append(s._nodes)
            s = s.parent
        seen: dict[str, str] = {}
        for nodes in reversed(chain):
            seen.update(nodes)
        return list(seen)
