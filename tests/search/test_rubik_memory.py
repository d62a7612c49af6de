"""The formula under a memory budget: the largest network along its curve whose planned peak SRAM
(and flash) fit, and the next one along the curve does not."""

import pytest

from tinyjax.codegen.graph import graph_from_spec
from tinyjax.codegen.plan.graph_plan import peak_sram_bytes
from tinyjax.codegen.targets import flash_bytes
from tinyjax.search.rubik.formula import FormulaError, builtin_formula
from tinyjax.search.rubik.memory import curve_point, largest_within

KIB = 1024


@pytest.fixture(scope="module")
def formula():
    return builtin_formula()


def test_256kB_gives_the_largest_network_whose_planned_peak_fits(formula):
    res = largest_within(formula, 256 * KIB)
    best, nxt = res.best, res.next
    assert best.peak_sram == peak_sram_bytes(best.solution.spec) <= 256 * KIB
    assert nxt is not None and nxt.peak_sram == peak_sram_bytes(nxt.solution.spec) > 256 * KIB
    assert nxt.solution.macs > best.solution.macs
    assert nxt.solution.target / best.solution.target < 1.002     # the very next step
    # the proportions are the formula's: r and d are its means at the network's target
    pred = formula.predict(best.solution.target)
    assert best.solution.d == pytest.approx(pred["d"][0])


def test_a_flash_budget_binds_too(formula):
    res = largest_within(formula, 512 * KIB, 2048 * KIB)
    assert res.best.flash == flash_bytes(graph_from_spec(res.best.solution.spec)) <= 2048 * KIB
    assert res.best.peak_sram <= 512 * KIB
    assert not res.next.fits(512 * KIB, 2048 * KIB)


def test_a_larger_budget_gives_a_larger_network(formula):
    small, large = (largest_within(formula, b * KIB).best for b in (128, 320))
    assert large.solution.macs > small.solution.macs and large.peak_sram > small.peak_sram


def test_1kB_is_refused_naming_the_smallest_peak(formula):
    smallest = curve_point(formula, 5_000_000).peak_sram
    with pytest.raises(FormulaError, match=f"smallest peak it reaches is {smallest / KIB:.1f} kB"):
        largest_within(formula, KIB)


def test_a_flash_budget_below_the_classifier_is_refused(formula):
    with pytest.raises(FormulaError, match="least flash it needs"):
        largest_within(formula, 256 * KIB, 1024 * KIB)


def test_a_two_class_network_fits_256kB_and_1MB(formula):
    two = formula.with_classes(2)
    res = largest_within(two, 256 * KIB, 1024 * KIB)
    spec = res.best.solution.spec
    assert spec.num_classes == 2 and res.best.fits(256 * KIB, 1024 * KIB)
    assert res.best.flash == flash_bytes(graph_from_spec(spec)) <= 1024 * KIB
    assert not res.next.fits(256 * KIB, 1024 * KIB)
    with pytest.raises(FormulaError):
        formula.with_classes(0)
