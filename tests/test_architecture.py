"""The package's shape, read from its source with the standard library's `ast` (nothing imported,
well under a second): no import circle anywhere in incdsl/ (lazy imports inside functions count
too), no private name (`_x`) imported from another incdsl module, no module over 400 lines, and
a front end that imports no TensorFlow, Keras, onnx or torch when it loads (issue 19, items 6
and 7)."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parent.parent / "incdsl"
HEAVY = ("tensorflow", "keras", "onnx", "onnxruntime", "tf2onnx", "torch", "torchvision", "jax")
# Modules that make up the front end (parse, check, count, summary, compare), and what they load
# at import time: none of these may pull in a heavy package, directly or through incdsl modules.
FRONT_END = ("incdsl", "incdsl.cli", "incdsl.network", "incdsl.parse", "incdsl.elaborate", "incdsl.ops",
             "incdsl.report", "incdsl.sweep", "incdsl.fitting", "incdsl.scaling", "incdsl.explore",
             "incdsl.compare_out", "incdsl.diff", "incdsl.commands.check", "incdsl.commands.summary",
             "incdsl.commands.compare", "incdsl.commands.fit", "incdsl.commands.diff", "incdsl.commands.compile")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rsplit(".", 1)[0]


def _imports(name: str, top_level_only: bool = False):
    """(target module, imported names or None, node) for each import statement in module `name`;
    `from .x import y` targets `x.y` when that is a module, else `x`. With `top_level_only`, only
    the statements that run when the module loads (not those inside functions)."""
    tree = ast.parse(MODULES[name].read_text())
    nodes = ast.walk(tree)
    if top_level_only:
        nodes = _load_time(tree.body)
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None, node
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(name).split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                yield (sub, None, node) if sub in MODULES else (mod, a.name, node)


def _load_time(body):
    """The statements run at import: module level, inside if/try/with blocks, not inside defs."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.ClassDef):
            yield from _load_time(node.body)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _load_time(getattr(node, field, []) or [])


def _graph(top_level_only: bool = False) -> nx.DiGraph:
    g = nx.DiGraph()
    for name in MODULES:
        g.add_node(name)
        for target, _, _ in _imports(name, top_level_only):
            if target in MODULES and target != name:
                g.add_edge(name, target)
    return g


def test_the_graph_sees_lazy_and_relative_imports():
    g = _graph()
    assert g.has_edge("incdsl.network", "incdsl.backends.onnx")  # inside Network.to_onnx
    assert g.has_edge("incdsl.cli", "incdsl.guard")  # from .guard import ...
    assert g.has_edge("incdsl", "incdsl.backends.keras_register")  # from .backends import keras_register
    assert not _graph(top_level_only=True).has_edge("incdsl.network", "incdsl.backends.onnx")


def test_no_import_circle():
    g = _graph()
    circles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not circles, f"modules importing each other in a circle: {circles}"


def test_backends_import_neither_network_nor_the_package():
    for name in MODULES:
        if name.startswith("incdsl.backends."):
            for target, _, node in _imports(name):
                assert target not in ("incdsl", "incdsl.network"), \
                    f"{MODULES[name].name}:{node.lineno} imports {target}; a backend takes the network it is given"


def test_cli_and_commands_do_not_import_each_other():
    for name in MODULES:
        if name.startswith("incdsl.commands"):
            assert "incdsl.cli" not in {t for t, _, _ in _imports(name)}, name


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for name in MODULES:
        for target, imported, node in _imports(name):
            if target.startswith("incdsl") and imported and imported.startswith("_") and not imported.startswith("__"):
                bad.append(f"{MODULES[name].relative_to(PKG.parent)}:{node.lineno}: {imported} from {target}")
    assert not bad, "private names imported across modules (make them public, with a docstring):\n" + "\n".join(bad)


def test_the_front_end_loads_no_heavy_package():
    g = _graph(top_level_only=True)
    bad = []
    for start in FRONT_END:
        for name in {start} | nx.descendants(g, start):
            for target, _, node in _imports(name, top_level_only=True):
                if target.split(".")[0] in HEAVY:
                    bad.append(f"{MODULES[name].relative_to(PKG.parent)}:{node.lineno} imports {target} "
                               f"(loaded by {start})")
    assert not bad, "\n".join(sorted(set(bad)))


MAX_LINES = 400  # issue 19: a file a reader can hold; split a module along its jobs before it grows past this


def test_no_module_is_over_400_lines():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    assert sizes["incdsl.elaborate"] > 100 and len(sizes) > 100  # the walk found the package
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"
