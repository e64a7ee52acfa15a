"""The SimPy processes of one device's round: the deadline race, the pipeline, each phase.

:class:`DeviceProcesses` is the half of :class:`netsim.world.World` that runs devices; the
World holds the cell (environment, channel process, rates) and inherits these processes.
They read, from the World: ``env``, ``server`` (a ``simpy.Resource``), ``devices``,
``config``, the channel-update event ``_updated`` and counter ``_interval``, ``_in_cell``,
and the per-device rates and SNRs ``_rate_ul``, ``_snr_ul``, ``_rate_dl``, ``_snr_dl``,
which the World replaces at every channel update.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import simpy

from netsim import energy
from netsim.plans import Compute, Transfer
from netsim.reasons import Reason
from netsim.trace import DeviceRound
from netsim.transfer import drained_bits, segment_end
from netsim.units import lin_to_db

Process = Generator[simpy.Event, Any, None]


def delay_until(now: float, target: float) -> float:
    """Delay d >= 0 with ``now + d == target`` exactly in floating point (when reachable)."""
    delay = target - now
    for _ in range(4):
        t = now + delay
        if t == target:
            break
        delay = math.nextafter(delay, math.inf if t < target else -math.inf)
    return max(delay, 0.0)


class DeviceProcesses:
    """SimPy processes of the devices' rounds (mixed into :class:`netsim.world.World`)."""

    def _sequential(self, rounds: list[DeviceRound], deadline_at: float) -> Process:
        for r in rounds:
            r.start_s = self.env.now
            yield from self._race(r, deadline_at)

    def _race(self, r: DeviceRound, deadline_at: float) -> Process:
        env = self.env
        if env.now >= deadline_at:
            # Its turn never came before the deadline (sequential schedule).
            if r.plan.phases:
                r.record_stop(r.plan.phases[0], env.now, Reason.DEADLINE)
            return
        pipeline = env.process(self._pipeline(r))
        deadline = env.timeout(delay_until(env.now, deadline_at))
        yield pipeline | deadline
        if not pipeline.triggered:
            pipeline.interrupt(Reason.DEADLINE)
            yield pipeline

    def _pipeline(self, r: DeviceRound) -> Process:
        plan = r.plan
        if plan.phases and self.devices.battery_j[plan.device] <= 0.0:
            r.record_stop(plan.phases[0], self.env.now, Reason.BATTERY)
            return
        for phase in plan.phases:
            if r.interrupted:
                r.record_stop(phase, self.env.now, r.interrupted)
                return
            if isinstance(phase, Transfer):
                yield from self._transfer(r, phase)
            elif phase.where == "device":
                yield from self._device_compute(r, phase)
            else:
                yield from self._server_compute(r, phase)
            if r.reason:
                return

    def _device_compute(self, r: DeviceRound, phase: Compute) -> Process:
        env = self.env
        i = r.plan.device
        d = self.devices
        start = env.now
        speed_flops = float(energy.compute_speed_flops_per_s(d.cpu_hz[i], d.flops_per_cycle[i]))
        power_w = float(energy.compute_power_w(d.cpu_hz[i], d.kappa[i]))
        duration = float(energy.compute_time_s(phase.flops, d.cpu_hz[i], d.flops_per_cycle[i]))
        stop_reason = Reason.COMPLETED
        limit_j, limit_reason = r.energy_limit()
        if energy.drawn_energy_j(power_w, duration) > limit_j:
            duration, stop_reason = energy.time_to_spend_s(limit_j, power_w), limit_reason
        end_planned = start + duration
        try:
            yield env.timeout(duration)
        except simpy.Interrupt as interrupt:
            r.interrupted = interrupt.cause
            if env.now < end_planned:
                stop_reason = interrupt.cause
        elapsed = env.now - start
        flops = phase.flops if stop_reason == Reason.COMPLETED else float(elapsed * speed_flops)
        r.record(phase, start, env.now, 0.0, 0.0, 0.0, energy.drawn_energy_j(power_w, elapsed), flops, math.nan,
                 stop_reason)

    def _server_compute(self, r: DeviceRound, phase: Compute) -> Process:
        env = self.env
        start = env.now
        served_from = math.inf
        duration = phase.flops / self.config.server.flops_per_s
        stop_reason = Reason.COMPLETED
        with self.server.request() as request:
            try:
                yield request
                served_from = env.now
                yield env.timeout(duration)
            except simpy.Interrupt as interrupt:
                r.interrupted = interrupt.cause
                if env.now < served_from + duration:
                    stop_reason = interrupt.cause
        done = phase.flops if stop_reason == Reason.COMPLETED else max(env.now - served_from, 0.0) * self.config.server.flops_per_s
        r.record(phase, start, env.now, 0.0, 0.0, 0.0, 0.0, float(done), math.nan, stop_reason)

    def _transfer(self, r: DeviceRound, phase: Transfer) -> Process:
        env = self.env
        i = r.plan.device
        uplink = phase.direction == "uplink"
        power_w = r.plan.power_w if uplink else 0.0
        coherence_s = self.config.coherence_s
        start = env.now
        remaining = float(phase.bits)
        sent = 0.0
        snr_time = 0.0  # integral of linear SNR over the phase (SNR x s)
        stop_reason = Reason.COMPLETED
        limit_j, limit_reason = r.energy_limit()
        energy_stop = start + energy.time_to_spend_s(limit_j, power_w)
        rates, snrs = (self._rate_ul, self._snr_ul) if uplink else (self._rate_dl, self._snr_dl)
        rate, snr = float(rates[i]), float(snrs[i])  # reported as-is if the phase takes no time
        seg_start = start
        try:
            while remaining > 0.0:
                if not self._in_cell[i]:
                    stop_reason = Reason.LEFT_CELL
                    break
                # The rate arrays are replaced at every channel update: read them afresh.
                if uplink:
                    rate, snr = float(self._rate_ul[i]), float(self._snr_ul[i])
                else:
                    rate, snr = float(self._rate_dl[i]), float(self._snr_dl[i])
                seg_start = env.now
                stop, completes = segment_end(seg_start, remaining, rate, energy_stop)
                if stop <= (self._interval + 1) * coherence_s:
                    # Done (or out of energy) before the channel changes.
                    yield env.timeout(stop - seg_start)
                    if completes:
                        sent += remaining
                        remaining = 0.0
                    else:
                        sent += rate * (env.now - seg_start)
                        stop_reason = limit_reason
                    snr_time += snr * (env.now - seg_start)
                    break
                # Finishes after the next update: wait for it, then continue at the new rate.
                yield self._updated
                airtime = env.now - seg_start
                chunk = drained_bits(rate, airtime, remaining)
                sent += chunk
                remaining -= chunk
                snr_time += snr * airtime
        except simpy.Interrupt as interrupt:
            r.interrupted = interrupt.cause
            chunk = drained_bits(rate, env.now - seg_start, remaining)
            sent += chunk
            remaining -= chunk
            snr_time += snr * (env.now - seg_start)
            # A transfer that completes at the very instant of the deadline has met it.
            if remaining > 1e-9 * max(phase.bits, 1.0):
                stop_reason = interrupt.cause
            else:
                sent += remaining
        elapsed = env.now - start
        mean_rate = sent / elapsed if elapsed > 0 else rate
        mean_snr = snr_time / elapsed if elapsed > 0 else snr
        r.record(
            phase, start, env.now, sent, mean_rate, power_w, energy.drawn_energy_j(power_w, elapsed), 0.0,
            float(lin_to_db(mean_snr)), stop_reason,
        )
