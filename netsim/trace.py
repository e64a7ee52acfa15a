"""What happened in a round: one typed trace row per phase, outcomes, and their book-keeping.

A :class:`TraceRow` is one row of ``events.parquet`` (one device, one phase); the runner
writes :meth:`TraceRow.as_dict`. In a row, ``bits``, ``flops`` and ``energy_j`` are what was
actually done (less than planned for a truncated phase) and ``reason`` says why the phase
stopped (:class:`~netsim.reasons.Reason`; ``Reason.COMPLETED``, the empty string, if it ran
to its end). ``deadline_met`` is True iff the phase completed.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.energy import energy_left_j
from netsim.plans import Compute, DevicePlan, Transfer
from netsim.reasons import Reason


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One phase of one device in one round (the ``events.parquet`` columns).

    Attributes:
        round: Round index.
        device: Device index.
        step: Local step of the phase (-1: none).
        phase: Phase name (:data:`netsim.plans.PHASE_NAMES`).
        start_s: Start (a server phase starts when queued), s.
        end_s: End, s.
        bits: Bits actually sent.
        rate_bps: Mean rate over the phase, bit/s (0 for compute).
        power_w: Transmit power, W (0 for compute and downlink).
        bandwidth_hz: The device's bandwidth, Hz.
        energy_j: Device energy spent in the phase, J.
        flops: FLOPs actually done.
        tokens_kept: The device's token budget.
        snr_db: Time-averaged SNR of a transfer, dB (NaN for compute).
        reason: Why the phase stopped (``Reason.COMPLETED`` if it ran to its end).
    """

    round: int
    device: int
    step: int
    phase: str
    start_s: float
    end_s: float
    bits: float
    rate_bps: float
    power_w: float
    bandwidth_hz: float
    energy_j: float
    flops: float
    tokens_kept: int
    snr_db: float
    reason: Reason

    @property
    def deadline_met(self) -> bool:
        """True iff the phase completed."""
        return self.reason == Reason.COMPLETED

    def as_dict(self) -> dict:
        """The row as the writer takes it: plain Python values, ``reason`` a plain str."""
        return {
            "round": self.round,
            "device": self.device,
            "step": self.step,
            "phase": self.phase,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "bits": self.bits,
            "rate_bps": self.rate_bps,
            "power_w": self.power_w,
            "bandwidth_hz": self.bandwidth_hz,
            "energy_j": self.energy_j,
            "flops": self.flops,
            "tokens_kept": self.tokens_kept,
            "snr_db": self.snr_db,
            "deadline_met": self.deadline_met,
            "reason": str(self.reason),
        }


@dataclass(frozen=True, slots=True)
class CellTraceRow(TraceRow):
    """A :class:`TraceRow` of a multi-cell world, with the cell and the interference.

    Attributes:
        cell: Serving cell when the phase ended (the new cell for a handover row).
        from_cell: Serving cell when the phase started (the old cell for a handover row).
        sinr_db: Time-averaged SINR of a transfer, dB (NaN otherwise); ``snr_db`` is the
            interference-free SNR over the same time.
        interference_w: Time-averaged co-channel interference power of a transfer, W.
    """

    cell: int = -1
    from_cell: int = -1
    sinr_db: float = float("nan")
    interference_w: float = float("nan")

    def as_dict(self) -> dict:
        out = TraceRow.as_dict(self)
        out.update(cell=self.cell, from_cell=self.from_cell, sinr_db=self.sinr_db, interference_w=self.interference_w)
        return out


@dataclass(frozen=True)
class Outcome:
    """How one device's round ended.

    Attributes:
        device: Device index.
        finished: True iff every phase completed.
        latency_s: From the device's start to its stop, s.
        energy_j: Energy the device spent in the round, J.
        reason: Why it stopped (``Reason.COMPLETED`` if it finished).
    """

    device: int
    finished: bool
    latency_s: float
    energy_j: float
    reason: Reason


@dataclass
class RoundResult:
    """Trace rows (dicts, ``events.parquet`` columns) and one outcome per plan."""

    rows: list[dict]
    outcomes: list[Outcome]
    start_s: float
    end_s: float


class DeviceRound:
    """Book-keeping of one device during one round: its rows, energy, stop reason.

    Args:
        plan: The device's plan.
        round_index: Copied into the rows.
        start_s: When the device starts, s.
        budget_j: Its energy budget for the round, J.
        battery_j: Its battery at the start of the round, J.
    """

    __slots__ = (
        "plan", "round_index", "start_s", "energy_j", "budget_j", "battery_j", "reason", "rows", "end_s", "interrupted"
    )

    def __init__(self, plan: DevicePlan, round_index: int, start_s: float, budget_j: float, battery_j: float):
        self.plan = plan
        self.round_index = round_index
        self.start_s = start_s
        self.energy_j = 0.0
        self.budget_j = budget_j
        self.battery_j = battery_j
        self.reason = Reason.COMPLETED
        self.rows: list[TraceRow] = []
        self.end_s = start_s
        # Cause of an interrupt that arrived just as a phase completed (the phase counts as
        # done, but the device must stop before the next one).
        self.interrupted = Reason.COMPLETED

    def energy_limit(self) -> tuple[float, Reason]:
        """Energy the device may still spend (J), and the reason it would stop there."""
        return energy_left_j(self.energy_j, self.budget_j, self.battery_j)

    def record(
        self,
        phase: Compute | Transfer,
        start_s: float,
        end_s: float,
        bits: float,
        rate_bps: float,
        power_w: float,
        energy_j: float,
        flops: float,
        snr_db: float,
        reason: Reason,
    ) -> None:
        """Append one trace row and account its energy."""
        plan = self.plan
        self.energy_j += float(energy_j)
        self.end_s = float(end_s)
        self.reason = reason
        self.rows.append(
            TraceRow(
                self.round_index, plan.device, phase.step, phase.name, float(start_s), float(end_s),
                float(bits), float(rate_bps), float(power_w), float(plan.bandwidth_hz), float(energy_j),
                float(flops), plan.tokens_kept, snr_db, reason,
            )
        )

    def record_stop(self, phase: Compute | Transfer, now_s: float, reason: Reason) -> None:
        """Record a phase that never ran (the device stopped before it), at ``now_s``."""
        self.record(phase, now_s, now_s, 0.0, 0.0, 0.0, 0.0, 0.0, float("nan"), reason)
