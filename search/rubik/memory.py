"""The Rubik's-cube formula under a memory budget: the largest network along the formula's curve
whose planned peak SRAM (and flash) fit.

The curve is ``F -> solve(formula, F)``: r(F) and d(F) from the formula, w solved on the counted
MACs, so the proportions between r, d and w stay the formula's. Memory comes from the codegen plan
the C arena uses: ``peak_sram_bytes`` (input image, activations, scratch, alignment, in bytes) and
the int8 weights and constants in flash (``flash_bytes`` of the deployment graph).

Search: a log-spaced scan of ``F`` over :data:`CURVE_MACS` (peak memory is not monotone in F
along the curve: rounding of resolution, repeats and channels), the largest scanned network that
fits, then bisection over ``F`` between it and the next scanned point until the two are within
0.1% of MACs. The answer's ``next`` is the network just after it along the curve, which does not fit.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from tinyjax.devices import DEFAULT_TARGET
from tinyjax.search.rubik.formula import Formula, FormulaError, Solution, solve
from tinyjax.units import format_bytes, format_count

__all__ = ["BudgetResult", "CURVE_MACS", "CurvePoint", "curve_point", "largest_within"]

CURVE_MACS = (5_000_000, 800_000_000)   # the part of the curve walked (MACs)
GRID = 48


@dataclass(frozen=True)
class CurvePoint:
    """A network on the curve with its planned arena ``peak_sram`` and ``flash`` (bytes)."""

    solution: Solution
    peak_sram: int
    flash: int

    def fits(self, sram_bytes: int, flash_bytes: int | None) -> bool:
        return self.peak_sram <= sram_bytes and (flash_bytes is None or self.flash <= flash_bytes)


@dataclass(frozen=True)
class BudgetResult:
    """The largest fitting network ``best`` and the ``next`` one along the curve (None when the
    whole walked curve fits). Budgets in bytes; ``target`` is the codegen kernel target."""

    best: CurvePoint
    next: CurvePoint | None
    sram_bytes: int
    flash_bytes: int | None
    target: str


@functools.lru_cache(maxsize=4096)
def _memory(spec, target: str) -> tuple[int, int]:
    from tinyjax.codegen.graph import graph_from_spec
    from tinyjax.codegen.plan.graph_plan import peak_sram_bytes
    from tinyjax.codegen.targets import flash_bytes

    return peak_sram_bytes(spec, target), flash_bytes(graph_from_spec(spec))


def curve_point(formula: Formula, macs: int, target: str = DEFAULT_TARGET) -> CurvePoint:
    """``solve(formula, macs)`` with its planned memory on ``target``."""
    sol = solve(formula, int(macs))
    peak, flash = _memory(sol.spec.with_(name="rubik"), target)
    return CurvePoint(sol, peak, flash)


def _too_small(points: list[CurvePoint], sram_bytes: int, flash_bytes: int | None) -> FormulaError:
    low = min(points, key=lambda p: p.peak_sram)
    parts = [f"nothing along the formula's curve fits {format_bytes(sram_bytes)} of SRAM"
             + (f" and {format_bytes(flash_bytes)} of flash" if flash_bytes is not None else "")]
    if low.peak_sram > sram_bytes:
        s = low.solution
        parts.append(f"the smallest peak it reaches is {format_bytes(low.peak_sram)} "
                     f"({format_count(s.macs)} MACs at {s.resolution} px)")
    if flash_bytes is not None:
        fl = min(points, key=lambda p: p.flash)
        if fl.flash > flash_bytes:
            parts.append(f"the least flash it needs is {format_bytes(fl.flash)} "
                         f"({format_count(fl.solution.params)} parameters)")
    return FormulaError("; ".join(parts))


def largest_within(formula: Formula, sram_bytes: int, flash_bytes: int | None = None,
                   target: str = DEFAULT_TARGET, macs_range: tuple[int, int] = CURVE_MACS,
                   grid: int = GRID, rtol: float = 1e-3) -> BudgetResult:
    """The largest network along the formula's curve whose planned peak SRAM is at most
    ``sram_bytes`` and, when given, whose flash is at most ``flash_bytes`` (module docstring).
    :class:`FormulaError` (naming the smallest peak the curve reaches) when none fits."""
    from tinyjax.codegen.targets import get_target

    get_target(target)   # an unknown target: one-line error before any work
    for name, v in (("SRAM budget", sram_bytes), ("flash budget", flash_bytes)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise FormulaError(f"the {name} must be a positive number of bytes, got {v!r}")
    point = functools.partial(curve_point, formula, target=target)
    scan = [int(f) for f in np.geomspace(macs_range[0], macs_range[1], grid)]
    points = [point(f) for f in scan]
    ok = [i for i, p in enumerate(points) if p.fits(sram_bytes, flash_bytes)]
    if not ok:
        raise _too_small(points, sram_bytes, flash_bytes)
    i = ok[-1]
    if i == len(scan) - 1:
        return BudgetResult(points[i], None, sram_bytes, flash_bytes, target)
    lo, hi = scan[i], scan[i + 1]
    best, nxt = points[i], points[i + 1]
    while hi / lo > 1 + rtol:
        mid = int(math.sqrt(lo * hi))
        p = point(mid)
        if p.fits(sram_bytes, flash_bytes):
            lo, best = mid, p
        else:
            hi, nxt = mid, p
    return BudgetResult(best, nxt, sram_bytes, flash_bytes, target)
