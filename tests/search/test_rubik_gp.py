"""The Gaussian-process fit behind the Rubik's-cube formula: GPyTorch fits, numpy evaluates."""

import numpy as np
import pytest

from tinyjax.search.rubik.gp import GP, GPError, fit_gp

pytest.importorskip("gpytorch")


def truth(x):
    return 0.6 + 0.15 * x + 0.08 * np.sin(2.0 * x)


def noisy_data(seed):
    """30 points of :func:`truth` on [-3, 0] (the span of log MACs ratios), noise std 0.01."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-3.0, 0.0, 30))
    return x, truth(x) + rng.normal(0.0, 0.01, x.shape)


@pytest.fixture(scope="module")
def fits():
    return [fit_gp(*noisy_data(seed), min_lengthscale=0.5) for seed in range(6)]


@pytest.fixture(scope="module")
def noisy_fit(fits):
    return fits[0]


def test_numpy_posterior_equals_gpytorchs_to_1e5(noisy_fit):
    from tinyjax.search.rubik.gp import torch_posterior

    gp = noisy_fit
    grid = np.linspace(-3.5, 0.5, 41)
    mean, std = gp.predict(grid)
    t_mean, t_std = torch_posterior(gp, grid)
    assert np.max(np.abs(mean - t_mean)) < 1e-5
    assert np.max(np.abs(std - t_std)) < 1e-5


def test_a_known_curve_lies_within_the_two_sigma_band(fits):
    # 2σ of a calibrated posterior covers ~95% of the curve; errors are correlated along x, so
    # one noise draw can leave a stretch outside: the coverage is averaged over six draws
    grid = np.linspace(-2.9, -0.1, 57)
    coverage = []
    for gp in fits:
        mean, std = gp.predict(grid)
        z = np.abs(truth(grid) - mean) / std
        coverage.append(np.mean(z <= 2))
        assert z.max() < 3.5 and np.max(np.abs(truth(grid) - mean)) < 0.03
        assert np.max(2 * std) < 0.05                      # an informative band, not a blanket
        assert 0.25e-4 < gp.noise < 4e-4                   # noise variance 0.01² recovered
    assert np.mean(coverage) >= 0.9, coverage


def test_noise_free_points_are_interpolated_with_a_length_scale_floor():
    x = np.array([-2.8, -2.0, -1.35, -0.65, -0.14, 0.0])
    y = np.array([0.475, 0.68, 0.825, 0.84, 0.86, 1.0])
    gp = fit_gp(x, y, min_lengthscale=0.5, max_noise=1e-4)
    assert gp.lengthscale >= 0.5 - 1e-9 and gp.noise <= 1e-4 + 1e-12
    assert np.max(np.abs(gp.predict(x)[0] - y)) < 0.01


def test_gp_json_round_trip_predicts_the_same(noisy_fit):
    gp = noisy_fit
    back = GP.from_dict(gp.to_dict())
    grid = np.linspace(-3, 0, 7)
    assert back == gp
    np.testing.assert_array_equal(back.predict(grid)[0], gp.predict(grid)[0])


@pytest.mark.parametrize("bad", [
    {"kernel": "rbf"},                                            # fields missing
    {"kernel": "cubic", "x": [0], "y": [1], "lengthscale": 1, "outputscale": 1, "noise": 1,
     "mean_weight": 0, "mean_bias": 0},
    {"kernel": "rbf", "x": [0], "y": [1], "lengthscale": -1, "outputscale": 1, "noise": 1,
     "mean_weight": 0, "mean_bias": 0},
])
def test_malformed_gp_is_refused(bad):
    with pytest.raises(GPError):
        GP.from_dict(bad)


def test_fit_needs_two_finite_points():
    with pytest.raises(GPError):
        fit_gp([0.0], [1.0])
    with pytest.raises(GPError):
        fit_gp([0.0, np.nan], [1.0, 2.0])
