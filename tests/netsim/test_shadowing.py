import numpy as np
import pytest

from netsim.shadowing import decorrelation_distance_m, draw_shadowing_db, gudmundson_correlation, update_shadowing_db

N = 100_000


def test_gudmundson_golden():
    # exp(-50 / 50) = 0.367879
    assert gudmundson_correlation(50.0, 50.0) == pytest.approx(0.367879, abs=1e-6)
    assert gudmundson_correlation(0.0, 50.0) == 1.0
    assert decorrelation_distance_m("3gpp-uma-nlos") == 50.0
    assert decorrelation_distance_m("3gpp-umi-los") == 10.0


def test_marginal_and_correlation():
    rng = np.random.default_rng(0)
    std = 6.0
    s0 = draw_shadowing_db(rng, std, N)
    moved = np.full(N, 20.0)
    s1 = update_shadowing_db(s0, moved, std, 50.0, rng)
    # Marginal stays N(0, 36): std of the sample std is about std / sqrt(2N) = 0.013; tolerance 0.06
    assert s1.std() == pytest.approx(std, abs=0.06)
    assert s1.mean() == pytest.approx(0.0, abs=4 * std / np.sqrt(N))
    # Correlation exp(-20/50) = 0.670320 within 4.5/sqrt(N)
    assert np.corrcoef(s0, s1)[0, 1] == pytest.approx(np.exp(-0.4), abs=4.5 / np.sqrt(N))


def test_device_that_does_not_move_keeps_its_value():
    rng = np.random.default_rng(1)
    s0 = draw_shadowing_db(rng, 8.0, 5)
    s1 = update_shadowing_db(s0, np.zeros(5), 8.0, 50.0, rng)
    assert np.array_equal(s0, s1)
