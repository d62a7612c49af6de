"""The Rubik's-cube formula: the built-in fit gives back TinyNet-A..E, and w solved on the counted
MACs meets any target in [10M, 400M]."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tinyjax.counting import count
from tinyjax.scaling import TINYNET, scale
from tinyjax.search.rubik.formula import (
    BUILTIN_PATH,
    Formula,
    FormulaError,
    builtin_formula,
    builtin_points,
    fit_formula,
    plot_fit,
    read_points,
    solve,
)
from tinyjax.zoo import TINYNET_RDW, efficientnet_b0, tinynet


@pytest.fixture(scope="module")
def formula():
    return builtin_formula()


@pytest.mark.parametrize("name", list(TINYNET_RDW))
def test_the_builtin_formula_gives_back_the_published_tinynet(formula, name):
    r, d, w = TINYNET_RDW[name]
    spec = tinynet(r, d, w)
    sol = solve(formula, count(spec).macs)
    assert abs(sol.r - r) <= 0.02 and abs(sol.d - d) <= 0.05 and abs(sol.w - w) <= 0.02, sol
    assert abs(sol.resolution - spec.resolution) <= 2


TARGETS_2PC = [int(t) for t in np.geomspace(20e6, 400e6, 32)]
TARGETS_5PC = [int(t) for t in np.geomspace(10e6, 19.9e6, 8)]


def test_counted_macs_are_within_2_percent_from_20M_to_400M(formula):
    errors = {t: solve(formula, t).error for t in TARGETS_2PC}
    assert len(errors) >= 30
    bad = {t: e for t, e in errors.items() if abs(e) > 0.02}
    assert not bad, bad


def test_counted_macs_are_within_5_percent_from_10M_to_20M(formula):
    bad = {t: e for t in TARGETS_5PC if abs(e := solve(formula, t).error) > 0.05}
    assert not bad, bad


def test_the_solution_is_the_scaled_base_and_its_counts(formula):
    sol = solve(formula, 100_000_000)
    again = scale(efficientnet_b0(), sol.r, sol.d, sol.w, rule=TINYNET, name=sol.spec.name)
    assert again == sol.spec and again.resolution == sol.resolution
    stats = count(sol.spec)
    assert (stats.macs, stats.params) == (sol.macs, sol.params)
    assert sol.error == pytest.approx(sol.macs / 100_000_000 - 1)


def test_mean_and_band_follow_the_fit_points(formula):
    pred = formula.predict([p[0] for p in builtin_points()])
    for i, (_, r, d) in enumerate(builtin_points()):
        assert abs(pred["r"][i] - r) < 0.01 and abs(pred["d"][i] - d) < 0.01
    far = formula.predict(10_000_000)          # below TinyNet-E: wider band than at the points
    assert far["r_std"][0] > pred["r_std"].max()


def test_a_bad_target_is_refused(formula):
    for bad in (0, -5, float("nan"), float("inf"), True, "100M"):
        with pytest.raises(FormulaError):
            solve(formula, bad)
    assert solve(formula, 1e8) == solve(formula, 100_000_000) == solve(formula, np.int64(10**8))


def test_formula_round_trips_through_json(formula, tmp_path):
    path = formula.save(tmp_path / "f.json")
    back = Formula.load(path)
    assert back == formula
    assert solve(back, 50_000_000) == solve(formula, 50_000_000)


@pytest.mark.parametrize("text, match", [
    ("{", "not valid JSON"),
    ('{"format": "other"}', "not a Rubik"),
    ('{"format": "tinyjax.rubik.formula/1"}', "missing"),
])
def test_a_malformed_formula_file_is_named(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(FormulaError, match=match):
        Formula.load(path)


def test_evaluating_a_formula_imports_no_torch():
    code = ("import sys; from tinyjax.search.rubik import builtin_formula, solve; "
            "solve(builtin_formula(), 60_000_000); "
            "assert not {'torch', 'gpytorch'} & set(sys.modules), 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_frontier_points_are_read_and_checked(tmp_path):
    good = tmp_path / "frontier.json"
    good.write_text(json.dumps([{"macs": 10**8, "r": 0.8, "d": 0.9, "w": 0.5, "top1": 0.4},
                                {"macs": 5 * 10**7, "r": 0.7, "d": 0.7, "w": 0.5, "top1": 0.3}]))
    assert read_points(good) == [(10**8, 0.8, 0.9), (5 * 10**7, 0.7, 0.7)]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"macs": 10**8, "r": -1, "d": 0.9}, {"macs": 1, "r": 1, "d": 1}]))
    with pytest.raises(FormulaError, match="positive"):
        read_points(bad)
    with pytest.raises(FormulaError, match="at least 2"):
        fit_formula([(10**8, 0.8, 0.9)])


def test_plot_shows_both_regressions(formula, tmp_path):
    pts = [{"macs": m, "r": r, "d": d} for m, r, d in builtin_points()]
    path = plot_fit(formula, tmp_path / "fit.png", frontier=pts[1:], samples=pts)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_the_shipped_formula_is_what_fit_builtin_gives():
    pytest.importorskip("gpytorch")
    from tinyjax.search.rubik.formula import fit_builtin

    fresh, shipped = fit_builtin().to_dict(), json.loads(BUILTIN_PATH.read_text())
    for key in ("r", "d"):
        for field in ("lengthscale", "outputscale", "noise", "mean_weight", "mean_bias"):
            assert fresh[key][field] == pytest.approx(shipped[key][field], rel=1e-4, abs=1e-9), field
    assert fresh["points"] == shipped["points"]


@pytest.mark.slow
def test_counted_macs_are_within_2_percent_on_a_dense_grid(formula):
    targets = [int(t) for t in np.geomspace(20e6, 400e6, 300)]
    bad = {t: e for t in targets if abs(e := solve(formula, t).error) > 0.02}
    assert not bad, bad
