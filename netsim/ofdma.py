"""OFDMA link budget: noise, SNR, Shannon rate, resource blocks, uplink and downlink rates.

Rates are Shannon capacity ``B log2(1 + SNR)`` with an optional cap on spectral efficiency
(e.g. 7.4063 bit/s/Hz, the highest 256-QAM entry of 3GPP TS 38.214 Table 5.1.3.1-2), an
upper bound on what a real modulation-and-coding scheme delivers. Noise is thermal noise at
-174 dBm/Hz plus the receiver's noise figure.

Frequency-selective fading. When gains are given per resource block (``[N, num_rb]``), a
device whose share is a bandwidth ``B`` (not a list of blocks) is taken to spread it evenly
over the band (interleaved allocation), so its rate is ``B`` times its spectral efficiency
averaged over all blocks, with its power spread evenly over ``B``. With explicit block masks
(:func:`rb_rates_bps`) each device sums the rate of the blocks it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from netsim.units import THERMAL_NOISE_DBM_PER_HZ, dbm_to_w

#: Highest spectral efficiency of 3GPP TS 38.214 Table 5.1.3.1-2 (256-QAM, rate 948/1024).
SPECTRAL_EFFICIENCY_256QAM = 7.4063

SUBCARRIERS_PER_RB = 12
_INV_LN2 = 1.0 / np.log(2.0)

# Maximum transmission bandwidth N_RB, 3GPP TS 38.101-1 Table 5.3.2-1 (FR1):
# {subcarrier spacing Hz: {channel bandwidth MHz: N_RB}}.
NRB_38101 = {
    15e3: {5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 40: 216, 50: 270},
    30e3: {5: 11, 10: 24, 15: 38, 20: 51, 25: 65, 30: 78, 40: 106, 50: 133, 60: 162,
           70: 189, 80: 217, 90: 245, 100: 273},
    60e3: {10: 11, 15: 18, 20: 24, 25: 31, 30: 38, 40: 51, 50: 65, 60: 79, 70: 93,
           80: 107, 90: 121, 100: 135},
}


@dataclass(frozen=True)
class OfdmaConfig:
    """Numerology, band and radio parameters of the cell.

    Attributes:
        channel_bandwidth_hz: Channel bandwidth in Hz (e.g. 20 MHz).
        subcarrier_spacing_hz: 15, 30 or 60 kHz (numerology mu = 0, 1, 2).
        guard: ``"38.101"`` takes the number of resource blocks from TS 38.101-1 Table
            5.3.2-1 (the bandwidth must be listed there); ``"none"`` fills the whole channel,
            ``floor(B / (12 * scs))``.
        bs_noise_figure_db: Base-station receiver noise figure (uplink), dB.
        ue_noise_figure_db: Device receiver noise figure (downlink), dB.
        bs_tx_power_dbm: Base-station transmit power over the whole band, dBm.
        max_spectral_efficiency: Cap in bit/s/Hz, or None for pure Shannon.
    """

    channel_bandwidth_hz: float = field(
        default=20e6, metadata={"help": "channel bandwidth", "unit": "Hz"}
    )
    subcarrier_spacing_hz: float = field(
        default=30e3, metadata={"help": "subcarrier spacing: 15, 30 or 60 kHz (numerology 0, 1, 2)", "unit": "Hz"}
    )
    guard: str = field(
        default="38.101", metadata={"help": "38.101: resource blocks from TS 38.101-1 Table 5.3.2-1; none: fill the channel", "unit": ""}
    )
    bs_noise_figure_db: float = field(
        default=5.0, metadata={"help": "base-station receiver noise figure (uplink)", "unit": "dB"}
    )
    ue_noise_figure_db: float = field(
        default=9.0, metadata={"help": "device receiver noise figure (downlink)", "unit": "dB"}
    )
    bs_tx_power_dbm: float = field(
        default=46.0, metadata={"help": "base-station transmit power over the whole band", "unit": "dBm"}
    )
    max_spectral_efficiency: float | None = field(
        default=SPECTRAL_EFFICIENCY_256QAM, metadata={"help": "cap on spectral efficiency, or None for pure Shannon", "unit": "bit/s/Hz"}
    )

    def __post_init__(self) -> None:
        if self.subcarrier_spacing_hz not in (15e3, 30e3, 60e3):
            raise ValueError(
                f"subcarrier_spacing_hz must be 15e3, 30e3 or 60e3, got {self.subcarrier_spacing_hz!r}"
            )
        if not self.channel_bandwidth_hz > 0:
            raise ValueError(f"channel_bandwidth_hz must be > 0, got {self.channel_bandwidth_hz!r}")
        if self.guard not in ("38.101", "none"):
            raise ValueError(f"guard must be '38.101' or 'none', got {self.guard!r}")
        if self.guard == "38.101":
            mhz = self.channel_bandwidth_hz / 1e6
            table = NRB_38101[self.subcarrier_spacing_hz]
            if mhz not in table:
                raise ValueError(
                    f"channel_bandwidth_hz {self.channel_bandwidth_hz!r} is not in TS 38.101-1 Table "
                    f"5.3.2-1 for subcarrier_spacing_hz {self.subcarrier_spacing_hz!r}; "
                    "use guard='none' or a listed bandwidth"
                )
        if self.num_rb < 1:
            raise ValueError(f"channel_bandwidth_hz {self.channel_bandwidth_hz!r} holds no resource block")
        if self.max_spectral_efficiency is not None and not self.max_spectral_efficiency > 0:
            raise ValueError(
                f"max_spectral_efficiency must be > 0 or None, got {self.max_spectral_efficiency!r}"
            )
        # Physical plausibility: outside these ranges a value is a typo, not a radio.
        for name, low, high in (("bs_noise_figure_db", 0.0, 30.0), ("ue_noise_figure_db", 0.0, 30.0),
                                ("bs_tx_power_dbm", -10.0, 70.0), ("channel_bandwidth_hz", 0.0, 2e9)):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {getattr(self, name)!r}")
        if self.max_spectral_efficiency is not None and self.max_spectral_efficiency > 100:
            raise ValueError(f"max_spectral_efficiency must be <= 100 bit/s/Hz, got {self.max_spectral_efficiency!r}")

    @property
    def rb_bandwidth_hz(self) -> float:
        """Bandwidth of one resource block, 12 subcarriers (Hz)."""
        return SUBCARRIERS_PER_RB * self.subcarrier_spacing_hz

    @property
    def num_rb(self) -> int:
        """Number of resource blocks in the channel."""
        if self.guard == "38.101":
            return NRB_38101[self.subcarrier_spacing_hz][self.channel_bandwidth_hz / 1e6]
        return int(self.channel_bandwidth_hz // self.rb_bandwidth_hz)

    @property
    def usable_bandwidth_hz(self) -> float:
        """Bandwidth the resource blocks occupy, ``num_rb * rb_bandwidth_hz`` (Hz)."""
        return self.num_rb * self.rb_bandwidth_hz

    @property
    def bs_tx_power_w(self) -> float:
        """Base-station transmit power in W."""
        return float(dbm_to_w(self.bs_tx_power_dbm))


def noise_psd_w_per_hz(noise_figure_db: float) -> float:
    """Noise power spectral density, -174 dBm/Hz + noise figure (W/Hz).

    Args:
        noise_figure_db: Receiver noise figure in dB.

    Returns:
        Noise PSD in W/Hz.
    """
    return float(dbm_to_w(THERMAL_NOISE_DBM_PER_HZ + noise_figure_db))


def noise_power_w(bandwidth_hz: ArrayLike, noise_figure_db: float) -> np.ndarray:
    """Noise power in a bandwidth, ``N0 * B`` (W).

    Args:
        bandwidth_hz: Bandwidth in Hz, any shape.
        noise_figure_db: Receiver noise figure in dB.

    Returns:
        Noise power in W, same shape.
    """
    return noise_psd_w_per_hz(noise_figure_db) * np.asarray(bandwidth_hz, dtype=float)


def snr_lin(power_w: ArrayLike, gain_lin: ArrayLike, bandwidth_hz: ArrayLike, noise_psd: float) -> np.ndarray:
    """Signal-to-noise ratio ``P g / (N0 B)``; zero bandwidth gives zero SNR.

    Args:
        power_w: Transmit power in W, broadcastable.
        gain_lin: Channel power gain (linear, includes path loss), broadcastable.
        bandwidth_hz: Occupied bandwidth in Hz, broadcastable.
        noise_psd: Noise PSD N0 in W/Hz.

    Returns:
        Linear SNR, broadcast shape.
    """
    b = np.asarray(bandwidth_hz, dtype=float)
    signal_w = np.asarray(power_w, dtype=float) * np.asarray(gain_lin, dtype=float)
    if np.all(b > 0):
        return signal_w / (noise_psd * b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = signal_w / (noise_psd * b)
    return np.where(b > 0, out, 0.0)


def spectral_efficiency(snr: ArrayLike, max_spectral_efficiency: float | None = None) -> np.ndarray:
    """Shannon spectral efficiency ``log2(1 + SNR)``, optionally capped (bit/s/Hz).

    Args:
        snr: Linear SNR (>= 0), any shape.
        max_spectral_efficiency: Cap in bit/s/Hz or None.

    Returns:
        Spectral efficiency in bit/s/Hz, same shape.
    """
    # log1p keeps the low-SNR regime accurate (log2(1 + x) would round 1 + x).
    se = np.log1p(np.asarray(snr, dtype=float)) * _INV_LN2
    if max_spectral_efficiency is not None:
        se = np.minimum(se, max_spectral_efficiency)
    return se


def capped_shannon_rate_bps(
    bandwidth_hz: ArrayLike, snr: ArrayLike, max_spectral_efficiency: float | None = None
) -> np.ndarray:
    """Shannon rate ``B log2(1 + SNR)``, optionally with capped spectral efficiency (bit/s).

    The one definition of the link rate in netsim: the World's links, the per-block rates and
    the allocation's forward model (:func:`netsim.allocation.radio.rate_bps`) all use it. Its
    expectation over fading is :func:`netsim.ergodic_rate.expected_capped_rate_bps`.

    Args:
        bandwidth_hz: Bandwidth in Hz, broadcastable.
        snr: Linear SNR, broadcastable.
        max_spectral_efficiency: Cap in bit/s/Hz or None.

    Returns:
        Rate in bit/s, broadcast shape.
    """
    return np.asarray(bandwidth_hz, dtype=float) * spectral_efficiency(snr, max_spectral_efficiency)


def uplink_rate_bps(
    bandwidth_hz: ArrayLike,
    power_w: ArrayLike,
    gain_lin: np.ndarray,
    noise_psd: float,
    max_spectral_efficiency: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Uplink rate of each device from its bandwidth share, power and gains.

    Args:
        bandwidth_hz: Bandwidth of each device in Hz, shape ``[N]``.
        power_w: Transmit power of each device in W, shape ``[N]``.
        gain_lin: Channel power gains, ``[N]`` (flat) or ``[N, num_rb]`` (per block; the
            device's share is spread evenly over the band, see the module docstring).
        noise_psd: BS receiver noise PSD in W/Hz.
        max_spectral_efficiency: Cap in bit/s/Hz or None.

    Returns:
        ``(rate_bps [N], snr_lin [N])``; with per-block gains the SNR is the mean over blocks.
    """
    b = np.asarray(bandwidth_hz, dtype=float)
    p = np.asarray(power_w, dtype=float)
    if gain_lin.ndim == 2:
        # [N, num_rb]
        snr = snr_lin(p[:, None], gain_lin, b[:, None], noise_psd)
        se = spectral_efficiency(snr, max_spectral_efficiency).mean(axis=1)
        return b * se, snr.mean(axis=1)
    snr = snr_lin(p, gain_lin, b, noise_psd)
    return capped_shannon_rate_bps(b, snr, max_spectral_efficiency), snr


def downlink_rate_bps(
    bandwidth_hz: ArrayLike,
    bs_power_w: float,
    total_bandwidth_hz: float,
    gain_lin: np.ndarray,
    noise_psd: float,
    max_spectral_efficiency: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Downlink rate: the BS splits its power in proportion to each device's bandwidth share.

    Device i gets ``P_BS * B_i / B_total``, so its SNR ``P_BS g / (N0 B_total)`` does not
    depend on its share, and its rate grows linearly with ``B_i``.

    Args:
        bandwidth_hz: Bandwidth of each device in Hz, shape ``[N]``.
        bs_power_w: Total BS transmit power in W.
        total_bandwidth_hz: Bandwidth the BS power is spread over in Hz.
        gain_lin: Channel power gains ``[N]`` or ``[N, num_rb]`` (reciprocal channel).
        noise_psd: Device receiver noise PSD in W/Hz.
        max_spectral_efficiency: Cap in bit/s/Hz or None.

    Returns:
        ``(rate_bps [N], snr_lin [N])``.
    """
    b = np.asarray(bandwidth_hz, dtype=float)
    power_w = bs_power_w * b / total_bandwidth_hz
    return uplink_rate_bps(b, power_w, gain_lin, noise_psd, max_spectral_efficiency)


def rb_rates_bps(
    rb_mask: np.ndarray,
    power_w: ArrayLike,
    gain_lin: np.ndarray,
    rb_bandwidth_hz: float,
    noise_psd: float,
    max_spectral_efficiency: float | None = None,
) -> np.ndarray:
    """Uplink rate of each device from an explicit resource-block assignment.

    Each device spreads its power evenly over the blocks it holds and its rate is the sum of
    the Shannon rates of those blocks.

    Args:
        rb_mask: bool ``[N, num_rb]``, True where device i holds block b.
        power_w: Transmit power of each device in W, shape ``[N]``.
        gain_lin: Power gains ``[N, num_rb]`` (or ``[N]``/``[N, 1]`` for flat fading).
        rb_bandwidth_hz: Bandwidth of one block in Hz.
        noise_psd: Receiver noise PSD in W/Hz.
        max_spectral_efficiency: Cap in bit/s/Hz or None.

    Returns:
        Rate in bit/s, shape ``[N]`` (zero for a device without blocks).
    """
    mask = np.asarray(rb_mask, dtype=bool)
    gains = gain_lin if np.ndim(gain_lin) == 2 else np.asarray(gain_lin)[:, None]
    count = mask.sum(axis=1)
    # [N, 1]: power per block
    p_rb = np.where(count > 0, np.asarray(power_w, dtype=float) / np.maximum(count, 1), 0.0)[:, None]
    snr = p_rb * gains / (noise_psd * rb_bandwidth_hz)
    se = spectral_efficiency(snr, max_spectral_efficiency)
    return rb_bandwidth_hz * np.sum(se * mask, axis=1)


def rb_counts_to_bandwidth_hz(rb_counts: ArrayLike, config: OfdmaConfig) -> np.ndarray:
    """Bandwidth of integer block counts (Hz); raises if the counts exceed the band.

    Args:
        rb_counts: Resource blocks per device, shape ``[N]``, non-negative integers.
        config: The cell's OFDMA configuration.

    Returns:
        Bandwidth in Hz, shape ``[N]``.
    """
    counts = np.asarray(rb_counts)
    if np.any(counts < 0) or np.sum(counts) > config.num_rb:
        raise ValueError(f"rb_counts must be >= 0 and sum to <= {config.num_rb}, got {counts!r}")
    return counts * config.rb_bandwidth_hz


def shares_to_bandwidth_hz(shares: ArrayLike, config: OfdmaConfig) -> np.ndarray:
    """Bandwidth of continuous shares of the usable band (Hz); shares must sum to <= 1.

    Args:
        shares: Fraction of the band per device, shape ``[N]``, non-negative.
        config: The cell's OFDMA configuration.

    Returns:
        Bandwidth in Hz, shape ``[N]``.
    """
    s = np.asarray(shares, dtype=float)
    if np.any(s < 0) or np.sum(s) > 1.0 + 1e-9:
        raise ValueError(f"shares must be >= 0 and sum to <= 1, got {s!r}")
    return s * config.usable_bandwidth_hz
