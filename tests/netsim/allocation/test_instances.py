"""Random allocation problems: retention curves have the shape the solvers assume; seeded draws repeat."""

import numpy as np
import pytest

from netsim.allocation import random_problem, random_retention


def test_retention_is_zero_then_non_decreasing_concave_to_one():
    ret = random_retention(np.random.default_rng(0), 50, 32)
    assert ret.shape == (50, 33)
    assert np.all(ret[:, 0] == 0) and np.allclose(ret[:, -1], 1.0, rtol=0, atol=1e-12)
    steps = np.diff(ret, axis=1)
    assert np.all(steps >= 0)
    # Sorted importances: each extra token adds no more than the one before (up to rounding).
    assert np.all(np.diff(steps, axis=1) <= 1e-12)


def test_problem_magnitudes_follow_the_documented_model():
    p = random_problem(np.random.default_rng(1), 400, 16, min_distance_m=50.0, max_distance_m=500.0,
                       shadowing_std_db=0.0)
    # -174 dBm/Hz + 9 dB noise figure = -165 dBm/Hz
    assert p.noise_psd_w_per_hz == pytest.approx(10 ** (-19.5), rel=1e-12)
    # Without shadowing the gain is the 128.1 + 37.6 log10(d_km) path loss, d in [50, 500] m.
    loss_db = -10 * np.log10(p.gain_lin)
    assert loss_db.min() >= 128.1 + 37.6 * np.log10(0.05) - 1e-9
    assert loss_db.max() <= 128.1 + 37.6 * np.log10(0.5) + 1e-9
    assert np.all((p.deadline_s >= 2.0) & (p.deadline_s <= 5.0))
    assert np.all(p.energy_budget_j > p.compute_energy_j)


def test_same_generator_state_same_problem():
    a = random_problem(np.random.default_rng(7), 5, per_token_compute=True)
    b = random_problem(np.random.default_rng(7), 5, per_token_compute=True)
    for name in ("gain_lin", "deadline_s", "energy_budget_j", "retention", "compute_time_per_token_s"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
