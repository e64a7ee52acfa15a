"""LOS state per device: marginal probability, spatial consistency, still devices."""
import numpy as np
import pytest

from netsim.los import draw_los_variable, los_state, update_los_variable
from netsim.pathloss import los_probability


@pytest.mark.parametrize("scenario", ["uma", "umi"])
@pytest.mark.parametrize("distance_m", [10.0, 50.0, 150.0, 400.0])
def test_marginal_los_probability_is_the_standards(scenario, distance_m):
    # TR 38.901 Table 7.4.2-1, worked by hand for UMi at 50 m: 18/50 + exp(-50/36)(1 - 18/50).
    if scenario == "umi" and distance_m == 50.0:
        assert los_probability("umi", 50.0) == pytest.approx(0.36 + np.exp(-50 / 36) * 0.64, rel=1e-12)
    rng = np.random.default_rng(1)
    n = 200_000
    z = draw_los_variable(rng, n)
    frac = los_state(scenario, z, np.full(n, distance_m)).mean()
    p = float(los_probability(scenario, distance_m))
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(frac - p) <= 4 * sigma + 1e-12


def test_marginal_kept_after_moves():
    rng = np.random.default_rng(2)
    n = 100_000
    z = draw_los_variable(rng, n)
    for _ in range(5):
        z = update_los_variable(z, np.full(n, 20.0), 50.0, rng)
    p = float(los_probability("uma", 120.0))
    frac = los_state("uma", z, np.full(n, 120.0)).mean()
    assert abs(frac - p) <= 4 * np.sqrt(p * (1 - p) / n)


def test_still_devices_keep_their_state_and_far_moves_decorrelate():
    rng = np.random.default_rng(3)
    n = 50_000
    z = draw_los_variable(rng, n)
    assert np.array_equal(update_los_variable(z, np.zeros(n), 50.0, rng), z)
    near = update_los_variable(z, np.full(n, 1.0), 50.0, rng)
    far = update_los_variable(z, np.full(n, 500.0), 50.0, rng)
    # Correlation of the Gaussian variable: exp(-d / d_co), within 4 standard errors.
    se = 1 / np.sqrt(n)
    assert np.corrcoef(z, near)[0, 1] == pytest.approx(np.exp(-1 / 50), abs=4 * se)
    assert abs(np.corrcoef(z, far)[0, 1] - np.exp(-10)) <= 4 * se
