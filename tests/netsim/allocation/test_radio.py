"""Radio sub-problems: the SNR inverse, least bandwidth, the power step, the alone time."""

from __future__ import annotations

import numpy as np
from allocation_reference import N0
from pytest import approx
from scipy.special import lambertw

from netsim import ofdma
from netsim.allocation.radio import (
    max_power_for_energy_w,
    min_bandwidth_hz,
    min_tx_time_alone_s,
    rate_bps,
    solve_snr,
)
from netsim.channel import ChannelConfig
from netsim.world import DevicePlan, Transfer, World, WorldConfig

def test_snr_inverse_matches_lambert_w():
    # ln(1 + y) = c y  <=>  y = -W_{-1}(-c e^{-c}) / c - 1 (scipy's Lambert W as reference).
    # (Near c = 1 the branch point makes the Lambert W reference itself inaccurate.)
    c = np.concatenate([np.logspace(-12, -1e-3, 400), 1 - np.logspace(-3, -1, 50)])
    ref = -lambertw(-c * np.exp(-c), -1).real / c - 1
    np.testing.assert_allclose(solve_snr(c), ref, rtol=1e-9)
    # Closer to 1, check the defining equation instead.
    c = 1 - np.logspace(-12, -4, 50)
    y = solve_snr(c)
    np.testing.assert_allclose(np.log1p(y), c * y, rtol=1e-12)
    assert solve_snr(np.array([1.0, 2.0]))[0] == 0 and np.isinf(solve_snr(np.array([0.0])))[0]


def test_min_bandwidth_round_trip_and_limit():
    rng = np.random.default_rng(1)
    p, g = rng.uniform(0.01, 0.2, 200), 10 ** rng.uniform(-13, -8, 200)
    limit = p * g / (N0 * np.log(2))  # wideband limit of the rate, bit/s
    r = limit * rng.uniform(1e-6, 0.999, 200)
    b = min_bandwidth_hz(r, p, g, N0)
    np.testing.assert_allclose(rate_bps(b, p, g, N0), r, rtol=1e-10)
    assert np.all(np.isinf(min_bandwidth_hz(limit * 1.0001, p, g, N0)))


def test_power_step_meets_energy_budget_exactly():
    rng = np.random.default_rng(2)
    b, s = rng.uniform(1e5, 2e7, 100), rng.uniform(1e5, 1e7, 100)
    g = 10 ** rng.uniform(-12, -9, 100)
    e_min = s * N0 * np.log(2) / g  # minimum energy per payload (Shannon limit)
    e = e_min * rng.uniform(1.01, 50, 100)
    p = max_power_for_energy_w(b, s, e, np.inf, g, N0)
    np.testing.assert_allclose(p * s / rate_bps(b, p, g, N0), e, rtol=1e-10)
    # Capped by max power, and impossible below the minimum energy.
    assert np.all(max_power_for_energy_w(b, s, e, 1e-6, g, N0) <= 1e-6)
    assert np.all(max_power_for_energy_w(b, s, 0.5 * e_min, 1.0, g, N0) == 0)


def test_alone_time_is_the_binding_limit():
    g, s, w = 1e-10, 5e6, 20e6
    t, energy_limited = min_tx_time_alone_s(s, 10.0, 0.2, g, N0, w)
    assert not energy_limited and np.isclose(t, s / rate_bps(w, 0.2, g, N0))
    t, energy_limited = min_tx_time_alone_s(s, 3e-3, 0.2, g, N0, w)
    assert energy_limited
    # At t the energy budget is spent exactly.
    p = 3e-3 / t
    np.testing.assert_allclose(rate_bps(w, p, g, N0) * t, s, rtol=1e-10)


def test_world_rate_is_the_allocations_rate_function_cap_included():
    # The planner's forward model (allocation.radio.rate_bps with the cell's cap) and the
    # World's link rate are one function: equal to rounding for the same SNR and cap, also
    # where the 256-QAM cap binds (the strongest device: narrow band, high power, high SNR).
    cfg = WorldConfig(num_devices=3, channel=ChannelConfig(fading="none", shadowing=False))
    world = World(cfg, seed=8)
    state = world.channel_state()
    order = np.argsort(-state.gain_lin)  # strongest first: it gets the narrow band
    bandwidth = np.array([3.6e4, 5e6, 1.2e7])[np.argsort(order)]
    power = np.array([0.19, 0.1, 0.01])[np.argsort(order)]
    plans = [DevicePlan(i, [Transfer("uplink", 1e5)], bandwidth[i], power[i]) for i in range(3)]
    world.run_round(1, plans, 10.0)
    cap = cfg.ofdma.max_spectral_efficiency
    planned = rate_bps(bandwidth, power, state.gain_lin, state.noise_psd_w_per_hz, cap)
    np.testing.assert_allclose(world._rate_ul, planned, rtol=1e-13)
    i, rest = order[0], order[1:]
    assert planned[i] == approx(bandwidth[i] * cap, rel=1e-15)  # the cap binds
    assert np.all(planned[rest] < bandwidth[rest] * cap)
    uncapped = rate_bps(bandwidth, power, state.gain_lin, state.noise_psd_w_per_hz)
    assert uncapped[i] > planned[i] and uncapped[i] == approx(
        float(ofdma.capped_shannon_rate_bps(bandwidth[i], power[i] * state.gain_lin[i] / (state.noise_psd_w_per_hz * bandwidth[i])))
    )
