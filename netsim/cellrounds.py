"""The SimPy processes of a device's round in a multi-cell world.

:class:`CellProcesses` overrides three processes of :class:`netsim.rounds.DeviceProcesses`
for :class:`netsim.cellworld.CellWorld`:

* a transfer tells the world when it starts and stops transmitting, so every other transfer's
  SINR (and rate) is recomputed at that instant; it drains at the rate the channel gives now,
  waking at each channel update *and* at each change of who transmits (event-driven, exact for
  the piecewise-constant rate), and records its time-averaged SINR and interference;
* a server phase runs on the edge server of the device's serving cell, after the device's
  session state has arrived there if it has just changed cell (the wait is part of the phase);
* a downlink waits for the same migration before it starts.

It reads from the world: ``_serving``, ``servers``, ``_ready_s`` (when each device's migrated
session is available), ``_set_active(i, uplink, on)``, ``_waiting`` (device -> the event that
wakes its transfer when another transfer's start or stop changes its rate), ``_interference_ul`` / ``_interference_dl`` and ``_snr_free_ul`` / ``_snr_free_dl``
(interference-free SNR), plus what the base processes read.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from netsim import energy
from netsim.plans import Compute, DevicePlan, Transfer
from netsim.reasons import Reason
from netsim.rounds import DeviceProcesses, Process
from netsim.trace import CellTraceRow, DeviceRound
from netsim.transfer import drained_bits, segment_end
from netsim.units import lin_to_db


class CellDeviceRound(DeviceRound):
    """A device's round whose rows say the cell and, for transfers, the SINR and interference.

    ``serving`` is the world's serving-cell array (read when a row is recorded);
    ``phase_cell`` the cell when the current phase started; ``extra`` the
    ``(sinr_db, interference_w)`` of the transfer being recorded.
    """

    __slots__ = ("serving", "phase_cell", "extra")

    def __init__(self, plan: DevicePlan, round_index: int, start_s: float, budget_j: float, battery_j: float):
        super().__init__(plan, round_index, start_s, budget_j, battery_j)
        self.serving = None
        self.phase_cell = -1
        self.extra = (math.nan, math.nan)

    def record(self, phase, start_s, end_s, bits, rate_bps, power_w, energy_j, flops, snr_db, reason) -> None:
        plan = self.plan
        self.energy_j += float(energy_j)
        self.end_s = float(end_s)
        self.reason = reason
        cell = int(self.serving[plan.device])
        from_cell = cell if self.phase_cell < 0 else self.phase_cell
        sinr_db, interference_w = self.extra
        self.extra = (math.nan, math.nan)
        self.phase_cell = -1
        self.rows.append(
            CellTraceRow(
                self.round_index, plan.device, phase.step, phase.name, float(start_s), float(end_s),
                float(bits), float(rate_bps), float(power_w), float(plan.bandwidth_hz), float(energy_j),
                float(flops), plan.tokens_kept, snr_db, reason, cell, from_cell, float(sinr_db), float(interference_w),
            )
        )


class CellProcesses(DeviceProcesses):
    """Device processes of a multi-cell world (module docstring)."""

    _device_round_type = CellDeviceRound

    def _race(self, r: CellDeviceRound, deadline_at: float) -> Process:
        # Every device round passes here, its pipeline included; on the sequential schedule a
        # device whose turn never comes is recorded as stopped by the deadline with no pipeline.
        r.serving = self._serving
        yield from super()._race(r, deadline_at)

    def _pipeline(self, r: CellDeviceRound) -> Process:
        i = r.plan.device
        # The handover logic interrupts this process to drop the device.
        self._pipelines[i] = (self.env.active_process, r)
        try:
            yield from super()._pipeline(r)
        finally:
            self._pipelines.pop(i, None)
            self._inflight_bits[i] = 0.0

    def _wait_for_session(self, i: int) -> Process:
        wait = self._ready_s[i] - self.env.now
        if wait > 0.0:
            yield self.env.timeout(wait)

    def _server_compute(self, r: CellDeviceRound, phase: Compute) -> Process:
        env = self.env
        i = r.plan.device
        r.phase_cell = int(self._serving[i])
        start = env.now
        served_from = math.inf
        duration = phase.flops / self.config.server.flops_per_s
        stop_reason = Reason.COMPLETED
        try:
            yield from self._wait_for_session(i)
            with self.servers[int(self._serving[i])].request() as request:
                yield request
                served_from = env.now
                yield env.timeout(duration)
        except simpy.Interrupt as interrupt:
            r.interrupted = interrupt.cause
            if env.now < served_from + duration:
                stop_reason = interrupt.cause
        done = phase.flops if stop_reason == Reason.COMPLETED else max(env.now - served_from, 0.0) * self.config.server.flops_per_s
        r.record(phase, start, env.now, 0.0, 0.0, 0.0, 0.0, float(done), math.nan, stop_reason)

    def _wait_for_change(self, i: int, uplink: bool) -> simpy.Event:
        event = self.env.event()
        self._waiting[i] = (event, uplink)
        return event

    def _link_now(self, i: int, uplink: bool) -> tuple[float, float, float, float]:
        if uplink:
            return (float(self._rate_ul[i]), float(self._snr_ul[i]), float(self._snr_free_ul[i]),
                    float(self._interference_ul[i]))
        return (float(self._rate_dl[i]), float(self._snr_dl[i]), float(self._snr_free_dl[i]),
                float(self._interference_dl[i]))

    def _transfer(self, r: CellDeviceRound, phase: Transfer) -> Process:
        env = self.env
        i = r.plan.device
        uplink = phase.direction == "uplink"
        power_w = r.plan.power_w if uplink else 0.0
        coherence_s = self.config.coherence_s
        r.phase_cell = int(self._serving[i])
        start = env.now
        remaining = float(phase.bits)
        sent = 0.0
        # Time integrals over the phase: SINR, interference-free SNR, interference power.
        sinr_time = snr_time = interference_time = 0.0
        stop_reason = Reason.COMPLETED
        limit_j, limit_reason = r.energy_limit()
        energy_stop = start + energy.time_to_spend_s(limit_j, power_w)
        if phase.name == "uplink":
            self._inflight_bits[i] = float(phase.bits)
        active = False
        air_start = start
        rate, sinr, snr, interference = self._link_now(i, uplink)
        seg_start = start
        try:
            if not uplink:
                yield from self._wait_for_session(i)
            seg_start = air_start = env.now
            self._set_active(i, uplink, True)
            active = True
            while remaining > 0.0:
                rate, sinr, snr, interference = self._link_now(i, uplink)
                seg_start = env.now
                stop, completes = segment_end(seg_start, remaining, rate, energy_stop)
                next_update = (self._interval + 1) * coherence_s
                if stop <= next_update:
                    done = env.timeout(stop - seg_start)
                    fired = yield done | self._wait_for_change(i, uplink)
                    self._waiting.pop(i, None)
                    if done in fired:
                        if completes:
                            sent += remaining
                            remaining = 0.0
                        else:
                            sent += rate * (env.now - seg_start)
                            stop_reason = limit_reason
                        airtime = env.now - seg_start
                        sinr_time += sinr * airtime
                        snr_time += snr * airtime
                        interference_time += interference * airtime
                        self._account_interference(i, uplink, interference, airtime)
                        break
                else:
                    yield self._updated | self._wait_for_change(i, uplink)
                    self._waiting.pop(i, None)
                airtime = env.now - seg_start
                chunk = drained_bits(rate, airtime, remaining)
                sent += chunk
                remaining -= chunk
                sinr_time += sinr * airtime
                snr_time += snr * airtime
                interference_time += interference * airtime
                self._account_interference(i, uplink, interference, airtime)
        except simpy.Interrupt as interrupt:
            self._waiting.pop(i, None)
            r.interrupted = interrupt.cause
            airtime = env.now - seg_start if active else 0.0
            chunk = drained_bits(rate, airtime, remaining)
            sent += chunk
            remaining -= chunk
            sinr_time += sinr * airtime
            snr_time += snr * airtime
            interference_time += interference * airtime
            if active:
                self._account_interference(i, uplink, interference, airtime)
            if remaining > 1e-9 * max(phase.bits, 1.0):
                stop_reason = interrupt.cause
            else:
                sent += remaining
        finally:
            if active:
                self._set_active(i, uplink, False)
        # Averages over the time on air (the migration wait of a downlink sends nothing).
        on_air = env.now - air_start if active else 0.0
        elapsed = env.now - start
        mean_rate = sent / elapsed if elapsed > 0 else rate

        def mean(integral: float, instant: float) -> float:
            return integral / on_air if on_air > 0 else instant

        r.extra = (float(lin_to_db(mean(sinr_time, sinr))), mean(interference_time, interference))
        r.record(
            phase, start, env.now, sent, mean_rate, power_w, energy.drawn_energy_j(power_w, elapsed), 0.0,
            float(lin_to_db(mean(snr_time, snr))), stop_reason,
        )
