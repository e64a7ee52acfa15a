import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim.energy import (
    DeviceConfig,
    ServerConfig,
    compute_energy_j,
    compute_power_w,
    compute_time_s,
    draw_devices,
    drawn_energy_j,
)


def test_compute_golden():
    # 8e9 FLOPs at 2 GHz x 8 FLOPs/cycle: 1e9 cycles, 0.5 s; energy 1e-28 * 1e9 * (2e9)^2 = 0.4 J
    assert compute_time_s(8e9, 2e9, 8.0) == pytest.approx(0.5)
    assert compute_energy_j(8e9, 2e9, 8.0, 1e-28) == pytest.approx(0.4)
    # power kappa f^3 = 0.8 W, times 0.5 s = 0.4 J: the two forms agree
    assert compute_power_w(2e9, 1e-28) * 0.5 == pytest.approx(0.4)
    assert drawn_energy_j(0.2, 3.0) == pytest.approx(0.6)


def test_draw_devices_ranges_and_determinism():
    cfg = DeviceConfig(cpu_hz_range=(1e9, 2e9), battery_j_range=(10.0, 10.0))
    a = draw_devices(cfg, 1000, np.random.default_rng(0))
    b = draw_devices(cfg, 1000, np.random.default_rng(0))
    assert np.array_equal(a.cpu_hz, b.cpu_hz)
    assert a.cpu_hz.min() >= 1e9 and a.cpu_hz.max() <= 2e9
    assert np.all(a.battery_j == 10.0)
    assert a.max_power_w[0] == pytest.approx(0.19952623)


def test_energy_budget_range_is_drawn_last():
    fixed = DeviceConfig(cpu_hz_range=(1e9, 2e9))
    ranged = dataclasses.replace(fixed, energy_budget_j_range=(0.4, 1.2))
    a = draw_devices(fixed, 2000, np.random.default_rng(3))
    b = draw_devices(ranged, 2000, np.random.default_rng(3))
    # the other draws are those of the config without a range
    assert np.array_equal(a.cpu_hz, b.cpu_hz) and np.array_equal(a.battery_j, b.battery_j)
    assert np.all(a.energy_budget_j == fixed.energy_budget_j)
    assert b.energy_budget_j.min() >= 0.4 and b.energy_budget_j.max() <= 1.2
    # uniform on [0.4, 1.2]: mean 0.8, sd 0.8 / sqrt(12) / sqrt(2000) = 0.0052; 4 sigma
    assert b.energy_budget_j.mean() == pytest.approx(0.8, abs=0.021)


@pytest.mark.parametrize(
    "field, value",
    [("energy_budget_j_range", (1.0, 0.5)), ("energy_budget_j_range", (-0.1, 0.5)), ("cpu_hz_range", (2e9, 1e9)), ("flops_per_cycle", 0.0), ("kappa", -1.0), ("energy_budget_j", -1.0),
     ("battery_j_range", (-1.0, 2.0)), ("max_tx_power_dbm", 99.0)],
)
def test_device_config_errors(field, value):
    with pytest.raises(ValueError, match=field) as err:
        dataclasses.replace(DeviceConfig(), **{field: value})
    assert repr(value) in str(err.value)


@pytest.mark.parametrize("field, value", [("flops_per_s", 0.0), ("parallel_slots", 0), ("parallel_slots", 1.5)])
def test_server_config_errors(field, value):
    with pytest.raises(ValueError, match=field):
        ServerConfig(**{field: value})


@given(flops=st.floats(min_value=0, max_value=1e15), f=st.floats(min_value=1e6, max_value=5e9),
       kappa=st.floats(min_value=0, max_value=1e-26))
def test_energy_never_negative(flops, f, kappa):
    assert compute_energy_j(flops, f, 8.0, kappa) >= 0
    assert compute_time_s(flops, f, 8.0) >= 0
