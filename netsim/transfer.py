"""Draining a payload at a piecewise-constant rate: when a transfer ends, and what it spends.

A transfer of ``S`` bits starting at ``t0`` under a rate that changes only at given instants
(one value per channel coherence interval) sends ``r_k (t - t_k)`` bits in each piece until the
payload is gone. Its end is exact, not stepped: in the piece where it finishes,
``t_end = t + remaining / r``. A power ``p`` spends ``p (t_end - t0)`` joules (transmit energy
is power times airtime); an energy allowance ``E`` stops it at ``t0 + E / p``, with the bits
sent by then.

:func:`drain` does this for a whole rate schedule known in advance. The World cannot know its
future rates (each is drawn at its channel update), so it drives the same two steps,
:func:`segment_end` and :func:`drained_bits`, one piece at a time; both paths make the same
floating-point operations in the same order, so :func:`drain` given one piece per channel
update (the World splits a transfer at every update, even where the rate stays the same)
reproduces the World's numbers exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from netsim.energy import drawn_energy_j, time_to_spend_s


def segment_end(seg_start_s: float, remaining_bits: float, rate_bps: float, stop_by_s: float) -> tuple[float, bool]:
    """When a transfer would stop if the rate held from ``seg_start_s`` on.

    Args:
        seg_start_s: Start of the piece in s.
        remaining_bits: Bits still to send (> 0).
        rate_bps: Rate during the piece in bit/s (>= 0; 0 never finishes).
        stop_by_s: Time at which the transfer must stop anyway (its energy runs out), s.

    Returns:
        ``(stop_s, completes)``: the finish time ``seg_start_s + remaining / rate`` and True if
        it is not after ``stop_by_s``; else ``stop_by_s`` and False.
    """
    finish_s = seg_start_s + remaining_bits / rate_bps if rate_bps > 0.0 else math.inf
    if finish_s <= stop_by_s:
        return finish_s, True
    return stop_by_s, False


def drained_bits(rate_bps: float, airtime_s: float, remaining_bits: float) -> float:
    """Bits sent in ``airtime_s`` at ``rate_bps``, never more than ``remaining_bits``."""
    chunk = rate_bps * airtime_s
    return remaining_bits if chunk > remaining_bits else chunk


@dataclass(frozen=True)
class Drain:
    """How a transfer went.

    Attributes:
        end_s: When it ended (finished or stopped), s; inf if it never ends.
        bits_sent: Bits sent by ``end_s``.
        energy_j: Transmit energy, power x (end - start), J.
        completed: True if every bit was sent (False: the energy allowance stopped it).
    """

    end_s: float
    bits_sent: float
    energy_j: float
    completed: bool


def drain(
    start_s: float,
    bits: float,
    rates_bps: Sequence[float],
    change_times_s: Sequence[float] = (),
    power_w: float = 0.0,
    energy_limit_j: float = math.inf,
) -> Drain:
    """Drain ``bits`` from ``start_s`` under a piecewise-constant rate.

    Args:
        start_s: Start time in s.
        bits: Payload in bits (>= 0).
        rates_bps: ``[M]`` rates in bit/s; ``rates_bps[k]`` holds on
            ``[change_times_s[k - 1], change_times_s[k])``, the last one for ever after.
        change_times_s: ``[M - 1]`` increasing instants at which the rate changes, s. Pieces
            that end before ``start_s`` are skipped.
        power_w: Transmit power in W (>= 0).
        energy_limit_j: Energy the transfer may spend, J (>= 0).

    Returns:
        The :class:`Drain`.

    Raises:
        ValueError: If ``change_times_s`` does not have ``M - 1`` entries.
    """
    if len(change_times_s) != len(rates_bps) - 1:
        raise ValueError(
            f"change_times_s must have len(rates_bps) - 1 = {len(rates_bps) - 1} entries, "
            f"got {len(change_times_s)}"
        )
    stop_by_s = start_s + time_to_spend_s(energy_limit_j, power_w)
    k = 0
    while k < len(change_times_s) and change_times_s[k] <= start_s:
        k += 1
    now, remaining, sent, completed = start_s, float(bits), 0.0, True
    while remaining > 0.0:
        rate, seg_start = float(rates_bps[k]), now
        stop, completes = segment_end(seg_start, remaining, rate, stop_by_s)
        next_change = change_times_s[k] if k < len(change_times_s) else math.inf
        if stop <= next_change:
            if stop == math.inf:
                return Drain(math.inf, sent, math.inf if power_w > 0.0 else 0.0, False)
            # As an event loop does: the clock moves by the delay ``stop - now``.
            now = seg_start + (stop - seg_start)
            if completes:
                sent += remaining
            else:
                sent += rate * (now - seg_start)
                completed = False
            break
        now = next_change
        chunk = drained_bits(rate, now - seg_start, remaining)
        sent += chunk
        remaining -= chunk
        k += 1
    return Drain(now, sent, float(drawn_energy_j(power_w, now - start_s)), completed)
