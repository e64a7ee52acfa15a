"""The SimPy world: one Environment, the cell's channel process, and each device's round.

Physics comes from the pure modules (:mod:`netsim.channel`, :mod:`netsim.ofdma`,
:mod:`netsim.energy`, :mod:`netsim.mobility`); this module only schedules. Time is in seconds.

* Channel process: one event per coherence interval for the whole cell. Update ``k`` happens
  at ``k * coherence_s`` computed from the integer ``k`` (never by accumulating floats), moves
  every device, advances shadowing and fading, and recomputes every device's uplink and
  downlink rate at its current bandwidth and power, all vectorised.
* A device's round is a process running its plan's phases in order. A transfer drains its
  bits at the rate the channel gives now; if the channel updates before it is done, it waits
  for the update and the remaining bits continue at the new rate, so finish time and energy
  (power x airtime) are exact for the piecewise-constant rate. Device compute draws
  ``kappa f^3`` watts; server compute queues on a ``simpy.Resource``.
* Each device's pipeline races ``env.timeout(deadline_s)`` from the round start. The phase in
  progress when something stops the device is recorded, truncated, with its reason:
  ``"deadline"``; ``"left-cell"`` (the device is outside the cell at the start of, or at a
  channel update during, a transfer); ``"energy"`` / ``"battery"`` (the per-round budget /
  the battery would be exceeded: the phase stops when it is spent). Later phases do not run.

Trace rows are plain dicts with the ``events.parquet`` columns of docs/interfaces.md. In a
row, ``bits``, ``flops`` and ``energy_j`` are what was actually done (less than planned for a
truncated phase), ``deadline_met`` is True iff the phase completed (``reason == ""``).
Server phases start when the request is queued (queueing is part of their duration). Device
energy counts computing and transmitting; receiving and idling are not modelled.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from netsim import ofdma
from netsim.channel import Channel, ChannelConfig
from netsim.energy import DeviceArrays, DeviceConfig, ServerConfig, draw_devices
from netsim.mobility import MobilityConfig, StaticConfig, make_mobility
from netsim.reasons import Reason
from netsim.units import lin_to_db

PHASE_NAMES = (
    "device_forward",
    "uplink",
    "server",
    "downlink",
    "device_backward",
    "adapter_uplink",
    "adapter_downlink",
)
SCHEDULES = ("parallel", "sequential")
_RNG_STREAMS = ("mobility", "shadowing", "fading", "devices")
_Process = Generator[simpy.Event, Any, None]


@dataclass(frozen=True)
class Compute:
    """A compute phase: ``flops`` on the device's CPU or on the edge server."""

    name: str
    flops: float
    where: str = "device"
    step: int = -1

    def __post_init__(self) -> None:
        if self.name not in PHASE_NAMES:
            raise ValueError(f"name must be one of {PHASE_NAMES}, got {self.name!r}")
        if not self.flops >= 0:
            raise ValueError(f"flops must be >= 0, got {self.flops!r}")
        if self.where not in ("device", "server"):
            raise ValueError(f"where must be 'device' or 'server', got {self.where!r}")


@dataclass(frozen=True)
class Transfer:
    """A transfer phase: ``bits`` over the uplink (device power) or the downlink (BS power)."""

    name: str
    bits: float
    direction: str = "uplink"
    step: int = -1

    def __post_init__(self) -> None:
        if self.name not in PHASE_NAMES:
            raise ValueError(f"name must be one of {PHASE_NAMES}, got {self.name!r}")
        if not self.bits >= 0:
            raise ValueError(f"bits must be >= 0, got {self.bits!r}")
        if self.direction not in ("uplink", "downlink"):
            raise ValueError(f"direction must be 'uplink' or 'downlink', got {self.direction!r}")


@dataclass(frozen=True)
class DevicePlan:
    """What one device does in a round: its phases in order, with its radio resources.

    Attributes:
        device: Device index in ``[0, num_devices)``.
        phases: :class:`Compute` and :class:`Transfer` phases, run in order.
        bandwidth_hz: Uplink and downlink bandwidth of the device in Hz.
        power_w: Uplink transmit power in W (at most the device's maximum).
        tokens_kept: Token budget, copied into the trace.
    """

    device: int
    phases: tuple
    bandwidth_hz: float
    power_w: float
    tokens_kept: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        for phase in self.phases:
            if not isinstance(phase, (Compute, Transfer)):
                raise ValueError(f"phases must hold Compute or Transfer, got {phase!r}")
        if not self.bandwidth_hz >= 0:
            raise ValueError(f"bandwidth_hz must be >= 0, got {self.bandwidth_hz!r}")
        if not self.power_w >= 0:
            raise ValueError(f"power_w must be >= 0, got {self.power_w!r}")


@dataclass(frozen=True)
class Outcome:
    """How one device's round ended."""

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


@dataclass(frozen=True)
class ChannelState:
    """Snapshot of the cell for an allocation policy; arrays are ``[N]`` copies."""

    gain_lin: np.ndarray
    pathloss_db: np.ndarray
    shadowing_db: np.ndarray
    positions_m: np.ndarray
    speeds_mps: np.ndarray
    in_cell: np.ndarray
    time_left_s: np.ndarray
    noise_psd_w_per_hz: float
    total_bandwidth_hz: float
    max_power_w: np.ndarray
    energy_budget_j: np.ndarray
    battery_j: np.ndarray
    cpu_hz: np.ndarray
    flops_per_cycle: np.ndarray
    kappa: np.ndarray
    server_flops_per_s: float


@dataclass(frozen=True)
class WorldConfig:
    """Everything that defines a World (with the seed).

    Attributes:
        num_devices: Number of devices N.
        cell_radius_m: Cell radius in m (BS at the centre).
        coherence_s: Block length of the channel process in s (10 ms: one NR/LTE frame).
        ofdma: Numerology, band and radio parameters.
        channel: Propagation model.
        mobility: :class:`~netsim.mobility.StaticConfig`, ``RandomWaypointConfig`` or
            ``HighwayConfig``.
        device: Device hardware ranges.
        server: Edge server.
    """

    num_devices: int = 10
    cell_radius_m: float = 300.0
    coherence_s: float = 0.01
    ofdma: ofdma.OfdmaConfig = field(default_factory=ofdma.OfdmaConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    mobility: MobilityConfig = field(default_factory=StaticConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

    def __post_init__(self) -> None:
        if not (isinstance(self.num_devices, (int, np.integer)) and self.num_devices >= 1):
            raise ValueError(f"num_devices must be an int >= 1, got {self.num_devices!r}")
        if not self.cell_radius_m > 0:
            raise ValueError(f"cell_radius_m must be > 0, got {self.cell_radius_m!r}")
        if not self.coherence_s > 0:
            raise ValueError(f"coherence_s must be > 0, got {self.coherence_s!r}")


def _delay_until(now: float, target: float) -> float:
    """Delay d >= 0 with ``now + d == target`` exactly in floating point (when reachable)."""
    delay = target - now
    for _ in range(4):
        t = now + delay
        if t == target:
            break
        delay = math.nextafter(delay, math.inf if t < target else -math.inf)
    return max(delay, 0.0)


class _DeviceRound:
    """Book-keeping of one device during one round (not part of the public API)."""

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
        self.rows: list[dict] = []
        self.end_s = start_s
        # Cause of an interrupt that arrived just as a phase completed (the phase counts as
        # done, but the device must stop before the next one).
        self.interrupted = Reason.COMPLETED

    def energy_limit(self) -> tuple[float, str]:
        """Energy the device may still spend (J), and the reason it would stop there."""
        budget_left = self.budget_j - self.energy_j
        battery_left = self.battery_j - self.energy_j
        if battery_left < budget_left:
            return max(battery_left, 0.0), Reason.BATTERY
        return max(budget_left, 0.0), Reason.ENERGY

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
        reason: str,
    ) -> None:
        """Append one trace row and account its energy."""
        plan = self.plan
        self.energy_j += float(energy_j)
        self.end_s = float(end_s)
        self.reason = reason
        self.rows.append(
            {
                "round": self.round_index,
                "device": plan.device,
                "step": phase.step,
                "phase": phase.name,
                "start_s": float(start_s),
                "end_s": float(end_s),
                "bits": float(bits),
                "rate_bps": float(rate_bps),
                "power_w": float(power_w),
                "bandwidth_hz": float(plan.bandwidth_hz),
                "energy_j": float(energy_j),
                "flops": float(flops),
                "tokens_kept": plan.tokens_kept,
                "snr_db": snr_db,
                "deadline_met": reason == Reason.COMPLETED,
                "reason": str(reason),
            }
        )


class World:
    """The simulated cell: devices, channel, edge server, and their SimPy processes.

    Args:
        config: The world's configuration.
        seed: Root seed; ``SeedSequence(seed).spawn(4)`` gives independent streams for
            mobility, shadowing, fading and device heterogeneity.
    """

    def __init__(self, config: WorldConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        n = config.num_devices
        streams = np.random.SeedSequence(seed).spawn(len(_RNG_STREAMS))
        self._rng = {name: np.random.default_rng(ss) for name, ss in zip(_RNG_STREAMS, streams)}
        self.devices = draw_devices(config.device, n, self._rng["devices"])
        self.mobility = make_mobility(config.mobility, n, config.cell_radius_m, self._rng["mobility"])
        self.channel = Channel(
            config.channel,
            n,
            config.ofdma.num_rb,
            self.mobility.distances_2d_m(),
            self._rng["shadowing"],
            self._rng["fading"],
        )
        self._total_bandwidth_hz = config.ofdma.usable_bandwidth_hz
        self._noise_ul = ofdma.noise_psd_w_per_hz(config.ofdma.bs_noise_figure_db)
        self._noise_dl = ofdma.noise_psd_w_per_hz(config.ofdma.ue_noise_figure_db)
        self._bs_power_w = config.ofdma.bs_tx_power_w
        self._max_se = config.ofdma.max_spectral_efficiency
        # Radio resources each device uses now: an equal share at full power until a plan says
        # otherwise (so that idle devices have a meaningful nominal rate).
        self._bandwidth_hz = np.full(n, self._total_bandwidth_hz / n)
        self._power_w = self.devices.max_power_w.copy()
        self._interval = 0
        self._in_cell = self.mobility.in_cell()
        self._set_radio()
        self._start_env(0.0)

    # ------------------------------------------------------------------ properties
    @property
    def now_s(self) -> float:
        """Simulated clock in s."""
        return float(self.env.now)

    @property
    def num_devices(self) -> int:
        """Number of devices N."""
        return self.config.num_devices

    @property
    def interval(self) -> int:
        """Number of channel updates so far (update k happened at ``k * coherence_s``)."""
        return self._interval

    # ------------------------------------------------------------------ channel process
    def _start_env(self, now_s: float) -> None:
        self.env = simpy.Environment(initial_time=now_s)
        self.server = simpy.Resource(self.env, capacity=self.config.server.parallel_slots)
        self._updated = self.env.event()
        self.env.process(self._channel_process())

    def _channel_process(self) -> _Process:
        env = self.env
        coherence_s = self.config.coherence_s
        while True:
            target = (self._interval + 1) * coherence_s
            delay = target - env.now
            if env.now + delay != target:
                delay = _delay_until(env.now, target)
            yield env.timeout(delay)
            self._update_channel()
            # Wake the transfers waiting for this update (only if any: an untriggered spare
            # event costs nothing, a triggered one costs a queue entry).
            if self._updated.callbacks:
                event, self._updated = self._updated, env.event()
                event.succeed()

    def _update_channel(self) -> None:
        """Advance mobility and channel by one coherence interval, all devices at once."""
        self._interval += 1
        dt_s = self.config.coherence_s
        moved_m = self.mobility.step(dt_s, self._rng["mobility"])
        self.channel.update(
            self.mobility.distances_2d_m(), moved_m, self.mobility.speeds_mps, dt_s,
            self._rng["shadowing"], self._rng["fading"],
        )
        self._in_cell = self.mobility.in_cell()
        self._compute_rates()

    def _set_radio(self) -> None:
        """Recompute what depends only on each device's bandwidth and power (not the channel)."""
        b = self._bandwidth_hz
        # SNR is linear in the gain: keep the SNR per unit gain, [N], so that the per-update
        # flat-fading rate is one multiply and one Shannon formula per link.
        self._snr_per_gain_ul = ofdma.snr_lin(self._power_w, 1.0, b, self._noise_ul)
        dl_power_w = self._bs_power_w * b / self._total_bandwidth_hz  # BS power split by share
        self._snr_per_gain_dl = ofdma.snr_lin(dl_power_w, 1.0, b, self._noise_dl)
        self._compute_rates()

    def _compute_rates(self) -> None:
        """Uplink and downlink rate and SNR of every device at its bandwidth and power now."""
        # [N, 1] (flat) or [N, num_rb]
        gain = self.channel.gain_lin
        b = self._bandwidth_hz
        if gain.shape[1] == 1:
            gain = gain[:, 0]
            self._snr_ul = self._snr_per_gain_ul * gain
            self._snr_dl = self._snr_per_gain_dl * gain
            self._rate_ul = ofdma.capped_shannon_rate_bps(b, self._snr_ul, self._max_se)
            self._rate_dl = ofdma.capped_shannon_rate_bps(b, self._snr_dl, self._max_se)
            return
        self._rate_ul, self._snr_ul = ofdma.uplink_rate_bps(b, self._power_w, gain, self._noise_ul, self._max_se)
        self._rate_dl, self._snr_dl = ofdma.downlink_rate_bps(
            b, self._bs_power_w, self._total_bandwidth_hz, gain, self._noise_dl, self._max_se
        )

    # ------------------------------------------------------------------ public API
    def channel_state(self) -> ChannelState:
        """Snapshot of every device's channel, position, hardware and battery (copies)."""
        d = self.devices
        return ChannelState(
            gain_lin=self.channel.wideband_gain_lin.copy(),
            pathloss_db=self.channel.pathloss_db.copy(),
            shadowing_db=self.channel.shadowing_db.copy(),
            positions_m=self.mobility.positions_m.copy(),
            speeds_mps=np.array(self.mobility.speeds_mps, dtype=float),
            in_cell=self._in_cell.copy(),
            time_left_s=self.mobility.time_left_s(),
            noise_psd_w_per_hz=self._noise_ul,
            total_bandwidth_hz=self._total_bandwidth_hz,
            max_power_w=d.max_power_w.copy(),
            energy_budget_j=d.energy_budget_j.copy(),
            battery_j=d.battery_j.copy(),
            cpu_hz=d.cpu_hz.copy(),
            flops_per_cycle=d.flops_per_cycle.copy(),
            kappa=d.kappa.copy(),
            server_flops_per_s=float(self.config.server.flops_per_s),
        )

    def advance(self, duration_s: float) -> None:
        """Let simulated time pass (channel and mobility keep updating).

        Args:
            duration_s: Time to advance in s (>= 0).
        """
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")
        if duration_s > 0:
            self.env.run(until=self.env.now + duration_s)

    def run_round(
        self, round_index: int, plans: list[DevicePlan], deadline_s: float, schedule: str = "parallel"
    ) -> RoundResult:
        """Run one round of every plan from the current time until all devices stop.

        Args:
            round_index: Copied into the trace rows.
            plans: One :class:`DevicePlan` per participating device (distinct devices).
            deadline_s: Deadline from the round start in s (> 0).
            schedule: ``"parallel"`` (all devices at once, split federated learning) or
                ``"sequential"`` (devices take turns in plan order, vanilla split learning).

        Returns:
            The trace rows and one :class:`Outcome` per plan, in plan order. The clock ends at
            the last device's stop (at most ``start + deadline_s``).

        Raises:
            ValueError: Bad deadline, schedule, device index, duplicate device, power above the
                device's maximum, or (parallel) bandwidths summing above the band.
        """
        self._check_plans(plans, deadline_s, schedule)
        env = self.env
        start_s = env.now
        if not plans:
            return RoundResult([], [], start_s, start_s)
        idx = np.array([p.device for p in plans])
        self._bandwidth_hz[idx] = [p.bandwidth_hz for p in plans]
        self._power_w[idx] = [p.power_w for p in plans]
        self._set_radio()
        d = self.devices
        rounds = [
            _DeviceRound(p, round_index, start_s, float(d.energy_budget_j[p.device]), float(d.battery_j[p.device]))
            for p in plans
        ]
        deadline_at = start_s + deadline_s
        if schedule == "parallel":
            done = env.all_of([env.process(self._race(r, deadline_at)) for r in rounds])
        else:
            done = env.process(self._sequential(rounds, deadline_at))
        env.run(until=done)
        rows: list[dict] = []
        outcomes = []
        for r in rounds:
            d.battery_j[r.plan.device] -= r.energy_j
            rows.extend(r.rows)
            outcomes.append(Outcome(r.plan.device, r.reason == Reason.COMPLETED, r.end_s - start_s, r.energy_j, r.reason))
        return RoundResult(rows, outcomes, float(start_s), float(env.now))

    def _check_plans(self, plans: list[DevicePlan], deadline_s: float, schedule: str) -> None:
        if not deadline_s > 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        seen = set()
        tol = 1.0 + 1e-9
        for p in plans:
            if not 0 <= p.device < self.num_devices:
                raise ValueError(f"device must be in [0, {self.num_devices}), got {p.device!r}")
            if p.device in seen:
                raise ValueError(f"device {p.device!r} appears in more than one plan")
            seen.add(p.device)
            if p.power_w > self.devices.max_power_w[p.device] * tol:
                raise ValueError(
                    f"power_w of device {p.device} must be <= {float(self.devices.max_power_w[p.device])!r}, "
                    f"got {p.power_w!r}"
                )
            if p.bandwidth_hz > self._total_bandwidth_hz * tol:
                raise ValueError(f"bandwidth_hz must be <= {self._total_bandwidth_hz!r}, got {p.bandwidth_hz!r}")
        total = sum(p.bandwidth_hz for p in plans)
        if schedule == "parallel" and total > self._total_bandwidth_hz * tol:
            raise ValueError(f"sum of bandwidth_hz must be <= {self._total_bandwidth_hz!r}, got {total!r}")

    # ------------------------------------------------------------------ device processes
    def _sequential(self, rounds: list[_DeviceRound], deadline_at: float) -> _Process:
        for r in rounds:
            r.start_s = self.env.now
            yield from self._race(r, deadline_at)

    def _race(self, r: _DeviceRound, deadline_at: float) -> _Process:
        env = self.env
        if env.now >= deadline_at:
            # Its turn never came before the deadline (sequential schedule).
            if r.plan.phases:
                r.record(r.plan.phases[0], env.now, env.now, 0.0, 0.0, 0.0, 0.0, 0.0, math.nan, Reason.DEADLINE)
            return
        pipeline = env.process(self._pipeline(r))
        deadline = env.timeout(_delay_until(env.now, deadline_at))
        yield pipeline | deadline
        if not pipeline.triggered:
            pipeline.interrupt(Reason.DEADLINE)
            yield pipeline

    def _pipeline(self, r: _DeviceRound) -> _Process:
        plan = r.plan
        if plan.phases and self.devices.battery_j[plan.device] <= 0.0:
            now = self.env.now
            r.record(plan.phases[0], now, now, 0.0, 0.0, 0.0, 0.0, 0.0, math.nan, Reason.BATTERY)
            return
        for phase in plan.phases:
            if r.interrupted:
                now = self.env.now
                r.record(phase, now, now, 0.0, 0.0, 0.0, 0.0, 0.0, math.nan, r.interrupted)
                return
            if isinstance(phase, Transfer):
                yield from self._transfer(r, phase)
            elif phase.where == "device":
                yield from self._device_compute(r, phase)
            else:
                yield from self._server_compute(r, phase)
            if r.reason:
                return

    def _device_compute(self, r: _DeviceRound, phase: Compute) -> _Process:
        env = self.env
        i = r.plan.device
        d = self.devices
        start = env.now
        speed_flops = float(d.cpu_hz[i] * d.flops_per_cycle[i])
        power_w = float(d.kappa[i] * d.cpu_hz[i] ** 3)
        duration = phase.flops / speed_flops
        stop_reason = Reason.COMPLETED
        limit_j, limit_reason = r.energy_limit()
        if power_w * duration > limit_j:
            duration, stop_reason = limit_j / power_w, limit_reason
        end_planned = start + duration
        try:
            yield env.timeout(duration)
        except simpy.Interrupt as interrupt:
            r.interrupted = interrupt.cause
            if env.now < end_planned:
                stop_reason = interrupt.cause
        elapsed = env.now - start
        flops = phase.flops if stop_reason == Reason.COMPLETED else float(elapsed * speed_flops)
        r.record(phase, start, env.now, 0.0, 0.0, 0.0, power_w * elapsed, flops, math.nan, stop_reason)

    def _server_compute(self, r: _DeviceRound, phase: Compute) -> _Process:
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

    def _transfer(self, r: _DeviceRound, phase: Transfer) -> _Process:
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
        energy_stop = start + limit_j / power_w if power_w > 0.0 else math.inf
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
                finish = seg_start + remaining / rate if rate > 0.0 else math.inf
                stop = finish if finish < energy_stop else energy_stop
                if stop <= (self._interval + 1) * coherence_s:
                    # Done (or out of energy) before the channel changes.
                    yield env.timeout(stop - seg_start)
                    if finish <= energy_stop:
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
                chunk = rate * airtime
                if chunk > remaining:
                    chunk = remaining
                sent += chunk
                remaining -= chunk
                snr_time += snr * airtime
        except simpy.Interrupt as interrupt:
            r.interrupted = interrupt.cause
            chunk = min(rate * (env.now - seg_start), remaining)
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
            phase, start, env.now, sent, mean_rate, power_w, power_w * elapsed, 0.0,
            float(lin_to_db(mean_snr)), stop_reason,
        )

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict:
        """Everything needed to continue: arrays, RNG states, clock and interval counter."""
        return {
            "seed": self.seed,
            "now_s": float(self.env.now),
            "interval": int(self._interval),
            "mobility": self.mobility.state_dict(),
            "channel": self.channel.state_dict(),
            "devices": {k: v.copy() for k, v in dataclasses.asdict(self.devices).items()},
            "bandwidth_hz": self._bandwidth_hz.copy(),
            "power_w": self._power_w.copy(),
            "rng": {name: rng.bit_generator.state for name, rng in self._rng.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` into a world built from the same config (any seed).

        Work in flight is not saved: restore between rounds. The restored world then
        continues exactly as the original would (same events, same trace rows).
        """
        mob = self.mobility
        mob.load_state_dict(state["mobility"])
        self.devices = DeviceArrays(**{k: np.array(v, dtype=float) for k, v in state["devices"].items()})
        self._bandwidth_hz = np.array(state["bandwidth_hz"], dtype=float)
        self._power_w = np.array(state["power_w"], dtype=float)
        for name, rng_state in state["rng"].items():
            self._rng[name].bit_generator.state = rng_state
        self._interval = int(state["interval"])
        self.channel.load_state_dict(state["channel"], mob.distances_2d_m())
        self._in_cell = mob.in_cell()
        self._set_radio()
        self._start_env(float(state["now_s"]))
