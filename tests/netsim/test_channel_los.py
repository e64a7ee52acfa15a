"""LOS state per device in the channel: path loss, shadowing sigma and fading follow it."""
import dataclasses

import numpy as np
import pytest

from netsim.channel import Channel, ChannelConfig
from netsim.mobility import RandomWaypointConfig
from netsim.pathloss import los_probability, pathloss_db
from netsim.units import db_to_lin
from netsim.world import World, WorldConfig

FC = 3.5e9


def make(config, d, seed=0):
    rngs = [np.random.default_rng([seed, k]) for k in range(3)]
    return Channel(config, len(d), 1, np.asarray(d, float), *rngs)


def step(ch, d, moved, seed):
    rngs = [np.random.default_rng([seed, 10 + k]) for k in range(3)]
    n = len(d)
    ch.update(np.asarray(d, float), np.asarray(moved, float), np.zeros(n), 0.01, *rngs)


@pytest.mark.parametrize("model", ["3gpp-uma", "3gpp-umi"])
@pytest.mark.parametrize("distance_m", [15.0, 40.0, 120.0, 400.0])
def test_fraction_los_is_the_standards_probability(model, distance_m):
    n = 40_000
    ch = make(ChannelConfig(pathloss_model=model), np.full(n, distance_m))
    p = float(los_probability(model.removeprefix("3gpp-"), distance_m))
    assert abs(ch.los.mean() - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("model", ["3gpp-uma", "3gpp-umi"])
def test_pathloss_and_shadowing_sigma_follow_the_state(model):
    n = 40_000
    d = np.full(n, 60.0)
    ch = make(ChannelConfig(pathloss_model=model, fading="none"), d)
    assert 0.2 < ch.los.mean() < 0.8  # both states present at 60 m
    los_pl = pathloss_db(model + "-los", 60.0, FC)
    nlos_pl = pathloss_db(model + "-nlos", 60.0, FC)
    assert np.all(ch.pathloss_db[ch.los] == los_pl) and np.all(ch.pathloss_db[~ch.los] == nlos_pl)
    # TR 38.901 Table 7.4.1-1: LOS 4 dB; NLOS 6 dB (UMa) / 7.82 dB (UMi). The sample std of
    # m normal draws has standard error sigma / sqrt(2 m).
    for state, sigma in ((True, 4.0), (False, 6.0 if model == "3gpp-uma" else 7.82)):
        s = ch.shadowing_db[ch.los == state]
        assert s.std() == pytest.approx(sigma, abs=4 * sigma / np.sqrt(2 * s.size))
    assert ch.wideband_gain_lin == pytest.approx(db_to_lin(-(ch.pathloss_db + ch.shadowing_db)), rel=1e-12)


def test_a_device_walking_out_loses_line_of_sight_and_keeps_its_shadowing_correlation():
    # Every device starts at 15 m (P_LOS = 1: all LOS) and walks out to 1 km in 5 m steps;
    # there P_LOS(UMa) = 18/1000 + exp(-1000/63)(1 - 0.018) = 0.018.
    n = 5_000
    cfg = ChannelConfig(pathloss_model="3gpp-uma", fading="none")
    ch = make(cfg, np.full(n, 15.0))
    assert ch.los.all()
    unit0 = ch.shadowing_db / 4.0
    flipped_shadowing_ok = True
    for k, d in enumerate(np.arange(20.0, 1000.0 + 1e-9, 5.0)):
        step(ch, np.full(n, d), np.full(n, 5.0), seed=k)
        # Shadowing is sigma(state) x the unit variable, whatever the state became.
        sigma = np.where(ch.los, 4.0, 6.0)
        flipped_shadowing_ok &= np.array_equal(ch.shadowing_db, ch._shadowing_unit * sigma)
    assert flipped_shadowing_ok
    p = float(los_probability("uma", 1000.0))
    assert abs(ch.los.mean() - p) <= 4 * np.sqrt(p * (1 - p) / n)
    assert np.corrcoef(unit0, ch._shadowing_unit)[0, 1] < 0.05  # 980 m >> 50 m: decorrelated


def test_still_devices_keep_their_state():
    n = 2_000
    d = np.full(n, 80.0)
    ch = make(ChannelConfig(pathloss_model="3gpp-umi"), d)
    before = ch.los.copy()
    for k in range(20):
        step(ch, d, np.zeros(n), seed=k)
    assert np.array_equal(before, ch.los)


def test_rician_for_los_rayleigh_for_nlos():
    # Independent devices, flat fading: |h|^2 has mean 1 in both states; its variance is
    # (1 + 2K) / (1 + K)^2 for Rician K (0.2137 at K = 9 dB) and 1 for Rayleigh. A sample
    # variance of m draws has standard error sqrt((mu4 - var^2) / m), bounded here by
    # sqrt(8 / m) (Rayleigh: mu4 = 9 - 1 = 8, larger than the Rician one).
    n = 100_000
    ch = make(ChannelConfig(pathloss_model="3gpp-uma", fading="rician", rician_k_db=9.0, shadowing=False), np.full(n, 40.0))
    power = ch._fading.power_gain()[:, 0]
    k = db_to_lin(9.0)
    for state, var in ((True, (1 + 2 * k) / (1 + k) ** 2), (False, 1.0)):
        x = power[ch.los == state]
        m = x.size
        assert m > 10_000
        assert x.mean() == pytest.approx(1.0, abs=4 * np.sqrt(var / m))
        assert x.var() == pytest.approx(var, abs=4 * np.sqrt(8.0 / m))


def test_rician_weight_changes_with_the_state_diffuse_process_goes_on():
    n = 3_000
    ch = make(ChannelConfig(pathloss_model="3gpp-uma", fading="rician"), np.full(n, 15.0))
    assert ch.los.all()
    diffuse_before = ch._fading.diffuse.copy()
    rngs = [np.random.default_rng([9, k]) for k in range(3)]
    # Jump to 2 km in one update without time for the fading to decorrelate (still device
    # Doppler 0, dt tiny): the diffuse gains are nearly unchanged, the LOS term is gone.
    cfg_speed = np.zeros(n)
    ch.update(np.full(n, 2000.0), np.full(n, 1985.0), cfg_speed, 1e-9, *rngs)
    nlos = ~ch.los
    assert nlos.mean() > 0.9
    assert np.all(ch._fading.los[nlos] == 0)
    assert np.allclose(ch._fading.gains()[nlos], ch._fading.diffuse[nlos])
    assert np.allclose(ch._fading.diffuse, diffuse_before, atol=1e-3)


def test_world_los_mode_restores_and_fixed_models_report_their_state():
    cfg = WorldConfig(num_devices=30, cell_radius_m=400.0, mobility=RandomWaypointConfig(),
                      channel=ChannelConfig(pathloss_model="3gpp-umi", fading="rician"))
    world = World(cfg, seed=4)
    world.advance(20.0)
    state = world.state_dict()
    other = World(cfg, seed=123)
    other.load_state_dict(state)
    world.advance(30.0)
    other.advance(30.0)
    a, b = world.channel_state(), other.channel_state()
    assert np.array_equal(a.los, b.los) and np.array_equal(a.gain_lin, b.gain_lin)
    for model, expected in (("3gpp-uma-los", True), ("3gpp-umi-nlos", False), ("free-space", True), ("macro-128.1", False)):
        fixed = World(dataclasses.replace(cfg, channel=ChannelConfig(pathloss_model=model)), seed=4)
        assert fixed.channel_state().los.dtype == bool
        assert np.all(fixed.channel_state().los == expected)


def test_fixed_models_never_draw_from_the_los_stream():
    cfg = WorldConfig(num_devices=6, mobility=RandomWaypointConfig())
    world = World(cfg, seed=1)
    before = world._rng["los"].bit_generator.state
    world.advance(1.0)
    assert world._rng["los"].bit_generator.state == before
    los_world = World(dataclasses.replace(cfg, channel=ChannelConfig(pathloss_model="3gpp-uma")), seed=1)
    los_world.advance(1.0)
    assert los_world._rng["los"].bit_generator.state != before
    # The mobility and device streams do not depend on the model: same positions, same CPUs.
    assert np.array_equal(world.channel_state().positions_m, los_world.channel_state().positions_m)
    assert np.array_equal(world.channel_state().cpu_hz, los_world.channel_state().cpu_hz)
