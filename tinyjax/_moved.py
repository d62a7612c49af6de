"""Module names tinyjax used before its packages were laid out by stage, kept importable.

``import tinyjax.codegen.memory`` (or ``python -m tinyjax.search.sampling``) still works: a finder
on ``sys.meta_path`` answers for each old name with a thin module that forwards every attribute to
the module that holds the code now, after a :class:`DeprecationWarning` that names the new home.
The objects are the same ones (no second copy of a module, so classes compare equal); only the
old name is an alias. Nothing here imports a tinyjax module until an old name is used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings

#: old module name -> the module(s) that hold its names now (looked up in order)
MOVED: dict[str, tuple[str, ...]] = {
    "tinyjax.codegen.errors": ("tinyjax.errors",),
    "tinyjax.codegen.fixedpoint": ("tinyjax.codegen.numerics.fixedpoint",),
    "tinyjax.codegen.quantmath": ("tinyjax.codegen.numerics.quantmath",),
    "tinyjax.codegen.intops": ("tinyjax.codegen.numerics.intops",),
    "tinyjax.codegen.floatref": ("tinyjax.codegen.numerics.floatref",),
    "tinyjax.codegen.fakequant": ("tinyjax.codegen.numerics.fakequant",),
    "tinyjax.codegen.kernels": ("tinyjax.codegen.targets",),
    "tinyjax.codegen.trace_values": ("tinyjax.codegen.trace.values",),
    "tinyjax.codegen.trace_handlers": ("tinyjax.codegen.trace.handlers",),
    "tinyjax.codegen.quantize": ("tinyjax.codegen.quant.quantize",),
    "tinyjax.codegen.interpreter": ("tinyjax.codegen.quant.interpreter",),
    "tinyjax.codegen.planner": ("tinyjax.codegen.plan.buffers",),
    "tinyjax.codegen.plan_algorithms": ("tinyjax.codegen.plan.algorithms",),
    "tinyjax.codegen.orders": ("tinyjax.codegen.plan.orders",),
    "tinyjax.codegen.memory": ("tinyjax.codegen.plan.graph_plan",),
    "tinyjax.codegen.patch": ("tinyjax.codegen.plan.patch", "tinyjax.codegen.plan.schedule"),
    "tinyjax.codegen.report": ("tinyjax.codegen.plan.report",),
    "tinyjax.codegen.c_runtime": ("tinyjax.codegen.emit.c_runtime",),
    "tinyjax.codegen.toolchain": ("tinyjax.codegen.emit.toolchain",),
    "tinyjax.search.units": ("tinyjax.units",),
    "tinyjax.search.space": ("tinyjax.search.tinynas.space",),
    "tinyjax.search.stage1": ("tinyjax.search.tinynas.stage1",),
    "tinyjax.search.stage1_report": ("tinyjax.search.tinynas.stage1_report",),
    "tinyjax.search.supernet": ("tinyjax.search.tinynas.supernet",),
    "tinyjax.search.supernet_train": ("tinyjax.search.tinynas.supernet_train",),
    "tinyjax.search.evolution": ("tinyjax.search.tinynas.evolution",),
    "tinyjax.search.evolution_plots": ("tinyjax.search.tinynas.evolution_plots",),
    "tinyjax.search.tinynas_stages": ("tinyjax.search.tinynas.stages",),
    "tinyjax.search.search_data": ("tinyjax.search.tinynas.data",),
    "tinyjax.search.search_export": ("tinyjax.search.tinynas.export",),
    "tinyjax.search.gp": ("tinyjax.search.rubik.gp",),
    "tinyjax.search.rubik_memory": ("tinyjax.search.rubik.memory",),
    "tinyjax.search.sampling": ("tinyjax.search.rubik.sampling",),
    "tinyjax.search.cam": ("tinyjax.train.cam",),
    "tinyjax.config": ("tinyjax.train.config",),
    "tinyjax.checkpoints": ("tinyjax.train.checkpoints",),
    "tinyjax.metric_writers": ("tinyjax.train.metric_writers",),
    "tinyjax.optim": ("tinyjax.train.optim",),
    "tinyjax.run_setup": ("tinyjax.train.run_setup",),
    "tinyjax.runs": ("tinyjax.train.runs",),
    "tinyjax.sharding": ("tinyjax.train.sharding",),
    "tinyjax.steps": ("tinyjax.train.steps",),
    "tinyjax.trainer": ("tinyjax.train.trainer",),
}


#: (module, attribute) -> the module that holds the attribute now (names moved out of a module that
#: stayed); the module's ``__getattr__`` calls :func:`moved_attribute`
MOVED_ATTRIBUTES: dict[tuple[str, str], str] = {
    ("tinyjax.models", "from_timm"): "tinyjax.timm_import",
    ("tinyjax.models", "variables_from_timm"): "tinyjax.timm_import",
    ("tinyjax.models", "DW_BLOCK_BYTES"): "tinyjax.depthwise",
    ("tinyjax.info", "min_resolution"): "tinyjax.cli",
    ("tinyjax.info", "mac_overhead_fraction"): "tinyjax.cli",
    ("tinyjax.info", "DEFAULT_MAX_MAC_OVERHEAD"): "tinyjax.devices",
}


def moved_attribute(module: str, name: str):
    """``module.name`` from the module that holds it now (:data:`MOVED_ATTRIBUTES`), after a
    :class:`DeprecationWarning`; :class:`AttributeError` for any other name. The new home is
    imported by name here, when the old name is used: an alias is data, not an import of the
    module that declares it (so it closes no import circle)."""
    target = MOVED_ATTRIBUTES.get((module, name))
    if target is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} moved to {target}.{name}; import it from there (the old name "
                  "will be removed)", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(target), name)


def _warn(old: str, stacklevel: int = 3) -> None:
    warnings.warn(f"{old} moved to {' and '.join(MOVED[old])}; import it from there "
                  f"(the old name will be removed)", DeprecationWarning, stacklevel=stacklevel)


class MovedModule(types.ModuleType):
    """An old module name: every attribute comes from the module(s) that hold it now."""

    def __init__(self, name: str, targets: tuple[types.ModuleType, ...]):
        super().__init__(name, f"moved to {', '.join(t.__name__ for t in targets)}")
        self.__targets = targets

    def __getattr__(self, attr: str):
        for target in self.__targets:
            try:
                return getattr(target, attr)
            except AttributeError:
                continue
        raise AttributeError(f"module {self.__name__!r} (moved to "
                             f"{self.__targets[0].__name__}) has no attribute {attr!r}")

    def __dir__(self):
        return sorted({n for t in self.__targets for n in dir(t)})


class MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names of :data:`MOVED`; ``runpy`` (``python -m OLD``) runs the new code."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, origin=f"alias of {MOVED[fullname][0]}")

    def create_module(self, spec):
        _warn(spec.name, stacklevel=6)
        return MovedModule(spec.name, tuple(importlib.import_module(t) for t in MOVED[spec.name]))

    def exec_module(self, module):
        return None

    def get_code(self, fullname):
        """The new module's code, for ``python -m OLD`` (runpy asks the loader for it). The person
        typing the old command is told the new one on stderr."""
        new = MOVED[fullname][0]
        print(f"tinyjax: 'python -m {fullname}' is now 'python -m {new}' (the old name will be "
              "removed)", file=sys.stderr)
        return importlib.util.find_spec(new).loader.get_code(new)


def install() -> None:
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())
