"""Radio sub-problems of the allocation: bandwidth and power for given payloads.

Everything here rests on one fact about the AWGN rate R(b, p) = b log2(1 + p g / (N0 b))
(Shannon): asking for a rate r with power p, or an energy e for S bits over bandwidth b,
both reduce to the same scalar equation

    ln(1 + y) = c y,   0 < c < 1,   y > 0,                                        (*)

with y = p g / (N0 b) (the SNR). Its root is y = -W_{-1}(-c e^{-c}) / c - 1 (W_{-1}: the
lower branch of the Lambert W function, as in the energy-efficient rate literature, e.g.
Shi, Chen & Xu, "Energy-efficient transmission for ... Lambert W", or the minimum-energy
transmission of Cui, Goldsmith & Bahai, IEEE JSAC 2004). Rather than call
``scipy.special.lambertw`` (about 200 ns per element) we interpolate a table of the exact
solution and polish with Newton steps on ln y, which reaches machine precision in two steps.

* minimum bandwidth for rate r at power p:   c = r ln2 / a, a = p g / N0, b = a / y(c);
* largest power meeting an energy budget e for S bits on bandwidth b:
  the energy p S / R(b, p) is increasing in p, and p S / R = e gives c = S ln2 N0 / (e g),
  p = y(c) N0 b / g;
* shortest transmission with the whole band W and energy e: t = a' / (W y(c)),
  a' = e g / N0, c = S ln2 / a'.

Here c >= 1 means the request is impossible at any bandwidth (the wideband limit
R -> p g / (N0 ln 2)), or at any power (the minimum energy per bit N0 ln 2 / g).
"""

from __future__ import annotations

import numpy as np

from netsim.ofdma import capped_shannon_rate_bps

_LN2 = float(np.log(2.0))


def _newton_log_y(v: np.ndarray, c: np.ndarray, steps: int) -> np.ndarray:
    # Newton on v = ln y for F(v) = ln(1 + e^v) - c e^v (F' < 0 at the root).
    for _ in range(steps):
        y = np.exp(v)
        f = np.log1p(y) - c * y
        df = y * (1.0 / (1.0 + y) - c)
        v = v - f / df
    return v


def _build_table() -> tuple[float, float, np.ndarray]:
    # Tabulate (*) on a uniform grid of x = logit(c), so that a lookup is index arithmetic
    # (np.interp's binary search costs ~50 ns per element). Start from the exact pairs
    # (c(y), y) for log-spaced y, then polish every grid point with Newton.
    y = np.logspace(-7.0, 18.0, 20000)
    c = np.log1p(y) / y
    logit = np.log(c) - np.log1p(-c)
    order = np.argsort(logit)
    x0, x1 = float(np.ceil(logit.min())), float(np.floor(logit.max()))
    dx = 1.0 / 256.0
    grid = np.arange(x0, x1 + dx / 2, dx)
    v = np.interp(grid, logit[order], np.log(y)[order])
    v = _newton_log_y(v, 1.0 / (1.0 + np.exp(-grid)), 6)
    return x0, dx, v


_TABLE_X0, _TABLE_DX, _TABLE_LOG_Y = _build_table()
_TABLE_X1 = _TABLE_X0 + _TABLE_DX * (_TABLE_LOG_Y.size - 1)
_TABLE_Y = np.exp(_TABLE_LOG_Y)


def solve_snr(c: np.ndarray, newton_steps: int = 3) -> np.ndarray:
    """Root y > 0 of ln(1 + y) = c y, elementwise.

    Args:
        c: array, any shape; c >= 1 gives 0 (no positive root: the request is beyond the
            wideband / minimum-energy limit, so bandwidth a / y and time a / (W y) are inf),
            c <= 0 gives inf.
        newton_steps: Newton polishing steps on ln y after table interpolation; 0 gives
            about 1e-5 relative accuracy inside the table, 3 gives machine precision.

    Returns:
        y with the shape of c.
    """
    c = np.asarray(c, dtype=float)
    valid = (c > 0.0) & (c < 1.0)
    cv = np.where(valid, c, 0.5)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # log(1 - c) rather than log1p(-c): exact enough here (Sterbenz) and 5x faster.
        x = np.log(cv) - np.log(1.0 - cv)
        pos = (np.clip(x, _TABLE_X0, _TABLE_X1) - _TABLE_X0) / _TABLE_DX
        i = np.minimum(pos.astype(np.intp), _TABLE_LOG_Y.size - 2)
        frac = pos - i
        # Without polishing, interpolate y itself (saves an exp; ~1e-5 relative).
        table = _TABLE_Y if newton_steps == 0 else _TABLE_LOG_Y
        v = table[i] * (1.0 - frac) + table[i + 1] * frac
        # Outside the table: y ~ 2 (1 - c) as c -> 1, y ~ (L + ln L) / c as c -> 0.
        above, below = x > _TABLE_X1, x < _TABLE_X0
        if np.any(above) or np.any(below):
            big_l = -np.log(cv)
            v_out = np.where(above, np.log(2.0 * (1.0 - cv)),
                             np.log(big_l + np.log(np.maximum(big_l, 1.0))) - np.log(cv))
            if newton_steps == 0:
                v_out = np.exp(v_out)
            v = np.where(above | below, v_out, v)
        if newton_steps == 0:
            return np.where(valid, v, np.where(c >= 1.0, 0.0, np.inf))
        v = _newton_log_y(v, cv, newton_steps)
    return np.where(valid, np.exp(v), np.where(c >= 1.0, 0.0, np.inf))


def rate_bps(
    bandwidth_hz: np.ndarray, power_w: np.ndarray, gain_lin, noise_psd_w_per_hz,
    max_spectral_efficiency: float | None = None,
):
    """Shannon rate R = b min(log2(1 + p g / (N0 b)), c), bit/s, elementwise (broadcasting).

    :func:`netsim.ofdma.capped_shannon_rate_bps` written in the allocation's variables (power
    and gain rather than the SNR); bandwidths must be > 0. Uncapped by default (the solvers'
    closed forms assume the pure Shannon rate); with ``max_spectral_efficiency`` it is the
    rate the World applies to a flat-fading link.
    """
    snr = power_w * gain_lin / (noise_psd_w_per_hz * bandwidth_hz)
    return capped_shannon_rate_bps(bandwidth_hz, snr, max_spectral_efficiency)


def min_bandwidth_hz(
    rate_bps_: np.ndarray, power_w: np.ndarray, gain_lin, noise_psd_w_per_hz, newton_steps: int = 3
) -> np.ndarray:
    """Smallest bandwidth b with b log2(1 + p g / (N0 b)) >= r, Hz (inf if r >= p g / (N0 ln 2)).

    Args:
        rate_bps_: required rate, bit/s, any shape (broadcast with the others), >= 0.
        power_w: transmit power, W.
        gain_lin: channel power gain.
        noise_psd_w_per_hz: N0, W/Hz.
        newton_steps: see :func:`solve_snr`.

    Returns:
        b, Hz; 0 where the rate is 0.
    """
    # a = p g / N0 is the SNR x bandwidth product, Hz.
    a_hz = power_w * gain_lin / noise_psd_w_per_hz
    with np.errstate(divide="ignore", invalid="ignore"):
        c = rate_bps_ * _LN2 / a_hz
        b = a_hz / solve_snr(c, newton_steps)
    return np.where(rate_bps_ > 0, b, 0.0)


def max_power_for_energy_w(
    bandwidth_hz, payload_bits, tx_energy_j, max_power_w, gain_lin, noise_psd_w_per_hz
) -> np.ndarray:
    """Step (a): the largest power <= max_power_w whose transmission fits the energy budget.

    For fixed bandwidth b and payload S, the transmission energy p S / R(b, p) increases
    with p while the transmission time S / R(b, p) decreases: the energy/latency trade-off of
    p is monotone, so the fastest transmission within the budget uses the largest p with
    p S / R(b, p) <= e. That p is the root of the monotone equation p S / R = e, computed in
    closed form through (*) instead of by bisection (same root, machine precision).

    Args:
        bandwidth_hz, payload_bits, tx_energy_j, max_power_w, gain_lin: arrays that broadcast;
            tx_energy_j is the energy left for the transmission, J.
        noise_psd_w_per_hz: N0, W/Hz.

    Returns:
        p, W; 0 where no power meets the budget (e below the minimum S N0 ln2 / g).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        c = payload_bits * _LN2 * noise_psd_w_per_hz / (np.maximum(tx_energy_j, 0.0) * gain_lin)
        p_energy = solve_snr(c) * noise_psd_w_per_hz * bandwidth_hz / gain_lin
    p = np.minimum(max_power_w, p_energy)
    return np.where((tx_energy_j > 0) & (c < 1.0), p, 0.0)


def min_tx_time_alone_s(
    payload_bits, tx_energy_j, max_power_w, gain_lin, noise_psd_w_per_hz, total_bandwidth_hz
) -> tuple[np.ndarray, np.ndarray]:
    """Shortest transmission of S bits with the whole band W, under power and energy limits.

    The power limit alone gives t_p = S / R(W, p_max); the energy limit alone (p t <= e,
    rate increasing in p) gives the t_e solving t W log2(1 + e g / (N0 W t)) = S, shorter
    transmissions needing more energy. The shortest feasible time is max(t_p, t_e).

    Returns:
        ``(t_s, energy_limited)``: time, s (inf if the energy cannot carry S bits at all),
        and whether the energy limit is the binding one.
    """
    t_power = payload_bits / rate_bps(total_bandwidth_hz, max_power_w, gain_lin, noise_psd_w_per_hz)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a' = e g / N0 (dimensionless); w = W t solves w ln(1 + a'/w) = S ln2.
        a_e = np.maximum(tx_energy_j, 0.0) * gain_lin / noise_psd_w_per_hz
        t_energy = a_e / (solve_snr(payload_bits * _LN2 / a_e) * total_bandwidth_hz)
    t_energy = np.where(tx_energy_j > 0, t_energy, np.inf)
    return np.maximum(t_power, t_energy), t_energy > t_power


def bandwidth_for_time_hz(
    payload_bits,
    tx_time_s,
    tx_energy_j,
    max_power_w,
    gain_lin,
    noise_psd_w_per_hz,
    newton_steps: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Least bandwidth, and the power, that send S bits within t under power and energy limits.

    For a fixed transmission time t the energy is p t, so the energy budget caps the power at
    e / t; the rate grows with p, so the device uses P = min(p_max, e / t) — the fixed point of
    step (a) — and the least bandwidth is the one whose rate at P is S / t.

    Returns:
        ``(bandwidth_hz, power_w)`` broadcast shape; bandwidth inf where t <= 0, e <= 0 or the
        rate is beyond the wideband limit.
    """
    good = (tx_time_s > 0) & (tx_energy_j > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(good, tx_time_s, 1.0)
        power_w = np.minimum(max_power_w, np.where(good, tx_energy_j, 1.0) / t)
        b = min_bandwidth_hz(payload_bits / t, power_w, gain_lin, noise_psd_w_per_hz, newton_steps)
    return np.where(good, b, np.inf), power_w
