"""Co-channel interference: who transmits on which part of the band, and the SINR it leaves.

Spectrum. With reuse factor 1 every cell uses the whole band ``W``; with reuse 3 cell ``c`` uses
the sub-band ``[k W / 3, (k + 1) W / 3)`` of its colour ``k`` (:func:`reuse_colours`: a proper
3-colouring of the hexagonal grid, ``(q - r) mod 3`` in axial coordinates, and ``index mod 3``
along a line). Inside its sub-band a cell maps its devices' bandwidths to contiguous pieces in
device order (:func:`pack_bands_hz`): the simple RB mapping of a scheduler that fills the band
from its lower edge. Bandwidths are continuous (fractional RBs), as in the rest of netsim.
Wrap-around and reuse 3 do not agree exactly where the cluster size (7, 19) is not a multiple of
three: two copies of the same colour may then neighbour across the wrap edge.

Interference. A transmitter j with power ``p_j`` spread over ``[lo_j, hi_j)`` has PSD
``p_j / (hi_j - lo_j)``; a victim i listening on ``[lo_i, hi_i)`` receives from it

    I[i] = sum_j overlap_hz(i, j) p_j / (hi_j - lo_j) g[i, j],

over the transmitters of *other* cells (a cell's own devices are orthogonal, OFDMA).
``g[i, j]`` is the power gain from j's antenna to i's: uplink, device j to the victim's serving
site; downlink, j's serving site (the BS sends j's data) to the victim device. Interfering links
use the large-scale gain (path loss and shadowing): their fast fading averages over the many RBs
and the time a transfer lasts. The victim's own link keeps its fading.

SINR ``= S / (N0 B + I)``; with ``I = 0`` it is :func:`netsim.ofdma.snr_lin` bit for bit.
"""

from __future__ import annotations

import numpy as np

REUSE_FACTORS = (1, 3)


def reuse_colours(sites_m: np.ndarray, isd_m: float, kind: str) -> np.ndarray:
    """``[S]`` reuse-3 colour (0, 1, 2) of each site, no two grid neighbours alike.

    Args:
        sites_m: ``[S, 2]`` positions (:mod:`netsim.layout`).
        isd_m: Inter-site distance in m.
        kind: ``"hex"`` or ``"line"``.
    """
    if kind == "line":
        return np.arange(len(sites_m)) % 3
    r = np.rint(sites_m[:, 1] / (0.5 * np.sqrt(3.0) * isd_m))
    q = np.rint(sites_m[:, 0] / isd_m - 0.5 * r)
    return ((q - r) % 3).astype(np.intp)


def subband_start_hz(colours: np.ndarray, reuse: int, total_bandwidth_hz: float) -> tuple[np.ndarray, float]:
    """Lower edge of each cell's sub-band and the sub-band width.

    Args:
        colours: ``[S]`` reuse colours.
        reuse: 1 or 3.
        total_bandwidth_hz: The whole band W in Hz.

    Returns:
        ``(start_hz [S], width_hz)``.
    """
    if reuse not in REUSE_FACTORS:
        raise ValueError(f"reuse must be one of {REUSE_FACTORS}, got {reuse!r}")
    width = total_bandwidth_hz / reuse
    if reuse == 1:
        return np.zeros(len(colours)), width
    return colours * width, width


def pack_bands_hz(cell: np.ndarray, bandwidth_hz: np.ndarray, cell_start_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous band pieces: each cell's devices side by side from its sub-band's lower edge.

    Args:
        cell: ``[N]`` serving cell of each device.
        bandwidth_hz: ``[N]`` bandwidth of each device in Hz (0: it takes no piece).
        cell_start_hz: ``[S]`` lower edge of each cell's sub-band in Hz.

    Returns:
        ``(lo_hz [N], hi_hz [N])``, device order inside each cell.
    """
    order = np.argsort(cell, kind="stable")
    b_sorted = bandwidth_hz[order]
    c_sorted = cell[order]
    # [N] cumulative bandwidth before each device inside its cell
    csum = np.cumsum(b_sorted) - b_sorted
    first = np.ones(len(order), dtype=bool)
    first[1:] = c_sorted[1:] != c_sorted[:-1]
    group_base = np.maximum.accumulate(np.where(first, csum, -np.inf))
    lo = np.empty(len(order))
    lo[order] = cell_start_hz[c_sorted] + (csum - group_base)
    return lo, lo + bandwidth_hz


def overlap_hz(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray) -> np.ndarray:
    """``[A, B]`` width of the intersection of band pieces ``[lo_a, hi_a)`` and ``[lo_b, hi_b)``, Hz."""
    return np.maximum(np.minimum(hi_a[:, None], hi_b[None, :]) - np.maximum(lo_a[:, None], lo_b[None, :]), 0.0)


def interference_w(
    victim_lo_hz: np.ndarray,
    victim_hi_hz: np.ndarray,
    victim_cell: np.ndarray,
    tx_lo_hz: np.ndarray,
    tx_hi_hz: np.ndarray,
    tx_cell: np.ndarray,
    tx_power_w: np.ndarray,
    gain_lin: np.ndarray,
) -> np.ndarray:
    """Co-channel interference power at each victim from the transmitters of other cells.

    Args:
        victim_lo_hz, victim_hi_hz: ``[V]`` band piece of each victim, Hz.
        victim_cell: ``[V]`` serving cell of each victim.
        tx_lo_hz, tx_hi_hz: ``[T]`` band piece of each active transmission, Hz.
        tx_cell: ``[T]`` cell each transmission belongs to.
        tx_power_w: ``[T]`` power of each transmission over its piece, W.
        gain_lin: ``[V, T]`` power gain from transmission j's antenna to victim i's receiver.

    Returns:
        ``[V]`` interference power in W.
    """
    width = tx_hi_hz - tx_lo_hz
    psd = np.divide(tx_power_w, width, out=np.zeros_like(width, dtype=float), where=width > 0)
    # [V, T]
    ov = overlap_hz(victim_lo_hz, victim_hi_hz, tx_lo_hz, tx_hi_hz)
    ov[victim_cell[:, None] == tx_cell[None, :]] = 0.0
    return (ov * gain_lin) @ psd


def sinr_lin(signal_w: np.ndarray, interference_w: np.ndarray, noise_psd: float, bandwidth_hz: np.ndarray) -> np.ndarray:
    """``S / (N0 B + I)``; zero bandwidth gives zero. With ``I = 0`` equal to :func:`netsim.ofdma.snr_lin`.

    Args:
        signal_w: ``[N]`` received signal power (``p g``), W.
        interference_w: ``[N]`` interference power, W.
        noise_psd: N0 in W/Hz.
        bandwidth_hz: ``[N]`` bandwidth in Hz.
    """
    b = np.asarray(bandwidth_hz, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(signal_w, dtype=float) / (noise_psd * b + interference_w)
    return np.where(b > 0, out, 0.0)


def downlink_geometry_lin(gain_lin: np.ndarray, bs_power_w: float | np.ndarray, noise_w: float,
                          serving: np.ndarray | None = None) -> np.ndarray:
    """Wideband downlink SINR ("geometry") with every site transmitting over the whole band.

    ``G[i] = P g[i, s_i] / (N + sum_{k != s_i} P g[i, k])`` (the geometry of 3GPP system-level
    calibrations, TR 36.814 A.2.1; full-buffer, reuse 1, large-scale gains).

    Args:
        gain_lin: ``[N, S]`` large-scale power gains.
        bs_power_w: Site transmit power, W (scalar or ``[S]``).
        noise_w: Device noise power over the band, W.
        serving: ``[N]`` serving sites; None: the strongest.

    Returns:
        ``[N]`` linear geometry.
    """
    rx = gain_lin * bs_power_w
    if serving is None:
        serving = np.argmax(rx, axis=1)
    own = rx[np.arange(len(rx)), serving]
    return own / (noise_w + rx.sum(axis=1) - own)


def planning_factor(noise_psd: float, interference_psd_w_per_hz: np.ndarray) -> np.ndarray:
    """``N0 / (N0 + I)``: the gain multiplier under which an SNR formula gives the SINR.

    With interference of PSD ``I`` over the victim's band, ``p g / ((N0 + I) B) = p g' / (N0 B)``
    for ``g' = g N0 / (N0 + I)``, so a planner that knows only SNRs plans with the SINR.

    Args:
        noise_psd: N0 in W/Hz.
        interference_psd_w_per_hz: ``[N]`` interference PSD, W/Hz.
    """
    return noise_psd / (noise_psd + np.asarray(interference_psd_w_per_hz, dtype=float))
