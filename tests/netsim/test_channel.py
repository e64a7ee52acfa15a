import numpy as np
import pytest

from netsim.channel import Channel, ChannelConfig
from netsim.pathloss import pathloss_db
from netsim.units import db_to_lin


def make(config, d, num_rb=4, seed=0):
    rngs = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    return Channel(config, len(d), num_rb, np.asarray(d, float), *rngs)


def test_gain_is_pathloss_times_shadowing_times_fading():
    d = np.array([50.0, 150.0, 400.0])
    ch = make(ChannelConfig(fading="rayleigh", per_rb_fading=True), d)
    assert ch.gain_lin.shape == (3, 4)
    assert ch.pathloss_db == pytest.approx(pathloss_db("3gpp-uma-nlos", d, 3.5e9))
    small = ch.gain_lin / db_to_lin(-(ch.pathloss_db + ch.shadowing_db))[:, None]
    assert ch._fading.power_gain() == pytest.approx(small)
    assert ch.wideband_gain_lin == pytest.approx(ch.gain_lin.mean(axis=1))


def test_defaults_follow_the_model():
    cfg = ChannelConfig(pathloss_model="3gpp-umi-los")
    assert cfg.effective_shadowing_std_db == 4.0 and cfg.effective_decorrelation_m == 10.0
    assert ChannelConfig(shadowing=False).effective_shadowing_std_db == 0.0


def test_static_devices_without_fading_keep_their_gain():
    d = np.array([100.0, 200.0])
    ch = make(ChannelConfig(fading="none"), d, num_rb=1)
    before = ch.gain_lin.copy()
    ch.update(d, np.zeros(2), np.zeros(2), 0.01, np.random.default_rng(5), np.random.default_rng(6))
    assert np.array_equal(before, ch.gain_lin)


def test_moving_devices_change_and_restore():
    d = np.array([100.0, 200.0])
    ch = make(ChannelConfig(fading="rician"), d, num_rb=1)
    state = ch.state_dict()
    rngs = np.random.default_rng(5), np.random.default_rng(6)
    ch.update(d + 1.0, np.ones(2), np.full(2, 30.0), 0.01, *rngs)
    assert not np.array_equal(ch.gain_lin, make(ChannelConfig(fading="rician"), d, num_rb=1).gain_lin)
    other = make(ChannelConfig(fading="rician"), d, num_rb=1, seed=42)
    other.load_state_dict(state, d)
    fresh = make(ChannelConfig(fading="rician"), d, num_rb=1)
    assert np.array_equal(other.gain_lin, fresh.gain_lin)


def test_config_validates_against_the_model():
    with pytest.raises(ValueError, match="ut_height_m"):
        ChannelConfig(ut_height_m=40.0)
    with pytest.raises(ValueError, match="decorrelation_m"):
        ChannelConfig(decorrelation_m=0.0)


def test_still_devices_fade_at_the_minimum_doppler():
    # 3 km/h at 3.5 GHz: f_D = 0.833 * 3.5e9 / c = 9.73 Hz; over 10 ms blocks the lag-1
    # correlation is J0(2 pi 9.73 0.01) = 0.909, so after 1 s (100 blocks) the fading has
    # decorrelated (rho^100 ~ 7e-5); with the floor at 0 it never changes.
    d = np.full(2000, 120.0)
    for floor, changes in ((3.0 / 3.6, True), (0.0, False)):
        ch = make(ChannelConfig(fading="rayleigh", shadowing=False, min_doppler_speed_mps=floor), d, num_rb=1)
        before = ch.gain_lin[:, 0].copy()
        rngs = np.random.default_rng(5), np.random.default_rng(6)
        for _ in range(100):
            ch.update(d, np.zeros(len(d)), np.zeros(len(d)), 0.01, *rngs)
        after = ch.gain_lin[:, 0]
        corr = np.corrcoef(before, after)[0, 1]
        if changes:
            assert abs(corr) < 0.1  # 3 sigma of a null correlation over 2000 devices is 0.067
        else:
            assert np.array_equal(before, after)


def test_min_doppler_is_validated():
    with pytest.raises(ValueError, match="min_doppler_speed_mps"):
        ChannelConfig(min_doppler_speed_mps=-1.0)
