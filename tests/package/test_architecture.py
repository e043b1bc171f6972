"""The package's shape, read from its source with the standard library's `ast` (nothing imported,
well under a second): no import circle anywhere in incdsl/ (lazy imports inside functions count
too), no private name (`_x`) imported from another incdsl module, no module over 400 lines, and
a front end that imports no TensorFlow, Keras, onnx or torch when it loads (issue 19, items 6
and 7)."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parents[2] / "incdsl"
HEAVY = ("tensorflow", "keras", "onnx", "onnxruntime", "tf2onnx", "torch", "torchvision", "jax")
# Modules that make up the front end (parse, check, count, summary, compare), and what they load
# at import time: none of these may pull in a heavy package, directly or through incdsl modules.
FRONT_END = ("incdsl", "incdsl.cli.main", "incdsl.network", "incdsl.frontend.parse",
             "incdsl.elaborate.statements", "incdsl.ops",
             "incdsl.analysis.report", "incdsl.analysis.sweep", "incdsl.analysis.fitting",
             "incdsl.analysis.scaling", "incdsl.analysis.budgets",
             "incdsl.analysis.compare_out", "incdsl.analysis.diff", "incdsl.cli.commands.check",
             "incdsl.cli.commands.summary",
             "incdsl.cli.commands.compare", "incdsl.cli.commands.fit", "incdsl.cli.commands.diff",
             "incdsl.cli.commands.compile", "incdsl.cli.commands.explore")


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


@functools.cache  # each module read and parsed once, not once per test and per start (4 s of CPU)
def _imports(name: str, top_level_only: bool = False) -> tuple:
    """(target module, imported names or None, node) for each import statement in module `name`;
    `from .x import y` targets `x.y` when that is a module, else `x`. With `top_level_only`, only
    the statements that run when the module loads (not those inside functions)."""
    return tuple(_walk_imports(name, top_level_only))


def _walk_imports(name: str, top_level_only: bool):
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
    assert g.has_edge("incdsl.network", "incdsl.backends.onnx.convert")  # inside Network.to_onnx
    assert g.has_edge("incdsl.cli.main", "incdsl.cli.guard")  # from .guard import ...
    assert g.has_edge("incdsl", "incdsl.backends.keras.register")  # from .backends.keras import register
    assert not _graph(top_level_only=True).has_edge("incdsl.network", "incdsl.backends.onnx.convert")


def test_no_import_circle():
    g = _graph()
    circles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not circles, f"modules importing each other in a circle: {circles}"


# The rooms in pipeline order (issue 26 item 1): a room imports only rooms before it. `base` is what
# every stage shares (errors, spans, text, files); `api` is the Network facade, whose methods reach
# the later stages (a summary, a Keras or ONNX build) lazily, inside the method, never at load time.
ROOMS = ("base", "ir", "ops", "frontend", "elaborate", "passes", "weights", "api", "analysis", "importers",
         "backends", "train", "explore", "editor", "cli", "package")
BASE = ("errors", "source", "text", "io", "untrusted", "inputs", "version")
LAZY_FROM_API = ("analysis", "backends")
# siblings that never import each other either way: a model importer reads files into specs, a
# backend writes specs out; what both need (weights as numpy, the PyTorch reader) lives in weights/
APART = {("backends", "importers"), ("importers", "backends")}


def room(module: str) -> str:
    """The room a module lives in: `incdsl.frontend.parse` -> frontend, `incdsl.errors` -> base."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "package"
    if parts[1] in BASE:
        return "base"
    if parts[1] == "network":
        return "api"
    assert parts[1] in ROOMS, f"{module}: a module outside the rooms ({', '.join(ROOMS)})"
    return parts[1]


def test_every_module_is_in_a_room():
    rooms = {room(name) for name in MODULES}
    assert rooms == set(ROOMS), set(ROOMS) ^ rooms


def against_the_order(importer: str, imported: str, at_load_time: bool) -> bool:
    """Whether module `importer` importing module `imported` is an arrow against ROOMS' order (the
    API facade may reach analysis and backends lazily, inside its methods)."""
    order = {r: i for i, r in enumerate(ROOMS)}
    a, b = room(importer), room(imported)
    if (a, b) in APART:
        return True
    if order[b] <= order[a]:
        return False
    return not (a == "api" and b in LAZY_FROM_API and not at_load_time)


def test_rooms_import_only_earlier_rooms():
    load_time = _graph(top_level_only=True)
    bad = []
    for name in MODULES:
        for target, _, node in _imports(name):
            if target in MODULES and against_the_order(name, target, load_time.has_edge(name, target)):
                bad.append(f"{MODULES[name].relative_to(PKG.parent)}:{node.lineno}: {room(name)} imports "
                           f"{room(target)} ({target})")
    assert not bad, "imports against the pipeline order " + " < ".join(ROOMS) + ":\n" + "\n".join(bad)


def test_the_room_rule_sees_a_backward_arrow():
    # the arrows issue 26 named, as they were: a backend reading an importer (torch weights), an
    # importer reading a backend (incdsl's Keras layers); and the facade reaching a backend at load time
    assert against_the_order("incdsl.backends.keras.build", "incdsl.weights.torch", True) is False
    assert against_the_order("incdsl.backends.keras.build", "incdsl.importers.model_keras", False)
    assert against_the_order("incdsl.importers.model_keras", "incdsl.backends.keras.layers", False)
    assert against_the_order("incdsl.train.loop", "incdsl.cli.guard", False)
    assert against_the_order("incdsl.network", "incdsl.backends.onnx.convert", True)
    assert not against_the_order("incdsl.network", "incdsl.backends.onnx.convert", False)
    assert room("incdsl.errors") == "base" and room("incdsl") == "package" and room("incdsl.network") == "api"


def test_backends_import_neither_network_nor_the_package():
    for name in MODULES:
        if name.startswith("incdsl.backends."):
            for target, _, node in _imports(name):
                assert target not in ("incdsl", "incdsl.network"), \
                    f"{MODULES[name].name}:{node.lineno} imports {target}; a backend takes the network it " \
                    "is given"


def test_cli_and_commands_do_not_import_each_other():
    for name in MODULES:
        if name.startswith("incdsl.cli.commands"):
            assert "incdsl.cli.main" not in {t for t, _, _ in _imports(name)}, name


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for name in MODULES:
        for target, imported, node in _imports(name):
            if target.startswith(
                "incdsl") and imported and imported.startswith("_") and not imported.startswith("__"):
                bad.append(f"{MODULES[name].relative_to(PKG.parent)}:{node.lineno}: {imported} from {target}")
    assert not bad, (
        "private names imported across modules (make them public, with a docstring):\n" + "\n".join(bad)
    )


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
    assert sizes["incdsl.elaborate.statements"] > 100 and len(sizes) > 100  # the walk found the package
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_only_the_explore_package_imports_ray():
    """Issue 25: Ray is the [explore] extra; nothing outside incdsl/explore/ and cli/commands/explore.py
    imports it (lazily or not), and the front end, `incdsl explore --show` included, loads none of it."""
    allowed = ("incdsl.explore", "incdsl.cli.commands.explore")
    bad = [f"{MODULES[name].relative_to(PKG.parent)}:{node.lineno} imports {target}"
           for name in MODULES if not name.startswith(allowed)
           for target, _, node in _imports(name) if target.split(".")[0] == "ray"]
    assert not bad, "\n".join(bad)
    g = _graph(top_level_only=True)
    light = ("incdsl.explore", "incdsl.explore.options", "incdsl.explore.plan", "incdsl.explore.folder",
             "incdsl.explore.results", "incdsl.explore.experiment", "incdsl.cli.commands.explore")
    heavy = [f"{name} imports {target} when it loads (via {start})" for start in light
             for name in {start} | nx.descendants(g, start)
             for target, _, _ in _imports(name,
                                          top_level_only=True) if target.split(".")[0] in HEAVY + ("ray",)]
    assert not heavy, "\n".join(sorted(set(heavy)))
    # the check sees Ray
    assert any(t.split(".")[0] == "ray" for t, _, _ in _imports("incdsl.explore.tuning"))
