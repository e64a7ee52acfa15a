"""Whole resource blocks: round a continuous bandwidth allocation to RBs, keeping the deadlines.

The allocation solvers give each device a continuous bandwidth ``b_i`` with ``sum b_i <= W``;
a cell hands out whole resource blocks of ``rb_bandwidth_hz``. :func:`round_to_rbs` turns the
first into the second:

1. Largest remainder (Hamilton's method): each served device gets ``floor(b_i / b_RB)`` blocks,
   and the blocks left in the band go one each to the largest fractional parts. The total never
   exceeds ``num_rb``, and each device is within one block of its share.
2. At least one block each: a served device left with none takes one from the device with most
   slack that can spare it (it keeps >= 1 block and its deadline); if none can, it gets no block
   and the status :attr:`~netsim.reasons.Reason.CAPACITY`. If more devices are served than there
   are blocks, those with the smallest shares get none (``CAPACITY``).
3. Repair: while a device misses its deadline, it gets a free block if one is left, else one
   from the device with most slack after giving it (which must keep >= 1 block and its
   deadline). A donor stays within its deadline, so no repair makes a new violation, and the
   blocks of the violators only grow: the loop ends. A device still late gets ``DEADLINE``.

Latency is the allocation's forward model: ``T_i = c_i + S_i / R_i`` with ``R_i`` the capped
Shannon rate :func:`netsim.allocation.radio.rate_bps` at the device's power, on its blocks.
A device whose continuous share met its deadline with a margin of at least one block's worth
(``T_i(b_i - b_RB) <= D_i``) meets it after step 1, since it loses less than one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from netsim.allocation.radio import rate_bps
from netsim.reasons import Reason

# Relative slack on integer tests: a share of exactly k blocks in floating point is k blocks.
_INTEGER_TOL = 1e-9


@dataclass(frozen=True)
class RbAllocation:
    """Whole-block allocation.

    Attributes:
        rb_counts: ``[N]`` int, blocks per device (0 for a device without any).
        bandwidth_hz: ``[N]`` ``rb_counts * rb_bandwidth_hz``, Hz.
        latency_s: ``[N]`` latency on those blocks, s (inf without a block).
        status: ``[N]`` :class:`~netsim.reasons.Reason`: ``ALLOCATED`` (meets its deadline),
            ``DEADLINE`` (late even after the repair), ``CAPACITY`` (no block),
            ``NOT_SCHEDULED`` (zero bandwidth given: not served, the caller's status stands).
    """

    rb_counts: np.ndarray
    bandwidth_hz: np.ndarray
    latency_s: np.ndarray
    status: np.ndarray


def rb_latency_s(
    rb_counts: ArrayLike, rb_bandwidth_hz: float, payload_bits, power_w, gain_lin, noise_psd_w_per_hz,
    compute_s, max_spectral_efficiency: float | None = None,
) -> np.ndarray:
    """Latency ``c + S / R(n b_RB, p)`` of each device on ``n`` blocks, s (inf for n = 0).

    Args:
        rb_counts: ``[N]`` blocks per device.
        rb_bandwidth_hz: Bandwidth of one block, Hz.
        payload_bits, power_w, gain_lin, compute_s: ``[N]`` (or broadcastable) payload in bits,
            transmit power in W, channel power gain, compute time in s.
        noise_psd_w_per_hz: N0, W/Hz.
        max_spectral_efficiency: Cap in bit/s/Hz or None.

    Returns:
        ``[N]`` latency in s.
    """
    n = np.asarray(rb_counts, dtype=float)
    b = np.where(n > 0, n, 1.0) * rb_bandwidth_hz
    rate = rate_bps(b, np.asarray(power_w, dtype=float), gain_lin, noise_psd_w_per_hz, max_spectral_efficiency)
    with np.errstate(divide="ignore"):
        t = compute_s + np.asarray(payload_bits, dtype=float) / rate
    return np.where(n > 0, t, np.inf)


def round_to_rbs(
    bandwidth_hz: ArrayLike,
    rb_bandwidth_hz: float,
    num_rb: int,
    payload_bits: ArrayLike,
    power_w: ArrayLike,
    gain_lin: ArrayLike,
    noise_psd_w_per_hz: float,
    compute_s: ArrayLike,
    deadline_s: ArrayLike,
    max_spectral_efficiency: float | None = None,
) -> RbAllocation:
    """Round a continuous bandwidth allocation to whole blocks (module docstring).

    Args:
        bandwidth_hz: ``[N]`` continuous bandwidths, Hz (0: device not served).
        rb_bandwidth_hz: Bandwidth of one block, Hz (> 0).
        num_rb: Blocks in the band (>= 1).
        payload_bits: ``[N]`` uplink payload, bits.
        power_w: ``[N]`` transmit power, W.
        gain_lin: ``[N]`` channel power gain the plan uses.
        noise_psd_w_per_hz: N0, W/Hz.
        compute_s: ``[N]`` the rest of the device's round (compute), s.
        deadline_s: ``[N]`` deadline, s.
        max_spectral_efficiency: Cap in bit/s/Hz or None.

    Returns:
        The :class:`RbAllocation`; ``rb_counts.sum() <= num_rb``.

    Raises:
        ValueError: Bad ``rb_bandwidth_hz``, ``num_rb`` or a negative bandwidth.
    """
    b = np.asarray(bandwidth_hz, dtype=float)
    if not rb_bandwidth_hz > 0:
        raise ValueError(f"rb_bandwidth_hz must be > 0, got {rb_bandwidth_hz!r}")
    if not (isinstance(num_rb, (int, np.integer)) and num_rb >= 1):
        raise ValueError(f"num_rb must be an int >= 1, got {num_rb!r}")
    if np.any(b < 0) or not np.all(np.isfinite(b)):
        raise ValueError(f"bandwidth_hz must be finite and >= 0, got {b!r}")
    n_dev = b.size
    deadline = np.broadcast_to(np.asarray(deadline_s, dtype=float), (n_dev,))

    def latency(counts: np.ndarray) -> np.ndarray:
        return rb_latency_s(counts, rb_bandwidth_hz, payload_bits, power_w, gain_lin, noise_psd_w_per_hz,
                            compute_s, max_spectral_efficiency)

    served = b > 0
    status = np.full(n_dev, Reason.ALLOCATED, dtype=object)
    status[~served] = Reason.NOT_SCHEDULED
    # More served devices than blocks: the smallest shares get none.
    order = np.argsort(-b, kind="stable")
    if served.sum() > num_rb:
        dropped = order[num_rb:][served[order[num_rb:]]]
        served[dropped] = False
        status[dropped] = Reason.CAPACITY

    # 1. Largest remainder.
    x = np.where(served, b / rb_bandwidth_hz, 0.0)
    counts = np.floor(x * (1.0 + _INTEGER_TOL)).astype(np.int64)
    # A continuous sum a rounding error above the band: take the excess from the largest.
    while counts.sum() > num_rb:
        counts[np.argmax(counts)] -= 1
    remainder = np.where(served, x - counts, -np.inf)
    left = num_rb - int(counts.sum())
    by_remainder = np.argsort(-remainder, kind="stable")
    give = [i for i in by_remainder[:left] if served[i] and remainder[i] > _INTEGER_TOL]
    counts[give] += 1

    # 2. and 3. One block each, then the deadlines.
    def donor(exclude: int) -> int | None:
        # Most slack after giving one block, among devices that keep >= 1 block and their deadline.
        fewer = latency(np.maximum(counts - 1, 0))
        slack = np.where(served & (counts >= 2) & (fewer <= deadline), deadline - fewer, -np.inf)
        slack[exclude] = -np.inf
        i = int(np.argmax(slack))
        return i if np.isfinite(slack[i]) else None

    for i in np.flatnonzero(served & (counts == 0)):
        if counts.sum() < num_rb:
            counts[i] = 1
            continue
        j = donor(i)
        if j is None:
            served[i] = False
            status[i] = Reason.CAPACITY
            continue
        counts[j] -= 1
        counts[i] = 1

    for _ in range(num_rb * max(n_dev, 1)):
        t = latency(counts)
        excess = np.where(served, t - deadline, -np.inf)
        i = int(np.argmax(excess))
        if not excess[i] > 0:
            break
        if counts.sum() < num_rb:
            counts[i] += 1
            continue
        j = donor(i)
        if j is None:
            break
        counts[j] -= 1
        counts[i] += 1

    t = latency(counts)
    status[served & (t > deadline)] = Reason.DEADLINE
    return RbAllocation(counts, counts * rb_bandwidth_hz, t, status)
