"""The package's layering (DESIGN.md), checked on every run so that a violation fails CI.

* core library modules (``tinyjax.*`` outside codegen and search) never import ``tinyjax.codegen``
  or ``tinyjax.search``;
* ``tinyjax.codegen`` never reaches, directly or through the modules it imports, the trainer, the
  data pipeline, ``tinyjax.search``, or their heavy dependencies (TensorFlow, optax, Orbax, torch);
* command-line modules are the top layer: no library module imports them;
* torch and GPyTorch are imported by no module of the package but the Rubik's-cube formula's GP
  fit (``tinyjax.search.gp``, inside its fitting functions);
* the sub-packages are imported as ``tinyjax.codegen`` / ``tinyjax.search``, never by their folder
  names (``codegen.graph`` would load a second copy of every module, whose classes differ).

Why not import-linter: its graph builder (grimp) finds a package's modules by walking the root
package's folder, and ``tinyjax.codegen`` / ``tinyjax.search`` live in top-level folders mapped by
``pyproject.toml``'s ``package-dir``, so it reports them as missing. This test reads the same
mapping and every ``import`` statement (function-level ones too) with :mod:`ast`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]

CLI = {"tinyjax.info", "tinyjax.train", "tinyjax.export", "tinyjax.__main__",
       "tinyjax.search.__main__"}
#: training and input pipeline: what codegen must never pull in
TRAINING = ("tinyjax.trainer", "tinyjax.steps", "tinyjax.sharding", "tinyjax.checkpoints",
            "tinyjax.metric_writers", "tinyjax.run_setup", "tinyjax.optim", "tinyjax.data")
HEAVY = ("tensorflow", "tensorflow_datasets", "optax", "orbax", "torch", "gpytorch")
TORCH = ("torch", "gpytorch")
TORCH_ALLOWED = {"tinyjax.search.gp"}   # the Rubik's-cube formula's GP fit, lazily


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
    """Every module ``name`` imports, anywhere in the file (absolute names)."""
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


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(graph: dict[str, set[str]]) -> list[str]:
    """The layering rules (module docstring) over ``{module: imported names}``."""
    ours = set(graph)
    out = []
    codegen = {m for m in ours if _under(m, ("tinyjax.codegen",))}
    search = {m for m in ours if _under(m, ("tinyjax.search",))}
    library = ours - CLI
    core = library - codegen - search
    for m in sorted(core):
        for i in sorted(graph[m]):
            if _under(i, ("tinyjax.codegen", "tinyjax.search")):
                out.append(f"core module {m} imports {i}")
    for m in sorted(library):
        for i in sorted(graph[m]):
            if i in CLI:
                out.append(f"library module {m} imports the command-line module {i}")
    for m in sorted(ours):
        for i in sorted(graph[m]):
            if _under(i, ("codegen", "search")):
                out.append(f"{m} imports {i}: import it as tinyjax.{i}")
            if _under(i, TORCH) and m not in TORCH_ALLOWED:
                out.append(f"{m} imports {i} (only the formula's fitting module may)")
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
    return out


def import_graph() -> dict[str, set[str]]:
    files = package_files()
    return {name: {i for i in imports_of(name, f) if i} for name, f in files.items()}


def test_the_package_keeps_its_layers():
    graph = import_graph()
    assert {"tinyjax.spec", "tinyjax.codegen.graph", "tinyjax.codegen.ops.conv"} <= set(graph)
    assert violations(graph) == []


@pytest.mark.parametrize("module, imported, rule", [
    ("tinyjax.models", "tinyjax.codegen.graph", "core module"),
    ("tinyjax.spec", "tinyjax.search", "core module"),
    ("tinyjax.codegen.graph", "tinyjax.info", "command-line module"),
    ("tinyjax.codegen.quantize", "optax", "codegen module"),
    ("tinyjax.zoo", "torch", "only the formula"),
    ("tinyjax.codegen.memory", "codegen.graph", "import it as tinyjax.codegen.graph"),
])
def test_a_violation_is_reported(module, imported, rule):
    graph = import_graph()
    graph[module] = graph[module] | {imported}
    assert any(rule in v and imported in v for v in violations(graph))


def test_codegen_reaching_training_through_a_core_module_is_reported():
    graph = import_graph()
    graph["tinyjax.layers"] = graph["tinyjax.layers"] | {"tinyjax.trainer"}
    found = violations(graph)
    assert any(v.startswith("codegen module tinyjax.codegen.graph reaches tinyjax.trainer")
               for v in found), found


def test_relative_imports_resolve_to_absolute_names(tmp_path):
    f = tmp_path / "__init__.py"
    f.write_text("from . import kernels\nfrom .graph import Graph\nfrom ..spec import ModelSpec\n")
    assert imports_of("tinyjax.codegen", f) >= {"tinyjax.codegen.kernels",
                                                "tinyjax.codegen.graph", "tinyjax.spec"}
