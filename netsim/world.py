"""The SimPy world: one Environment, the cell's channel process, and each device's round.

Physics comes from the pure modules (:mod:`netsim.channel`, :mod:`netsim.ofdma`,
:mod:`netsim.energy`, :mod:`netsim.mobility`, :mod:`netsim.transfer`); the data types live in
:mod:`netsim.config`, :mod:`netsim.plans`, :mod:`netsim.snapshot` and :mod:`netsim.trace`.
This module only schedules. Time is in seconds.

* Channel process: one event per coherence interval for the whole cell. Update ``k`` happens
  at ``k * coherence_s`` computed from the integer ``k`` (never by accumulating floats), moves
  every device, advances shadowing and fading, and recomputes every device's uplink and
  downlink rate at its current bandwidth and power, all vectorised.
* A device's round is a process running its plan's phases in order. A transfer drains its
  bits at the rate the channel gives now (:mod:`netsim.transfer`); if the channel updates
  before it is done, it waits for the update and the remaining bits continue at the new
  rate, so finish time and energy (power x airtime) are exact for the piecewise-constant
  rate. Device compute draws ``kappa f^3`` watts; server compute queues on a
  ``simpy.Resource``.
* Each device's pipeline races ``env.timeout(deadline_s)`` from the round start. The phase in
  progress when something stops the device is recorded, truncated, with its
  :class:`~netsim.reasons.Reason`: ``DEADLINE``; ``LEFT_CELL`` (the device is outside the
  cell at the start of, or at a channel update during, a transfer); ``ENERGY`` / ``BATTERY``
  (the per-round budget / the battery would be exceeded: the phase stops when it is spent).
  Later phases do not run.

Server phases start when the request is queued (queueing is part of their duration). Device
energy counts computing and transmitting; receiving and idling are not modelled.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import simpy

from netsim import ofdma
from netsim.channel import Channel
from netsim.config import WorldConfig
from netsim.energy import DeviceArrays, draw_devices
from netsim.mobility import make_mobility
from netsim.plans import Compute, DevicePlan, Transfer
from netsim.reasons import Reason
from netsim.rounds import DeviceProcesses, Process, delay_until
from netsim.snapshot import ChannelState
from netsim.trace import DeviceRound, Outcome, RoundResult

# The types a caller builds a round from, importable from here as well.
__all__ = [
    "ChannelState", "Compute", "DevicePlan", "Outcome", "RoundResult", "Transfer", "World", "WorldConfig",
]

SCHEDULES = ("parallel", "sequential")
# Appending a stream leaves the earlier ones unchanged (SeedSequence children are numbered):
# "los" is used only by the per-device LOS models.
_RNG_STREAMS = ("mobility", "shadowing", "fading", "devices", "los")


class World(DeviceProcesses):
    """The simulated cell: devices, channel, edge server, and their SimPy processes.

    Args:
        config: The world's configuration.
        seed: Root seed; ``SeedSequence(seed).spawn(5)`` gives independent streams for
            mobility, shadowing, fading, device heterogeneity and the LOS states.
    """

    #: The book-keeping of one device's round (a multi-cell world adds the cell to its rows).
    _device_round_type = DeviceRound

    def __new__(cls, config: WorldConfig | None = None, *args, **kwargs):
        # A multi-cell configuration builds the multi-cell world (netsim.cellworld); the
        # single-cell one is this class, unchanged. (No config: unpickling, copy.)
        if cls is World and config is not None and config.cells.enabled:
            from netsim.cellworld import CellWorld

            cls = CellWorld
        return super().__new__(cls)

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
            self._rng["los"],
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

    def _channel_process(self) -> Process:
        env = self.env
        coherence_s = self.config.coherence_s
        while True:
            target = (self._interval + 1) * coherence_s
            delay = target - env.now
            if env.now + delay != target:
                delay = delay_until(env.now, target)
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
            self._rng["shadowing"], self._rng["fading"], self._rng["los"],
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
            los=self.channel.los.copy(),
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
            self._device_round_type(p, round_index, start_s, float(d.energy_budget_j[p.device]), float(d.battery_j[p.device]))
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
            rows.extend(row.as_dict() for row in r.rows)
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
