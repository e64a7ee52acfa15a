"""What a run records: the trace rows of rounds, decisions and channel snapshots.

Rows are plain dicts (the checkpoint stores them); their columns and dtypes are written down in
:mod:`scenarios.runner` and ``docs/interfaces.md``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from netsim.reasons import Reason
from netsim.units import lin_to_db
from netsim.world import ChannelState, Outcome


@dataclass
class Trace:
    """Everything a run has recorded so far, as plain rows (what the checkpoint stores)."""

    events: list[dict] = field(default_factory=list)
    rounds: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    channel: list[dict] = field(default_factory=list)
    token_maps: list[dict] = field(default_factory=list)


@dataclass
class DeviceRound:
    """One device's round: what was decided for it, what happened, and why it stopped.

    Attributes:
        device: device id.
        planned: the policy saw it (it was selected).
        status: the policy's status (``Reason.ALLOCATED`` when scheduled).
        tokens: token budget decided.
        bandwidth_hz: bandwidth decided, Hz.
        power_w: transmit power decided, W.
        reason: why it stopped or was left out (``Reason.COMPLETED`` when it finished).
        outcome: the World's outcome when it ran.
        cut_layer: blocks the device runs (the configured cut unless the policy chose one).
        bits_per_value: uplink quantisation width decided (32: float32; 0: nothing sent).
        plan: what the plan said (:func:`scenarios.planning.plan_record`) when it was planned.
        uplink_s: realised airtime of its activation uplink phases, s.
        uplink_energy_j: realised transmit energy of its uplink phases (adapters included), J.
    """

    device: int
    planned: bool = False
    status: str = Reason.NOT_SCHEDULED.value
    tokens: int = 0
    bandwidth_hz: float = 0.0
    power_w: float = 0.0
    reason: str = Reason.COMPLETED.value
    outcome: Outcome | None = None
    cut_layer: int = 0
    bits_per_value: int = 32
    plan: dict | None = None
    uplink_s: float = 0.0
    uplink_energy_j: float = 0.0

    def add_event(self, row: dict) -> None:
        """Count a World trace row of this device into the realised uplink time and energy."""
        if row["phase"] == "uplink":
            self.uplink_s += float(row["end_s"]) - float(row["start_s"])
        if row["phase"] in ("uplink", "adapter_uplink"):
            self.uplink_energy_j += float(row["energy_j"])

    @property
    def aggregated(self) -> bool:
        o = self.outcome
        return o is not None and o.finished and not o.reason

    def row(self, r: int) -> dict:
        o = self.outcome
        return {
            "round": r, "device": self.device, "status": str(self.status), "tokens": int(self.tokens),
            "bandwidth_hz": float(self.bandwidth_hz), "power_w": float(self.power_w),
            "cut_layer": int(self.cut_layer), "bits_per_value": int(self.bits_per_value),
            "latency_s": float(o.latency_s) if o else math.nan, "energy_j": float(o.energy_j) if o else math.nan,
            "aggregated": self.aggregated, "reason": str(self.reason),
            **(self.plan or _NO_PLAN),
            "uplink_energy_j": float(self.uplink_energy_j) if o else math.nan,
            "uplink_s": float(self.uplink_s) if o else math.nan,
        }


# decisions.parquet columns of a device the policy did not plan
_NO_PLAN = {"planned_gain_db": math.nan, "max_power_w": math.nan, "energy_budget_j": math.nan,
            "planned_uplink_s": math.nan}


def event_row(row: dict) -> dict:
    """A World trace row as ``events.parquet`` holds it: ``completed`` (the phase ran to its end)
    in place of the World's ``deadline_met``, which was true only for completed phases and so
    also false for phases stopped by energy, battery or leaving the cell; ``reason`` says why."""
    out = {k: v for k, v in row.items() if k != "deadline_met"}
    out["completed"] = str(row["reason"]) == Reason.COMPLETED
    return out


def decision_rows(r: int, devices: list[DeviceRound]) -> list[dict]:
    """The planned devices in plan order, then every other device that was left out."""
    planned = [d.row(r) for d in devices if d.planned]
    others = [d.row(r) for d in sorted(devices, key=lambda d: d.device) if not d.planned and d.reason]
    return planned + others


def channel_rows(r: int, time_s: float, state: ChannelState) -> list[dict]:
    """One row per device: position, speed, path loss, gain and SNR at full power over the band."""
    snr = state.max_power_w * state.gain_lin / (state.noise_psd_w_per_hz * state.total_bandwidth_hz)
    gain_db = lin_to_db(np.maximum(np.asarray(state.gain_lin, dtype=float), 1e-300))
    snr_db = lin_to_db(np.maximum(np.asarray(snr, dtype=float), 1e-300))
    return [{
        "round": r, "time_s": float(time_s), "device": d,
        "x_m": float(state.positions_m[d, 0]), "y_m": float(state.positions_m[d, 1]),
        "speed_mps": float(state.speeds_mps[d]), "in_cell": bool(state.in_cell[d]),
        "pathloss_db": float(state.pathloss_db[d]), "gain_db": float(gain_db[d]), "snr_db": float(snr_db[d]),
        "los": bool(state.los[d]),
    } for d in range(len(state.in_cell))]


def round_row(r: int, time_s: float, accuracy: float, loss: float) -> dict:
    """A ``rounds.parquet`` row with nothing happened yet (round 0, or filled by the loop)."""
    return {
        "round": r, "time_s": float(time_s), "accuracy": float(accuracy), "loss": float(loss),
        "train_loss": math.nan, "uplink_bits": 0.0, "downlink_bits": 0.0, "energy_j": 0.0,
        "latency_s": 0.0, "duration_s": 0.0, "selected": 0, "dropped": 0, "ste": math.nan,
        "ste_planned": math.nan, "tokens_mean": math.nan,
    }
