"""TinyNet's Rubik's-cube formula: resolution and depth as Gaussian-process curves over FLOPs, width
solved from the FLOPs constraint.

:mod:`~tinyjax.search.rubik.formula` (the formula: :class:`Formula`, :func:`fit_formula`,
:func:`builtin_formula`, :func:`solve`, :func:`plot_fit`), :mod:`~tinyjax.search.rubik.gp` (the
GPyTorch fit, evaluated in numpy), :mod:`~tinyjax.search.rubik.memory` (the formula under a memory
budget), :mod:`~tinyjax.search.rubik.sampling` (the data: (r, d, w) networks sampled, trained and
their frontier; ``python -m tinyjax.search.rubik.sampling``). The formula's names resolve lazily
here: ``from tinyjax.search.rubik import solve``.
"""

from __future__ import annotations

_PUBLIC = ("BUILTIN_PATH", "Formula", "FormulaError", "Solution", "builtin_formula", "builtin_points",
           "check_table", "fit_builtin", "fit_formula", "plot_fit", "read_points", "solution_lines",
           "solve")
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import tinyjax.search.rubik.formula as formula

        return getattr(formula, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
