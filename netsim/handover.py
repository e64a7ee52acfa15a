"""Handover: the 3GPP A3 event as a pure state machine, and what moving a session costs.

A3 (3GPP TS 38.331 §5.5.4.4, TS 36.331 §5.5.4.4), with the frequency- and cell-specific offsets
at zero: a neighbour n enters the condition when

    M_n - Hys > M_p + Off,

(``M`` the measured RSRP in dB, p the serving cell), and the event triggers for n once the
condition has held at every measurement for ``time_to_trigger``. The device then hands over to
the strongest triggered neighbour and every timer restarts. A neighbour that stops meeting the
condition before its time to trigger restarts from zero.

Measurements. The RSRP used is the large-scale gain (path loss and shadowing; the site power is
the same for all sites so it cancels): the layer-3 filter of a real UE averages the fast fading
out, which this takes to the limit. Measurements are taken at every channel update (the timer
counts updates: ``ceil(ttt / coherence)`` of them, exact where TTT is a multiple of the step).

Cost of a handover during a round (:func:`migration_s`): the device's server-side state (its
copy of the server adapters and the activations in flight) crosses a backhaul of
``backhaul_bps`` with a one-way latency, ``latency + bits / backhaul_bps`` seconds, or the
device is dropped from the round (policy ``"drop"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

HANDOVER_POLICIES = ("migrate", "drop")


@dataclass(frozen=True)
class HandoverConfig:
    """A3 handover parameters and the cost of moving a session.

    Attributes:
        offset_db: A3 offset ``Off``, dB.
        hysteresis_db: Hysteresis ``Hys``, dB.
        time_to_trigger_s: Time to trigger, s (TS 38.331 values: 0, 40, 64, 80, 100, 128, 160,
            256, 320, 480, 512, 640, 1024, ... ms).
        policy: ``"migrate"`` (move the server-side state over the backhaul, continue) or
            ``"drop"`` (the device leaves the round, reason ``handover``).
        backhaul_bps: Backhaul rate between edge servers, bit/s.
        backhaul_latency_s: Backhaul one-way latency, s.
    """

    offset_db: float = field(default=3.0, metadata={"help": "A3 offset", "unit": "dB"})
    hysteresis_db: float = field(default=1.0, metadata={"help": "A3 hysteresis", "unit": "dB"})
    time_to_trigger_s: float = field(default=0.16, metadata={"help": "A3 time to trigger", "unit": "s"})
    policy: str = field(default="migrate", metadata={"help": "a device handed over in a round: migrate its server state, or drop it", "unit": ""})
    backhaul_bps: float = field(default=1e9, metadata={"help": "backhaul rate between edge servers", "unit": "bit/s"})
    backhaul_latency_s: float = field(default=0.005, metadata={"help": "backhaul one-way latency", "unit": "s"})

    def __post_init__(self) -> None:
        if not (np.isfinite(self.offset_db) and -30.0 <= self.offset_db <= 30.0):
            raise ValueError(f"offset_db must be in [-30, 30] dB, got {self.offset_db!r}")
        if not (np.isfinite(self.hysteresis_db) and 0.0 <= self.hysteresis_db <= 30.0):
            raise ValueError(f"hysteresis_db must be in [0, 30] dB, got {self.hysteresis_db!r}")
        if not (np.isfinite(self.time_to_trigger_s) and 0.0 <= self.time_to_trigger_s <= 10.0):
            raise ValueError(f"time_to_trigger_s must be in [0, 10] s, got {self.time_to_trigger_s!r}")
        if self.policy not in HANDOVER_POLICIES:
            raise ValueError(f"policy must be one of {HANDOVER_POLICIES}, got {self.policy!r}")
        if not (np.isfinite(self.backhaul_bps) and 0 < self.backhaul_bps <= 1e13):
            raise ValueError(f"backhaul_bps must be in (0, 1e13] bit/s, got {self.backhaul_bps!r}")
        if not (np.isfinite(self.backhaul_latency_s) and 0 <= self.backhaul_latency_s <= 10.0):
            raise ValueError(f"backhaul_latency_s must be in [0, 10] s, got {self.backhaul_latency_s!r}")

    def time_to_trigger_steps(self, step_s: float) -> int:
        """Measurements the condition must hold for: ``ceil(ttt / step)`` (at least 1)."""
        return max(1, math.ceil(self.time_to_trigger_s / step_s - 1e-9))


def a3_step(
    rsrp_db: np.ndarray,
    serving: np.ndarray,
    timer_steps: np.ndarray,
    offset_db: float,
    hysteresis_db: float,
    ttt_steps: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One measurement of the A3 state machine for every device.

    Args:
        rsrp_db: ``[N, S]`` measured RSRP (or large-scale gain) of every cell, dB.
        serving: ``[N]`` serving cell index.
        timer_steps: ``[N, S]`` consecutive measurements each neighbour has met the condition.
        offset_db: A3 offset, dB.
        hysteresis_db: Hysteresis, dB.
        ttt_steps: Measurements the condition must hold for (>= 1).

    Returns:
        ``(serving [N], timer_steps [N, S], handed_over [N] bool)``: new arrays; the inputs are
        not modified.
    """
    n = len(serving)
    rows = np.arange(n)
    # [N, S]
    entering = rsrp_db - hysteresis_db > (rsrp_db[rows, serving] + offset_db)[:, None]
    entering[rows, serving] = False
    timer = np.where(entering, timer_steps + 1, 0)
    triggered = timer >= ttt_steps
    handed = triggered.any(axis=1)
    new_serving = serving.copy()
    if handed.any():
        best = np.argmax(np.where(triggered, rsrp_db, -np.inf), axis=1)
        new_serving[handed] = best[handed]
        timer[handed] = 0
    return new_serving, timer, handed


def migration_s(state_bits: float | np.ndarray, backhaul_bps: float, latency_s: float) -> np.ndarray:
    """Time to move a session's server-side state over the backhaul: ``latency + bits / rate``, s."""
    return latency_s + np.asarray(state_bits, dtype=float) / backhaul_bps
