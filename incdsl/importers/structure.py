"""The flat graph as the language writes it: chains, and `concat`/`add` blocks of branches.

A series-parallel decomposition: from a value, a chain goes on while each layer has one reader;
where a value forks, the branches end at the fork's immediate post-dominator, which must be a
`concat` or `add` whose inputs are the branch ends, in order. Branches that share layers (the
PyTorch exporter merges `cat([a, cat([b, c])])` into one Concat of a, b, c) get a nested `concat`
of their own, which computes the same thing. Heads after the first are taps: a chain from a value
the main chain wrote.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..ir.graph import ancestors
from .flat import Flat, Node


@dataclass
class Layer:
    """One flat node in a chain."""
    node: str


@dataclass
class Block:
    """Parallel branches joined by a concat or an add at `node`; an empty branch is the identity (a residual's
    shortcut)."""
    kind: str                 # concat or add
    branches: list[list]      # each a chain (list of Layer / Block); [] is identity
    node: str                 # the join node


@dataclass
class Tap:
    """An extra head: the chain from a node of the main chain to that head's output."""
    head: str                 # the head's name
    src: str                  # the node it starts from
    chain: list


def decompose(flat: Flat) -> tuple[list, list[Tap]]:
    """(the main chain from the input to the first head, one Tap per other head)."""
    return _Decomposer(flat).run()


class _Decomposer:
    def __init__(self, flat: Flat):
        self.flat = flat
        self._users()

    def _users(self):
        self.users = {n: [] for n in self.flat.nodes}
        for node in self.flat.nodes.values():
            for i in node.inputs:
                if node.name not in self.users[i]:
                    self.users[i].append(node.name)

    def run(self):
        heads = self.flat.heads
        if not heads:  # a damaged or hand-made file: nothing to write a network for
            raise SpecError(f"{self.flat.source}: the model has no outputs")
        main = heads[0]
        region = ancestors(self.flat.nodes, [main.node]) - {"input"}
        chain = self.chain("input", main.node, region)
        written = region | {"input"}
        taps = []
        for h in heads[1:]:
            reg = ancestors(self.flat.nodes, [h.node]) - written
            entries = {i for n in reg for i in self.flat.nodes[n].inputs if i not in reg}
            if not reg:
                taps.append(Tap(h.name, h.node, []))
                continue
            if len(entries) != 1:
                raise self._unstructured(h.node,
                                         f"head '{h.name}' reads {len(entries)} values of the main network")
            src = entries.pop()
            taps.append(Tap(h.name, src, self.chain(src, h.node, reg)))
            written |= reg
        return chain, taps

    def _unstructured(self, node: str, why: str) -> SpecError:
        n = self.flat.nodes[node]
        return SpecError(f"{self.flat.source}: cannot write layer {n.what or node} ({n.op}) as chains and "
                         f"branches: {why}",
                         hint="incdsl imports graphs whose forks end in one concat or add")

    def _postdom(self, start: str, end: str, region: set[str]) -> dict:
        import networkx as nx
        g = nx.DiGraph()
        g.add_node(end)
        for n in region | {start}:
            for i in self.flat.nodes[n].inputs if n != start else []:
                if i in region or i == start:
                    g.add_edge(n, i)  # reversed: reader -> producer
        return nx.immediate_dominators(g, end)

    def chain(self, start: str, end: str, region: set[str]) -> list:
        items: list = []
        cur = start
        pdom = None
        while cur != end:
            nxt = [u for u in self.users[cur] if u in region]
            if not nxt:
                raise self._unstructured(cur, "the chain ends before its block does")
            if len(nxt) == 1 and self.flat.nodes[nxt[0]].inputs == [cur]:
                items.append(Layer(nxt[0]))
                cur = nxt[0]
                continue
            if pdom is None:
                pdom = self._postdom(start, end, region)
            join = pdom.get(cur)
            if join is None or join == cur:
                raise self._unstructured(cur, "its readers never meet again")
            jn = self.flat.nodes[join]
            if jn.op not in ("concat", "add", "multiply"):
                raise self._unstructured(join, "branches meet in a layer that is not concat, add or multiply")
            if self._regroup(cur, jn, region):
                self._users()
                region |= {n for n in self.flat.nodes if n.startswith(join + "~")}
                pdom = self._postdom(start, end, region)
                jn = self.flat.nodes[join]
            branches = []
            for inp in jn.inputs:
                branches.append([] if inp == cur else self.chain(cur, inp, self._between(cur, inp, region)))
            items.append(Block(jn.op, branches, join))
            cur = join
        return items

    def _between(self, start: str, end: str, region: set[str]) -> set[str]:
        seen, stack = set(), [end]
        while stack:
            n = stack.pop()
            if n == start or n in seen:
                continue
            if n not in region:
                raise self._unstructured(end, f"it reads '{n}' from outside its block")
            seen.add(n)
            stack.extend(self.flat.nodes[n].inputs)
        return seen

    def _regroup(self, fork: str, jn: Node, region: set[str]) -> bool:
        """Give branches that share layers a nested concat of their own; True if any was made."""
        sets = [set() if i == fork else self._between(fork, i, region) for i in jn.inputs]
        groups: list[list[int]] = []
        for k, s in enumerate(sets):
            if groups and any(s & sets[j] for j in groups[-1]):
                groups[-1].append(k)
            else:
                groups.append([k])
        for g in groups:  # a non-adjacent overlap cannot be nested without reordering
            for j in range(len(sets)):
                if j not in g and any(sets[j] & sets[k] for k in g):
                    raise self._unstructured(jn.name,
                                             "its inputs share layers in an order nested concats cannot keep")
        if all(len(g) == 1 for g in groups):
            return False
        if jn.op != "concat":
            raise self._unstructured(jn.name, "the branches of a sum share layers")
        new_inputs, nodes = [], list(self.flat.nodes.items())
        parts = []
        for g in groups:
            if len(g) == 1:
                new_inputs.append(jn.inputs[g[0]])
                continue
            name = f"{jn.name}~{len(parts) + 1}"
            parts.append(Node(name, "concat", {}, [jn.inputs[k] for k in g], {}, jn.path, None, jn.what))
            new_inputs.append(name)
        # rebuild in topological order: the new concats right before the join
        flat = self.flat
        old = dict(nodes)
        flat.nodes.clear()
        shapes = dict(flat.shapes)
        flat.shapes.clear()
        for name, node in old.items():
            if name == jn.name:
                for p in parts:
                    flat.add(p)
                node.inputs = new_inputs
            flat.nodes[name] = node
            flat.shapes[name] = shapes[name]
        return True
