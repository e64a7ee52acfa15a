"""Golden values worked by hand from 3GPP TR 38.901 Table 7.4.1-1 / 7.4.2-1 (c = 299792458 m/s)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim.pathloss import MODELS, breakpoint_distance_m, los_probability, pathloss_db, shadowing_std_db

FC = 3.5e9  # 20 log10(3.5) = 10.881361; 21.3 log10(3.5) = 11.588650


@pytest.mark.parametrize(
    "model, d2d, expected",
    [
        # UMa LOS, h_BS 25, h_UT 1.5, d2D 100 m:
        #   d3D = sqrt(100^2 + 23.5^2) = 102.724242, log10 = 2.011673
        #   d'_BP = 4 * 24 * 0.5 * 3.5e9 / c = 560.3877 m > 100 -> PL1
        #   PL1 = 28 + 22 * 2.011673 + 10.881361 = 83.138172
        ("3gpp-uma-los", 100.0, 83.138172),
        # UMa NLOS, 100 m: PL' = 13.54 + 39.08 * 2.011673 + 10.881361 - 0 = 103.037540 > LOS
        ("3gpp-uma-nlos", 100.0, 103.037540),
        # UMa LOS, 1000 m (beyond d'_BP): d3D = 1000.276081, log10 = 3.000120
        #   PL2 = 28 + 40 * 3.000120 + 10.881361 - 9 log10(560.3877^2 + 23.5^2)
        #       = 28 + 120.004795 + 10.881361 - 9 * 5.497741 = 109.406488
        ("3gpp-uma-los", 1000.0, 109.406488),
        # UMi street canyon LOS, h_BS 10, h_UT 1.5, 50 m: d3D = sqrt(2500 + 72.25) = 50.717354,
        #   log10 = 1.705156; d'_BP = 4 * 9 * 0.5 * 3.5e9 / c = 210.1454 m -> PL1
        #   PL1 = 32.4 + 21 * 1.705156 + 10.881361 = 79.089644
        ("3gpp-umi-los", 50.0, 79.089644),
        # UMi NLOS, 50 m: PL' = 35.3 * 1.705156 + 22.4 + 11.588650 = 94.180666
        ("3gpp-umi-nlos", 50.0, 94.180666),
        # 128.1 + 37.6 log10(0.5) = 128.1 - 11.318728 = 116.781272 (2D distance)
        ("macro-128.1", 500.0, 116.781272),
    ],
)
def test_golden_values(model, d2d, expected):
    assert pathloss_db(model, d2d, FC) == pytest.approx(expected, abs=2e-4)


def test_free_space_golden():
    # 20 log10(4 pi * 1000 * 2.4e9 / c) = 20 log10(100600.6) = 100.0521 dB (the textbook 100.05 dB)
    assert pathloss_db("free-space", 1000.0, 2.4e9) == pytest.approx(100.0521, abs=1e-3)


def test_log_distance_reference():
    # PL(d0) + 10 n log10(d / d0) = 40 + 10 * 3 * log10(100) = 100
    assert pathloss_db("log-distance", 100.0, 2e9, exponent=3.0, reference_loss_db=40.0) == pytest.approx(100.0)
    # Default PL(d0) is free space at d0 = 1 m: at d0 the two models agree.
    assert pathloss_db("log-distance", 1.0, 2e9) == pytest.approx(pathloss_db("free-space", 1.0, 2e9))


def test_breakpoint_golden():
    # UMa: 4 * (25 - 1) * (1.5 - 1) * 3.5e9 / c = 560.3877 m
    assert breakpoint_distance_m(3.5e9, 25.0, 1.5) == pytest.approx(560.3877, abs=1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_below_minimum_distance_is_clipped(model):
    # Documented behaviour: d2D below the model's minimum is clipped to it (finite, flat).
    minimum = 1.0 if model in ("free-space", "log-distance") else 10.0
    near = pathloss_db(model, np.array([0.0, 0.5 * minimum, minimum]), FC)
    assert np.all(np.isfinite(near))
    assert np.all(near == near[-1])
    assert pathloss_db(model, 2.0 * minimum, FC) > near[-1]


@pytest.mark.parametrize("model", MODELS)
def test_monotone_in_distance(model):
    d = np.linspace(10.0, 5000.0, 500)
    pl = pathloss_db(model, d, FC)
    assert np.all(np.diff(pl) >= -1e-9)


@pytest.mark.parametrize("model", ["3gpp-uma-nlos", "3gpp-umi-nlos"])
def test_nlos_never_below_los(model):
    d = np.geomspace(10.0, 5000.0, 200)
    los = pathloss_db(model.replace("nlos", "los"), d, FC)
    assert np.all(pathloss_db(model, d, FC) >= los)


def test_broadcasting():
    d = np.full((4, 3), 100.0)
    assert pathloss_db("3gpp-uma-los", d, FC).shape == (4, 3)
    assert pathloss_db("3gpp-uma-los", np.array([100.0, 200.0]), FC, ut_height_m=np.array([1.5, 10.0])).shape == (2,)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"model": "cost231"}, "model"),
        ({"frequency_hz": 200e9}, "frequency_hz"),
        ({"ut_height_m": 30.0}, "ut_height_m"),
        ({"exponent": 3.0}, "exponent"),
    ],
)
def test_errors_name_field(kwargs, field):
    args = {"model": "3gpp-uma-los", "distance_2d_m": 100.0, "frequency_hz": FC} | kwargs
    with pytest.raises(ValueError, match=field):
        pathloss_db(**args)


@pytest.mark.parametrize(
    "scenario, d, h_ut, expected",
    [
        # UMi: 18/50 + exp(-50/36) (1 - 18/50) = 0.36 + 0.249352 * 0.64 = 0.519585
        ("umi", 50.0, 1.5, 0.519585),
        # UMa, h_UT <= 13: 18/100 + exp(-100/63) * 0.82 = 0.18 + 0.204477 * 0.82 = 0.347671
        ("uma", 100.0, 1.5, 0.347671),
        # UMa, h_UT = 23: C' = ((23 - 13)/10)^1.5 = 1; factor 1 + 1.25 * 1 * exp(-100/150) = 1.641771
        #   0.347671 * 1.641771 = 0.570796
        ("uma", 100.0, 23.0, 0.570796),
        ("uma", 10.0, 1.5, 1.0),
        ("3gpp-umi-nlos", 18.0, 1.5, 1.0),
    ],
)
def test_los_probability_golden(scenario, d, h_ut, expected):
    assert los_probability(scenario, d, h_ut) == pytest.approx(expected, abs=1e-5)


@given(st.floats(min_value=0.0, max_value=1e4))
def test_los_probability_is_a_probability(d):
    for scenario in ("uma", "umi"):
        p = los_probability(scenario, d)
        assert 0.0 <= p <= 1.0


def test_shadowing_std():
    assert shadowing_std_db("3gpp-uma-los") == 4.0
    assert shadowing_std_db("3gpp-umi-nlos") == 7.82
    assert shadowing_std_db("log-distance", shadowing_std_db=5.0) == 5.0
    with pytest.raises(ValueError, match="model"):
        shadowing_std_db("nope")


@pytest.mark.parametrize("scenario", ["uma", "umi"])
def test_per_device_los_model_picks_the_state_formula(scenario):
    d = np.geomspace(10.0, 3000.0, 50)
    los = np.arange(d.size) % 3 == 0
    pl = pathloss_db(f"3gpp-{scenario}", d, FC, los=los)
    assert np.array_equal(pl[los], pathloss_db(f"3gpp-{scenario}-los", d[los], FC))
    assert np.array_equal(pl[~los], pathloss_db(f"3gpp-{scenario}-nlos", d[~los], FC))
    # The NLOS loss is max(PL_LOS, PL'_NLOS) (TR 38.901 Table 7.4.1-1): never below the LOS one.
    assert np.all(pathloss_db(f"3gpp-{scenario}", d, FC, los=False) >= pathloss_db(f"3gpp-{scenario}", d, FC, los=True))


def test_los_argument_is_required_exactly_by_per_device_models():
    with pytest.raises(ValueError, match="requires a per-device los"):
        pathloss_db("3gpp-uma", 100.0, FC)
    with pytest.raises(ValueError, match="does not take"):
        pathloss_db("3gpp-uma-los", 100.0, FC, los=True)
