"""Chains and blocks as `.inc` text, with the names elaboration will give them.

`Renderer` writes one scope (the network body, or one module call's body) the way a person writes
it: one statement per line, branches on lines of their own, each layer's arguments minus the
defaults in force. It simulates elaboration's naming (`conv_1`, `b2`, ...; naming.py `Names.id`,
`Names.fresh`) so that a layer whose source name differs from the automatic one is named explicitly,
and it records the order in which elaboration will emit the layers, which is how the import maps
its nodes onto the elaborated spec afterwards. Channel counts (and scale factors) are written as
slots, so calls of one structure with other widths become one module with arguments.
"""
from __future__ import annotations

from ..ops import DEFAULTS, OPS, REQUIRED
from .flat import Flat
from .structure import Block, Layer

SLOT_ARGS = ("filters", "units", "factor")  # what may differ between calls of one module
SLOT = "\x00"


class NameMismatch(Exception):
    """A source name the written structure cannot give back (the writer then drops names)."""


def value_text(v) -> str:
    """An argument value as spec text: true/false, none, a float's shortest repr, sizes as HxW or tuples."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, tuple):
        if len(v) == 2:
            return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"
        t, b, l, r = v
        if t == b == l == r:
            return str(t)
        if t == b and l == r:
            return f"({t}, {l})"
        return f"({t}, {b}, {l}, {r})"
    return str(v)


class Renderer:
    """Writes flat nodes as spec statements, leaving out what the `defaults` already say, and tracks the names
    the front end will give each layer."""
    def __init__(self, flat: Flat, defaults: dict[str, dict], prefix: str = "", use_names: bool = True,
                 subst: dict | None = None):
        self.flat, self.defaults, self.prefix, self.use_names = flat, defaults, prefix, use_names
        self.subst = subst or {}          # node -> {arg: expression text} (network parameters)
        self.counters: dict[tuple, int] = {}
        self.taken: set[str] = set()
        self.order: list[str] = []        # nodes in elaboration order
        self.slots: list[tuple[str, object]] = []  # (kind, value) per slot, in text order

    # -- names ---------------------------------------------------------------------------
    def _fresh(self, path: tuple, base: str) -> str:
        while True:
            n = self.counters.get((path, base), 0) + 1
            self.counters[(path, base)] = n
            name = "/".join(path + (f"{base}_{n}",))
            if name not in self.taken:
                return name

    def _want(self, node: str) -> str | None:
        want = self.flat.nodes[node].want if self.use_names else None
        if want is None:
            return None
        if self.prefix:
            if not want.startswith(self.prefix + "/"):
                raise NameMismatch(want)
            want = want[len(self.prefix) + 1:]
        return want

    def name_for(self, node: str, path: tuple, base: str, can_name: bool) -> str | None:
        """The explicit name to write for `node` at scope `path` (None: the automatic one fits)."""
        want = self._want(node)
        if want is None:
            self.taken.add(self._fresh(path, base))
            return None
        parts = tuple(want.split("/"))
        if parts[:-1] != path:
            raise NameMismatch(want)
        auto_n = self.counters.get((path, base), 0) + 1
        if parts[-1] == f"{base}_{auto_n}" and want not in self.taken:
            self.taken.add(self._fresh(path, base))
            return None
        if not can_name:
            raise NameMismatch(want)
        self.taken.add(want)
        return parts[-1]

    # -- text ------------------------------------------------------------------------------
    def call(self, node: str) -> tuple[str, str]:
        """(base name for automatic naming, the call text) of one layer."""
        n = self.flat.nodes[node]
        a, op = n.attrs, n.op
        if op == "act":
            slope = a.get("slope")
            return a["fn"], a["fn"] if slope is None else f"{a['fn']}({value_text(slope)})"
        args = []
        own = DEFAULTS[op]
        hoisted = self.defaults.get(op, {})
        sub = self.subst.get(node, {})
        positional = True
        for arg in OPS[op].args:
            v = a.get(arg.name)
            if arg.name in sub:
                text = sub[arg.name]
            elif arg.name in SLOT_ARGS:
                self.slots.append((arg.name, v))
                text = SLOT
            else:
                text = value_text(v)
            if arg.default is REQUIRED:
                args.append(text)
                continue
            if arg.name == "stride" and arg.default is None:
                if v != a.get("kernel"):
                    args.append(f"stride={text}")
                positional = False
                continue
            default = hoisted.get(arg.name, own[arg.name])
            if arg.name == "kernel" and positional:  # `conv(64, 1)`: the kernel is always written
                args.append(text)
                continue
            if v == default and arg.name not in sub:
                positional = False
                continue
            if positional and arg.name == "kernel":
                args.append(text)
            else:
                positional = False
                args.append(f"{arg.name}={text}")
        return op, (f"{op}({', '.join(args)})" if args else op)

    def layer(self, node: str, path: tuple, can_name: bool, force: str | None = None) -> tuple[str | None,
                                                                                               str]:
        """(explicit name or None, call text) of one layer; `force` names it whatever its source."""
        base, text = self.call(node)
        if force is not None:
            self.taken.add("/".join(path + (force,)))
            name = force
        else:
            name = self.name_for(node, path, base, can_name)
        self.order.append(node)
        return name, text

    def block(self, blk: Block, path: tuple, can_name: bool, force: str | None = None) -> tuple[str | None,
                                                                                                list[str]]:
        """(explicit name or None, lines): `concat {`, each branch indented, `}`."""
        want = self._want(blk.node)
        name = force
        if want is not None and force is None:
            parts = tuple(want.split("/"))
            auto_n = self.counters.get((path, blk.kind), 0) + 1
            if parts[:-1] != path:
                raise NameMismatch(want)
            if parts[-1] != f"{blk.kind}_{auto_n}" or want in self.taken:
                if not can_name:
                    raise NameMismatch(want)
                name = parts[-1]
        base = path + (name,) if name else path
        lines = [f"{blk.kind} {{"]
        for br in blk.branches:
            # elaborate._branches: b1, b2, ... (no taken-name check)
            n = self.counters.get((base, "b"), 0) + 1
            self.counters[(base, "b")] = n
            label = f"b{n}"
            lines += ["  " + line for line in self.branch(br, base + (label,))]
        if name:
            self.taken.add("/".join(base))
        else:
            self.taken.add(self._fresh(path, blk.kind))
        self.order.append(blk.node)
        lines.append("}")
        return name, lines

    def branch(self, items: list, path: tuple) -> list[str]:
        """A branch as one chain: `a -> b -> concat {` ... `} -> c` (branches name nothing)."""
        if not items:
            return ["identity"]
        lines = [""]
        for item in items:
            sep = " -> " if lines[-1] else ""
            if isinstance(item, Layer):
                lines[-1] += sep + self.layer(item.node, path, can_name=False)[1]
            else:
                _, sub = self.block(item, path, can_name=False)
                lines[-1] += sep + sub[0]
                lines += sub[1:]
        return lines

    def statements(self, items: list, path: tuple = (),
                   names: dict | None = None) -> list[tuple[list[str], str]]:
        """A chain as statements: [(lines, node the statement ends with)]. `names`: node -> name to
        write whatever the source says (top-level layers named after the source)."""
        names = names or {}
        out = []
        for item in items:
            if isinstance(item, Layer):
                name, text = self.layer(item.node, path, True, names.get(item.node))
                out.append(([f"{name} = {text}" if name else text], item.node))
            else:
                hoisted = self._hoistable(item, path)
                if hoisted is not None:
                    out += self._tap_block(item, path, *hoisted)
                    continue
                name, lines = self.block(item, path, True, names.get(item.node))
                if name:
                    lines[0] = f"{name} = {lines[0]}"
                out.append((lines, item.node))
        return out

    def _hoistable(self, blk: Block, path: tuple):
        """(branch, layers) when a branch starts with layers the source names outside the block (a
        model incdsl compiled from `x = identity; relu; add { x -> ...; ... }`, as Xception's
        entry flow is written): those layers come first, the other branches tap the block's input."""
        if not self.use_names:
            return None
        for k, br in enumerate(blk.branches):
            run = []
            for it in br:
                want = self._want(it.node) if isinstance(it, Layer) else None
                if want is None or tuple(want.split("/"))[:-1] != path:
                    break
                run.append(it)
            if run and len(run) < len(br) + 1:
                return k, len(run)
        return None

    def _tap_block(self, blk: Block, path: tuple, k: int, n: int) -> list[tuple[list[str], str | None]]:
        tap = "x"
        out: list[tuple[list[str], str | None]] = [([f"{tap} = identity"], None)]
        for it in blk.branches[k][:n]:
            name, text = self.layer(it.node, path, True)
            out.append(([f"{name} = {text}" if name else text], it.node))
        rest = [br if j != k else br[n:] for j, br in enumerate(blk.branches)]  # [] reads `identity`
        shifted = Block(blk.kind, rest, blk.node)
        _, lines = self.block(shifted, path, False)
        # the tapped branches start from the block's input, not from the hoisted layers
        fixed, branch_no = [lines[0]], -1
        for line in lines[1:-1]:
            if line.startswith("  ") and not line.startswith("   ") and not line[2:].startswith("}"):
                branch_no += 1
                if branch_no != k:
                    body = line[2:]
                    line = "  " + (tap if body == "identity" else f"{tap} -> {body}")
            fixed.append(line)
        fixed.append(lines[-1])
        out.append((fixed, blk.node))
        return out
