import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.ofdma import (
    OfdmaConfig,
    downlink_rate_bps,
    noise_power_w,
    noise_psd_w_per_hz,
    rb_counts_to_bandwidth_hz,
    rb_rates_bps,
    capped_shannon_rate_bps,
    shares_to_bandwidth_hz,
    snr_lin,
    spectral_efficiency,
    uplink_rate_bps,
)


def test_noise_golden():
    # -174 dBm/Hz + 10 log10(1e6) + 5 dB = -109 dBm = 10^(-13.9) W = 1.258925e-14 W
    assert noise_power_w(1e6, 5.0) == pytest.approx(1.2589254e-14, rel=1e-6)
    assert noise_psd_w_per_hz(0.0) == pytest.approx(3.981071705534969e-21)


def test_shannon_golden():
    # 1 MHz at SNR 3 (4.77 dB): 1e6 * log2(4) = 2 Mbit/s; SNR 1e6 capped at 7.4063 bit/s/Hz
    assert capped_shannon_rate_bps(1e6, 3.0) == pytest.approx(2e6)
    assert capped_shannon_rate_bps(1e6, 1e6, 7.4063) == pytest.approx(7.4063e6)
    assert spectral_efficiency(0.0) == 0.0


@pytest.mark.parametrize(
    "bandwidth_hz, scs_hz, num_rb",
    [(20e6, 15e3, 106), (20e6, 30e3, 51), (100e6, 30e3, 273), (10e6, 60e3, 11), (5e6, 15e3, 25)],
)
def test_num_rb_from_38101(bandwidth_hz, scs_hz, num_rb):
    cfg = OfdmaConfig(channel_bandwidth_hz=bandwidth_hz, subcarrier_spacing_hz=scs_hz)
    assert cfg.num_rb == num_rb
    assert cfg.rb_bandwidth_hz == 12 * scs_hz
    assert cfg.usable_bandwidth_hz == num_rb * 12 * scs_hz


def test_num_rb_without_guard():
    # floor(20e6 / 360e3) = 55
    assert OfdmaConfig(guard="none").num_rb == 55


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"subcarrier_spacing_hz": 20e3}, "subcarrier_spacing_hz"),
        ({"channel_bandwidth_hz": -1.0, "guard": "none"}, "channel_bandwidth_hz"),
        ({"channel_bandwidth_hz": 17e6}, "channel_bandwidth_hz"),
        ({"guard": "lots"}, "guard"),
        ({"max_spectral_efficiency": 0.0}, "max_spectral_efficiency"),
    ],
)
def test_config_errors_name_field_and_value(kwargs, field):
    with pytest.raises(ValueError, match=field) as err:
        OfdmaConfig(**kwargs)
    assert repr(list(kwargs.values())[0]) in str(err.value) or field == "channel_bandwidth_hz"


def test_downlink_power_split_by_share():
    gain = np.array([1e-10, 1e-10])
    n0 = noise_psd_w_per_hz(9.0)
    rate, snr = downlink_rate_bps(np.array([1e6, 3e6]), 40.0, 4e6, gain, n0)
    # SNR = P_BS g / (N0 B_total) whatever the share; rate proportional to the share
    assert snr == pytest.approx(np.full(2, 40.0 * 1e-10 / (n0 * 4e6)))
    assert rate[1] == pytest.approx(3 * rate[0])


def test_per_rb_gains_average_spectral_efficiency():
    n0 = 1e-20
    gains = np.array([[1e-12, 4e-12]])
    rate, snr = uplink_rate_bps(np.array([1e6]), np.array([0.1]), gains, n0)
    # SNR per block = 0.1 g / (1e-20 * 1e6) = 10 and 40; rate = 1e6 * mean(log2(11), log2(41))
    assert rate[0] == pytest.approx(1e6 * (np.log2(11) + np.log2(41)) / 2)
    assert snr[0] == pytest.approx(25.0)


def test_rb_rates_sum_blocks():
    n0, rb_hz = 1e-20, 360e3
    gains = np.array([[1e-12, 1e-12, 1e-12], [2e-12, 2e-12, 2e-12]])
    mask = np.array([[True, True, False], [False, False, True]])
    rate = rb_rates_bps(mask, np.array([0.2, 0.1]), gains, rb_hz, n0)
    # device 0: 0.1 W per block, SNR = 0.1e-12 / (1e-20 * 3.6e5) = 27.78 on two blocks
    snr0 = 0.1 * 1e-12 / (n0 * rb_hz)
    snr1 = 0.1 * 2e-12 / (n0 * rb_hz)
    assert rate == pytest.approx([2 * rb_hz * np.log2(1 + snr0), rb_hz * np.log2(1 + snr1)])
    assert rb_rates_bps(np.zeros((1, 3), bool), np.array([0.2]), gains[:1], rb_hz, n0)[0] == 0.0


def test_allocation_helpers():
    cfg = OfdmaConfig()
    assert rb_counts_to_bandwidth_hz([10, 41], cfg) == pytest.approx([3.6e6, 14.76e6])
    with pytest.raises(ValueError, match="rb_counts"):
        rb_counts_to_bandwidth_hz([50, 2], cfg)
    assert shares_to_bandwidth_hz([0.5, 0.5], cfg).sum() == pytest.approx(cfg.usable_bandwidth_hz)
    with pytest.raises(ValueError, match="shares"):
        shares_to_bandwidth_hz([0.7, 0.5], cfg)


def test_zero_bandwidth_gives_zero_rate():
    rate, snr = uplink_rate_bps(np.array([0.0, 1e6]), np.array([0.1, 0.1]), np.array([1e-10, 1e-10]), 1e-20)
    assert rate[0] == 0.0 and snr[0] == 0.0 and rate[1] > 0


positive = st.floats(min_value=1e-3, max_value=1e3)


@settings(max_examples=200, deadline=None)
@given(p=positive, dp=positive, b=st.floats(min_value=1e3, max_value=1e8), db=st.floats(min_value=1.0, max_value=1e7),
       gain=st.floats(min_value=1e-16, max_value=1e-6))
def test_rate_grows_with_power_and_bandwidth(p, dp, b, db, gain):
    n0 = noise_psd_w_per_hz(5.0)

    def rate(power_w, bandwidth_hz):
        return uplink_rate_bps(np.array([bandwidth_hz]), np.array([power_w]), np.array([gain]), n0)[0][0]

    base = rate(p * 1e-3, b)
    # Non-decreasing up to float rounding (1e-12 relative)
    assert rate((p + dp) * 1e-3, b) >= base * (1 - 1e-12)
    assert rate(p * 1e-3, b + db) >= base * (1 - 1e-12)
    assert base >= 0


def test_snr_lin_broadcast():
    assert snr_lin(np.ones((2, 1)), np.ones((1, 3)), 1.0, 1.0).shape == (2, 3)
