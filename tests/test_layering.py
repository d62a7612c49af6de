"""The package's layering, checked on every run so that a violation fails CI.

* core library modules (``tinyjax.*`` outside codegen and search) never import ``tinyjax.codegen``
  or ``tinyjax.search``;
* ``tinyjax.codegen`` never reaches, directly or through the modules it imports, training
  (``tinyjax.train``), the data pipeline, ``tinyjax.search``, or their heavy dependencies
  (TensorFlow, optax, Orbax, torch);
* inside ``tinyjax.codegen`` the stages follow the data: numerics → ops → graph → targets → trace →
  quant → plan → emit; a module imports only from its own stage or an earlier one;
* inside ``tinyjax.search`` TinyNAS and the Rubik's-cube formula do not import each other;
* command-line modules and the shipped configs are the top layer: no library module imports them;
* torch and GPyTorch are imported by no module of the package but the Rubik's-cube formula's GP
  fit (``tinyjax.search.rubik.gp``, inside its fitting functions);
* no import circles, lazy (function-level) imports included;
* the sub-packages are imported as ``tinyjax.codegen`` / ``tinyjax.search``, never by their folder
  names (``codegen.graph`` would load a second copy of every module, whose classes differ).

An import edge goes to the module imported: ``from a import b`` is an import of ``a.b`` when that
is a module, else of ``a`` (as import-linter counts them); the parent packages Python executes on
the way are not edges. Why not import-linter itself: its graph builder (grimp) finds a package's
modules by walking the root package's folder, and ``tinyjax.codegen`` / ``tinyjax.search`` /
``tinyjax.configs`` live in top-level folders mapped by ``pyproject.toml``'s ``package-dir``, so it
reports them as missing. This test reads the same mapping and every ``import`` statement
(function-level ones too) with :mod:`ast`.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]

CLI = {"tinyjax.info", "tinyjax.export", "tinyjax.cli", "tinyjax.train.cli", "tinyjax.train.__main__",
       "tinyjax.search.__main__"}
TOP = ("tinyjax.configs",)   # config files: loaded by path, may import anything
#: training and input pipeline: what codegen must never pull in
TRAINING = ("tinyjax.train", "tinyjax.data")
HEAVY = ("tensorflow", "tensorflow_datasets", "optax", "orbax", "torch", "gpytorch")
TORCH = ("torch", "gpytorch")
TORCH_ALLOWED = {"tinyjax.search.rubik.gp"}   # the Rubik's-cube formula's GP fit, lazily
#: codegen's stages in data-flow order (sub-packages or top modules of ``tinyjax.codegen``)
CODEGEN_STAGES = ("numerics", "ops", "graph", "targets", "trace", "quant", "plan", "emit")
SEARCH_PARTS = ("tinyjax.search.tinynas", "tinyjax.search.rubik")


def package_files(repo: Path = REPO) -> dict[str, Path]:
    """Module name -> file, following ``[tool.setuptools.package-dir]``."""
    config = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = config["package-dir"]
    out = {}
    for package in config["packages"]:
        top = next(p for p in sorted(dirs, key=len, reverse=True)
                   if package == p or package.startswith(p + "."))
        folder = repo / dirs[top] / package[len(top):].lstrip(".").replace(".", "/")
        for f in folder.glob("*.py"):
            out[package if f.stem == "__init__" else f"{package}.{f.stem}"] = f
    return out


def imports_of(name: str, path: Path) -> set[str]:
    """Every name ``name`` imports, anywhere in the file (absolute names; ``from a import b`` gives
    both ``a`` and ``a.b``, :func:`edges` keeps the module)."""
    is_pkg = path.stem == "__init__"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


def edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``{module: the package's modules it imports}``: each imported name resolved to the module
    it names (``from a import b``: ``a.b`` when that is a module, else ``a``)."""
    ours = set(graph)
    out = {}
    for m, names in graph.items():
        mods = {n for n in names if n in ours}
        for n in list(mods):
            children = {x for x in names if x.rpartition(".")[0] == n}
            if children and children <= ours:
                mods.discard(n)
        out[m] = mods - {m}
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of :func:`edges` (strongly connected components of more than one
    module), each as a closed path ``[a, b, …, a]``."""
    e = edges(graph)
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(e.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(e) + 100))
    try:
        for v in sorted(e):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    out = []
    for comp in comps:   # a path through the component, for the message
        start, members = comp[0], set(comp)
        path, seen = [start], {start}
        while True:
            nxt = sorted(w for w in e[path[-1]] if w in members)
            back = [w for w in nxt if w == start]
            if back and len(path) > 1:
                out.append(path + [start])
                break
            fresh = [w for w in nxt if w not in seen]
            if not fresh:
                out.append(path + [start] if start in nxt else comp + [start])
                break
            path.append(fresh[0])
            seen.add(fresh[0])
    return out


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def codegen_stage(module: str) -> int | None:
    """The stage index of a ``tinyjax.codegen`` module (``None`` for the package itself)."""
    parts = module.split(".")
    if parts[:2] != ["tinyjax", "codegen"] or len(parts) < 3:
        return None
    return CODEGEN_STAGES.index(parts[2])


def violations(graph: dict[str, set[str]]) -> list[str]:
    """The layering rules (module docstring) over ``{module: imported names}``."""
    ours = set(graph)
    out = []
    codegen = {m for m in ours if _under(m, ("tinyjax.codegen",))}
    search = {m for m in ours if _under(m, ("tinyjax.search",))}
    top = CLI | {m for m in ours if _under(m, TOP)}
    library = ours - top
    core = library - codegen - search
    for m in sorted(core):
        for i in sorted(graph[m]):
            if _under(i, ("tinyjax.codegen", "tinyjax.search")):
                out.append(f"core module {m} imports {i}")
    for m in sorted(library):
        for i in sorted(graph[m]):
            if i in CLI:
                out.append(f"library module {m} imports the command-line module {i}")
            elif _under(i, TOP):
                out.append(f"library module {m} imports the config {i}")
    for m in sorted(ours):
        for i in sorted(graph[m]):
            if _under(i, ("codegen", "search")):
                out.append(f"{m} imports {i}: import it as tinyjax.{i}")
            if _under(i, TORCH) and m not in TORCH_ALLOWED:
                out.append(f"{m} imports {i} (only the formula's fitting module may)")
    for m in sorted(codegen):
        if (s := codegen_stage(m)) is None:
            continue
        for i in sorted(graph[m]):
            t = codegen_stage(i) if i in ours else None
            if t is not None and t > s:
                out.append(f"codegen stage {CODEGEN_STAGES[s]} ({m}) imports the later stage "
                           f"{CODEGEN_STAGES[t]} ({i})")
    for m in sorted(search):
        for a, b in (SEARCH_PARTS, SEARCH_PARTS[::-1]):
            if _under(m, (a,)):
                for i in sorted(graph[m]):
                    if _under(i, (b,)):
                        out.append(f"{m} imports {i}: TinyNAS and the formula stay apart")
    for m in sorted(codegen):       # what codegen reaches through library modules
        seen, stack = {m}, [m]
        while stack:
            cur = stack.pop()
            for i in graph.get(cur, ()):
                if _under(i, TRAINING + ("tinyjax.search",) + HEAVY):
                    out.append(f"codegen module {m} reaches {i} (via {cur})")
                elif i in library and i not in seen:
                    seen.add(i)
                    stack.append(i)
    out += [f"import circle: {' -> '.join(c)}" for c in circles(graph)]
    return out


@functools.cache
def _parsed() -> dict[str, frozenset[str]]:
    files = package_files()
    return {name: frozenset(i for i in imports_of(name, f) if i) for name, f in files.items()}


def import_graph() -> dict[str, set[str]]:
    """``{module: imported names}`` of the package (parsed once; each call returns a fresh copy
    that a test may change)."""
    return {name: set(names) for name, names in _parsed().items()}


def test_the_package_keeps_its_layers():
    graph = import_graph()
    assert {"tinyjax.spec", "tinyjax.codegen.graph", "tinyjax.codegen.ops.conv",
            "tinyjax.codegen.plan.patch", "tinyjax.search.tinynas.stage1", "tinyjax.train.trainer",
            "tinyjax.configs.search_embedded"} <= set(graph)
    assert violations(graph) == []


def test_every_codegen_module_has_a_stage():
    for m in import_graph():
        if m.startswith("tinyjax.codegen."):
            assert codegen_stage(m) is not None, m


@pytest.mark.parametrize("module, imported, rule", [
    ("tinyjax.models", "tinyjax.codegen.graph", "core module"),
    ("tinyjax.spec", "tinyjax.search", "core module"),
    ("tinyjax.codegen.graph", "tinyjax.info", "command-line module"),
    ("tinyjax.counting", "tinyjax.configs.search_embedded", "the config"),
    ("tinyjax.codegen.quant.quantize", "optax", "codegen module"),
    ("tinyjax.zoo", "torch", "only the formula"),
    ("tinyjax.codegen.plan.graph_plan", "codegen.graph", "import it as tinyjax.codegen.graph"),
    # a stage importing a later one: the integer reference reaching into the planner
    ("tinyjax.codegen.quant.interpreter", "tinyjax.codegen.plan.patch", "codegen stage quant"),
    ("tinyjax.codegen.numerics.intops", "tinyjax.codegen.graph", "codegen stage numerics"),
    ("tinyjax.codegen.plan.graph_plan", "tinyjax.codegen.emit.emitter", "codegen stage plan"),
    ("tinyjax.search.tinynas.stage1", "tinyjax.search.rubik.formula", "stay apart"),
])
def test_a_violation_is_reported(module, imported, rule):
    graph = import_graph()
    graph[module] = graph[module] | {imported}
    assert any(rule in v and imported in v for v in violations(graph))


def test_a_lazy_circle_is_reported():
    """A function-level import that closes a circle (the planner's buffers importing the graph plan,
    which imports them) fails the rule, with the circle in the message."""
    graph = import_graph()
    assert not circles(graph)
    graph["tinyjax.codegen.plan.buffers"] |= {"tinyjax.codegen.plan.graph_plan"}
    found = [v for v in violations(graph) if v.startswith("import circle")]
    assert found == ["import circle: tinyjax.codegen.plan.buffers -> tinyjax.codegen.plan.graph_plan"
                     " -> tinyjax.codegen.plan.buffers"], found


def test_a_lazy_import_in_a_file_is_an_edge(tmp_path):
    f = tmp_path / "graph_plan.py"
    f.write_text("def later():\n    from tinyjax.codegen.emit import emitter\n    return emitter\n")
    names = imports_of("tinyjax.codegen.plan.graph_plan", f)
    assert "tinyjax.codegen.emit.emitter" in names
    graph = import_graph()
    graph["tinyjax.codegen.plan.graph_plan"] = names
    e = edges(graph)["tinyjax.codegen.plan.graph_plan"]
    assert e == {"tinyjax.codegen.emit.emitter"}   # the module, not its package
    assert any("codegen stage plan" in v for v in violations(graph))


def test_circles_across_packages_are_found_once():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert circles(graph) == [["a", "b", "c", "a"]]


def test_codegen_reaching_training_through_a_core_module_is_reported():
    graph = import_graph()
    graph["tinyjax.layers"] = graph["tinyjax.layers"] | {"tinyjax.train.trainer"}
    found = violations(graph)
    assert any(v.startswith("codegen module tinyjax.codegen.graph reaches tinyjax.train.trainer")
               for v in found), found


def test_relative_imports_resolve_to_absolute_names(tmp_path):
    f = tmp_path / "__init__.py"
    f.write_text("from . import targets\nfrom .graph import Graph\nfrom ..spec import ModelSpec\n")
    assert imports_of("tinyjax.codegen", f) >= {"tinyjax.codegen.targets",
                                                "tinyjax.codegen.graph", "tinyjax.spec"}
