"""A world of several base stations: co-channel interference and handover between cells.

Built by :class:`netsim.world.World` when ``config.cells.enabled`` (the single-cell world is
untouched otherwise). Physics comes from :mod:`netsim.layout`, :mod:`netsim.sitegain`,
:mod:`netsim.interference` and :mod:`netsim.handover`; the processes from
:mod:`netsim.cellrounds`. Time is in seconds.

* Sites: ``config.cells.layout``; one edge server (a ``simpy.Resource``) per site.
* Devices: static devices are dropped uniformly in the hexagonal cells (device i in site
  ``i mod S``) or, for a line of roadside units, the World's mobility model is used as it is
  (the highway's wrapped road is made as long as the line's period). Random waypoint devices
  move in the disc of ``cell_radius_m`` around the origin.
* Channel, at every update: path loss and inter-site correlated shadowing to every site
  (``[N, S]``), flat fading on each device's serving link (its own Doppler; the process goes on
  across handovers), A3 handover on the large-scale gains.
* Spectrum: FDD, the uplink and downlink in separate bands of the same width; each cell uses
  its reuse sub-band (``usable_bandwidth / reuse``: the band plans are checked against) and
  maps its devices side by side from the sub-band's lower edge in device order. A device that
  changed cell during a round keeps its bandwidth in the new cell until the next round (the
  next decision takes it into account).
* Rates: uplink SINR from the uplink transmissions of the other cells on overlapping band,
  downlink SINR from the other cells' base stations sending on overlapping band (PSD
  ``P_BS / band``); recomputed at every channel update and whenever a transfer starts or stops.
* Planning: the snapshot (:meth:`CellWorld.channel_state`) describes each device's serving
  link (gain, path loss, shadowing) and, with ``planning_interference="last-round"``, the mean
  uplink interference PSD ``I_s`` its serving site measured over the airtime of the last round
  in which it received (zeros with ``"none"``). A planner that multiplies the gain by
  ``N0 / (N0 + I_s)`` plans with the SINR it can expect (:func:`netsim.interference.planning_factor`).
* Handover in a round: ``migrate`` moves the session (``plan.server_state_bits`` plus the
  activations of an uplink in flight) over the backhaul; server phases and downlinks wait for
  it. ``drop`` stops the device with reason ``handover``. Either way a ``handover`` row goes into
  the trace, as it does (0 bits, 0 s) for a device idle in the round; every handover, in a
  round or not, is in :attr:`CellWorld.handover_log`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import simpy

from netsim import fading, ofdma
from netsim.cellrounds import CellProcesses
from netsim.config import WorldConfig
from netsim.energy import DeviceArrays, draw_devices
from netsim.handover import a3_step, migration_s
from netsim.interference import interference_w, pack_bands_hz, reuse_colours, sinr_lin, subband_start_hz
from netsim.layout import site_distances_m, uniform_in_hexagons_m
from netsim.mobility import HighwayConfig, StaticConfig, make_mobility
from netsim.reasons import Reason
from netsim.sitegain import SiteShadowing, large_scale_gain_lin, pair_pathloss_db, strongest_site
from netsim.snapshot import ChannelState
from netsim.world import _RNG_STREAMS, World


class _HexStatic:
    """Static devices uniform in the hexagonal cells of the layout (device i in site i mod S)."""

    def __init__(self, sites_m: np.ndarray, isd_m: float, num_devices: int, min_distance_m: float,
                 rng: np.random.Generator) -> None:
        num_sites = len(sites_m)
        per_site = -(-num_devices // num_sites)
        pos, _ = uniform_in_hexagons_m(sites_m, isd_m, per_site, rng, min_distance_m)
        i = np.arange(num_devices)
        self.positions_m = pos[(i % num_sites) * per_site + i // num_sites]
        self.speeds_mps = np.zeros(num_devices)
        self._moved_m = np.zeros(num_devices)

    def step(self, dt_s: float, rng: np.random.Generator) -> np.ndarray:
        return self._moved_m

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"positions_m": self.positions_m.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.positions_m = np.array(state["positions_m"], dtype=float)


class CellWorld(CellProcesses, World):
    """Several cells, their interference and handovers (module docstring).

    Args:
        config: A :class:`WorldConfig` with ``cells.enabled``.
        seed: Root seed (the same streams as :class:`World`).
    """

    def __init__(self, config: WorldConfig, seed: int) -> None:
        cells = config.cells
        ch = config.channel
        if ch.per_device_los:
            raise ValueError(f"channel.pathloss_model must be a fixed-LOS-state model in a multi-cell world, got {ch.pathloss_model!r}")
        if ch.per_rb_fading:
            raise ValueError("channel.per_rb_fading must be false in a multi-cell world")
        self.config = config
        self.seed = seed
        n = config.num_devices
        streams = np.random.SeedSequence(seed).spawn(len(_RNG_STREAMS))
        self._rng = {name: np.random.default_rng(ss) for name, ss in zip(_RNG_STREAMS, streams)}
        self.devices = draw_devices(config.device, n, self._rng["devices"])
        layout = cells.layout
        self.sites_m = layout.site_positions_m()
        self._shifts_m = layout.wrap_shifts_m()
        self.num_sites = len(self.sites_m)
        self.mobility = self._make_mobility()
        self._shadowing = SiteShadowing(ch.effective_shadowing_std_db, cells.inter_site_correlation,
                                        ch.effective_decorrelation_m, n, self.num_sites, self._rng["shadowing"])
        self._fading = None
        self._fading_key = None
        if ch.fading != "none":
            k_db = ch.rician_k_db if ch.fading == "rician" else None
            self._fading = fading.BlockFading(n, 1, self._rng["fading"], k_db)
        radio = config.ofdma
        colours = reuse_colours(self.sites_m, layout.isd_m, layout.kind)
        self._cell_start_hz, self._total_bandwidth_hz = subband_start_hz(colours, cells.reuse, radio.usable_bandwidth_hz)
        self._noise_ul = ofdma.noise_psd_w_per_hz(radio.bs_noise_figure_db)
        self._noise_dl = ofdma.noise_psd_w_per_hz(radio.ue_noise_figure_db)
        self._bs_power_w = radio.bs_tx_power_w
        self._max_se = radio.max_spectral_efficiency
        self._bandwidth_hz = np.full(n, self._total_bandwidth_hz / n)
        self._power_w = self.devices.max_power_w.copy()
        self._interval = 0
        self._in_cell = np.ones(n, dtype=bool)
        self._in_round = np.zeros(n, dtype=bool)
        self._active = {True: np.zeros(n, dtype=bool), False: np.zeros(n, dtype=bool)}
        self._ready_s = np.zeros(n)
        self._inflight_bits = np.zeros(n)
        self._pipelines: dict = {}
        self._handover_rows: list[dict] = []
        self._round_index: int | None = None  # the round being run, else None
        self.handover_log: list[dict] = []
        self._ttt_steps = cells.handover.time_to_trigger_steps(config.coherence_s)
        # Mean uplink interference PSD per site (planning) and its accumulators over a round.
        self._site_interference_psd = np.zeros(self.num_sites)
        self._acc_interference = np.zeros(self.num_sites)
        self._acc_airtime = np.zeros(self.num_sites)
        self._large_scale()
        self._serving = strongest_site(self._gain_ls)
        self._timer = np.zeros((n, self.num_sites), dtype=np.int64)
        self._set_radio()
        self._start_env(0.0)

    def _make_mobility(self):
        cfg = self.config
        layout = cfg.cells.layout
        if isinstance(cfg.mobility, StaticConfig) and layout.kind == "hex":
            return _HexStatic(self.sites_m, layout.isd_m, cfg.num_devices, cfg.mobility.inner_radius_m,
                              self._rng["mobility"])
        mob = cfg.mobility
        if isinstance(mob, HighwayConfig) and layout.kind == "line" and layout.wrap_around:
            # The wrapped road has the period of the line of roadside units.
            mob = dataclasses.replace(mob, road_length_m=layout.num_sites * layout.isd_m)
        return make_mobility(mob, cfg.num_devices, cfg.cell_radius_m, self._rng["mobility"])

    # ------------------------------------------------------------------ channel
    def _start_env(self, now_s: float) -> None:
        self.env = simpy.Environment(initial_time=now_s)
        self.servers = [simpy.Resource(self.env, capacity=self.config.server.parallel_slots) for _ in range(self.num_sites)]
        self.server = self.servers[0]
        self._updated = self.env.event()
        # Transfers waiting for their rate to change: device -> (event, uplink).
        self._waiting: dict[int, tuple[simpy.Event, bool]] = {}
        self.env.process(self._channel_process())

    def _large_scale(self) -> None:
        ch = self.config.channel
        distances = site_distances_m(self.mobility.positions_m, self.sites_m, self._shifts_m)
        # [N, S]
        self.pathloss_db = pair_pathloss_db(ch.pathloss_model, distances, ch.carrier_frequency_hz, ch.bs_height_m, ch.ut_height_m)
        self._gain_ls = large_scale_gain_lin(self.pathloss_db, self._shadowing.shadowing_db)

    def _update_channel(self) -> None:
        self._interval += 1
        dt_s = self.config.coherence_s
        moved_m = self.mobility.step(dt_s, self._rng["mobility"])
        self._shadowing.update(moved_m, self._rng["shadowing"])
        if self._fading is not None:
            speeds = np.maximum(self.mobility.speeds_mps, self.config.channel.min_doppler_speed_mps)
            key = self._fading_key
            if key is None or not np.array_equal(speeds, key[0]):
                rho = fading.jakes_correlation(fading.doppler_hz(speeds, self.config.channel.carrier_frequency_hz), dt_s)[:, None]
                self._fading_key = (speeds.copy(), rho, np.sqrt(0.5 * np.maximum(1.0 - rho * rho, 0.0)))
            self._fading.step_with(self._fading_key[1], self._fading_key[2], self._rng["fading"])
        if moved_m.any():
            self._large_scale()
        else:
            # Nobody moved: same distances and path loss, only the shadowing may have changed.
            self._gain_ls = large_scale_gain_lin(self.pathloss_db, self._shadowing.shadowing_db)
        self._handover_step()
        self._compute_rates()

    def _handover_step(self) -> None:
        h = self.config.cells.handover
        rsrp_db = -(self.pathloss_db + self._shadowing.shadowing_db)
        serving, self._timer, handed = a3_step(rsrp_db, self._serving, self._timer, h.offset_db, h.hysteresis_db,
                                               self._ttt_steps)
        for i in np.flatnonzero(handed):
            self._on_handover(int(i), int(self._serving[i]), int(serving[i]))
        # In place: the rounds' rows read this array.
        self._serving[:] = serving
        if handed.any():
            self._refresh_bands()

    def _on_handover(self, i: int, old: int, new: int) -> None:
        now = float(self.env.now)
        self.handover_log.append({"time_s": now, "device": i, "from_cell": old, "to_cell": new})
        entry = self._pipelines.get(i)
        if entry is None or not entry[0].is_alive:
            if self._round_index is not None:
                # Idle in this round (not planned, or done): nothing to move, traced all the same.
                self._handover_rows.append(self._handover_row(self._round_index, i, now, now, 0.0, 0.0, 0.0, 0,
                                                              Reason.COMPLETED, new, old))
            return
        process, r = entry
        h = self.config.cells.handover
        if h.policy == "drop":
            process.interrupt(Reason.HANDOVER)
            bits, end_s, rate, reason = 0.0, now, 0.0, Reason.HANDOVER
        else:
            bits = float(r.plan.server_state_bits + self._inflight_bits[i])
            start_s = max(now, float(self._ready_s[i]))
            end_s = start_s + float(migration_s(bits, h.backhaul_bps, h.backhaul_latency_s))
            self._ready_s[i] = end_s
            rate, reason = h.backhaul_bps, Reason.COMPLETED
        self._handover_rows.append(self._handover_row(r.round_index, i, now, end_s, bits, float(rate),
                                                      float(r.plan.bandwidth_hz), r.plan.tokens_kept, reason, new, old))

    @staticmethod
    def _handover_row(round_index: int, device: int, start_s: float, end_s: float, bits: float, rate_bps: float,
                      bandwidth_hz: float, tokens: int, reason: Reason, new: int, old: int) -> dict:
        """An ``events`` row of phase ``handover``: the backhaul transfer of the session (bits,
        seconds, its rate), or the drop (reason ``handover``); ``cell`` the new cell."""
        return {
            "round": round_index, "device": device, "step": -1, "phase": "handover", "start_s": start_s,
            "end_s": end_s, "bits": bits, "rate_bps": rate_bps, "power_w": 0.0, "bandwidth_hz": bandwidth_hz,
            "energy_j": 0.0, "flops": 0.0, "tokens_kept": tokens, "snr_db": float("nan"),
            "deadline_met": reason == Reason.COMPLETED, "reason": str(reason), "cell": new, "from_cell": old,
            "sinr_db": float("nan"), "interference_w": float("nan"),
        }

    # ------------------------------------------------------------------ rates
    def _set_radio(self) -> None:
        self._refresh_bands()
        self._compute_rates()

    def _set_active(self, i: int, uplink: bool, on: bool) -> None:
        """A transfer starts or stops transmitting: recompute every SINR and wake the transfers
        whose rate it changed (the others' planned ends stay exact)."""
        self._active[uplink][i] = on
        old = {True: self._rate_ul, False: self._rate_dl}
        self._compute_rates()
        if not self._waiting:
            return
        new = {True: self._rate_ul, False: self._rate_dl}
        for j, (event, up) in list(self._waiting.items()):
            if new[up][j] != old[up][j]:
                del self._waiting[j]
                event.succeed()

    def _refresh_bands(self) -> None:
        """Each device's piece of its cell's band (changes with the plans and the serving cells)."""
        b = np.where(self._in_round, self._bandwidth_hz, 0.0)
        self._lo_hz, self._hi_hz = pack_bands_hz(self._serving, b, self._cell_start_hz)

    def _compute_rates(self) -> None:
        n = self.config.num_devices
        rows = np.arange(n)
        s = self._serving
        # [N] serving-link gain with fading
        link = self._gain_ls[rows, s]
        if self._fading is not None:
            link = link * self._fading.power_gain()[:, 0]
        self._link_gain = link
        b = self._bandwidth_hz
        lo, hi = self._lo_hz, self._hi_hz
        zeros = np.zeros(n)
        # Uplink: transmitters are devices; the gain to victim v is G[t, s_v].
        tx = np.flatnonzero(self._active[True])
        self._interference_ul = zeros if tx.size == 0 else interference_w(
            lo, hi, s, lo[tx], hi[tx], s[tx], self._power_w[tx], self._gain_ls[tx][:, s].T)
        # Downlink: transmitters are the sites serving active devices; the gain is G[v, s_t].
        tx = np.flatnonzero(self._active[False])
        dl_power = self._bs_power_w * b / self._total_bandwidth_hz
        self._interference_dl = zeros if tx.size == 0 else interference_w(
            lo, hi, s, lo[tx], hi[tx], s[tx], dl_power[tx], self._gain_ls[:, s[tx]])
        signal_ul = self._power_w * link
        signal_dl = dl_power * link
        self._snr_free_ul = sinr_lin(signal_ul, zeros, self._noise_ul, b)
        self._snr_free_dl = sinr_lin(signal_dl, zeros, self._noise_dl, b)
        self._snr_ul = sinr_lin(signal_ul, self._interference_ul, self._noise_ul, b)
        self._snr_dl = sinr_lin(signal_dl, self._interference_dl, self._noise_dl, b)
        self._rate_ul = ofdma.capped_shannon_rate_bps(b, self._snr_ul, self._max_se)
        self._rate_dl = ofdma.capped_shannon_rate_bps(b, self._snr_dl, self._max_se)

    def _account_interference(self, i: int, uplink: bool, interference: float, airtime_s: float) -> None:
        if uplink and airtime_s > 0.0 and self._bandwidth_hz[i] > 0.0:
            site = int(self._serving[i])
            self._acc_interference[site] += interference / self._bandwidth_hz[i] * airtime_s
            self._acc_airtime[site] += airtime_s

    # ------------------------------------------------------------------ public API
    @property
    def serving_cell(self) -> np.ndarray:
        """``[N]`` serving site of each device (a copy)."""
        return self._serving.copy()

    def channel_state(self) -> ChannelState:
        """Snapshot for planning: each device's serving link and its site's interference (module docstring)."""
        d = self.devices
        rows = np.arange(self.config.num_devices)
        s = self._serving
        psd = self._site_interference_psd[s]
        if self.config.cells.planning_interference == "none":
            psd = np.zeros_like(psd)
        gain = self._link_gain
        return ChannelState(
            gain_lin=gain.copy(), pathloss_db=self.pathloss_db[rows, s].copy(),
            shadowing_db=self._shadowing.shadowing_db[rows, s].copy(),
            los=np.full(len(s), False), positions_m=np.array(self.mobility.positions_m, copy=True),
            speeds_mps=np.array(self.mobility.speeds_mps, dtype=float), in_cell=self._in_cell.copy(),
            time_left_s=np.full(len(s), np.inf), noise_psd_w_per_hz=self._noise_ul,
            total_bandwidth_hz=self._total_bandwidth_hz, max_power_w=d.max_power_w.copy(),
            energy_budget_j=d.energy_budget_j.copy(), battery_j=d.battery_j.copy(), cpu_hz=d.cpu_hz.copy(),
            flops_per_cycle=d.flops_per_cycle.copy(), kappa=d.kappa.copy(),
            server_flops_per_s=float(self.config.server.flops_per_s), serving_cell=s.copy(),
            interference_psd_w_per_hz=psd.copy(),
        )

    def run_round(self, round_index, plans, deadline_s, schedule="parallel"):
        """:meth:`World.run_round`, with per-cell band checks, handover rows and the cell columns."""
        self._in_round[:] = False
        self._in_round[[p.device for p in plans]] = True
        self._handover_rows = []
        self._round_index = round_index
        self._acc_interference[:] = 0.0
        self._acc_airtime[:] = 0.0
        try:
            result = super().run_round(round_index, plans, deadline_s, schedule)
        finally:
            self._in_round[:] = False
            self._waiting.clear()
            self._round_index = None
        heard = self._acc_airtime > 0
        self._site_interference_psd[heard] = self._acc_interference[heard] / self._acc_airtime[heard]
        result.rows.extend(self._handover_rows)
        self._handover_rows = []
        self._set_radio()
        return result

    def _check_plans(self, plans, deadline_s, schedule) -> None:
        super()._check_plans(plans, deadline_s, "sequential")
        if schedule != "parallel" or not plans:
            return
        cell = self._serving[[p.device for p in plans]]
        # [S] bandwidth asked of each cell
        total = np.bincount(cell, weights=[p.bandwidth_hz for p in plans], minlength=self.num_sites)
        over = np.flatnonzero(total > self._total_bandwidth_hz * (1.0 + 1e-9))
        if over.size:
            c = int(over[0])
            raise ValueError(f"sum of bandwidth_hz in cell {c} must be <= {self._total_bandwidth_hz!r}, got {float(total[c])!r}")

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict:
        return {
            "seed": self.seed, "now_s": float(self.env.now), "interval": int(self._interval),
            "mobility": self.mobility.state_dict(), "shadowing": self._shadowing.state_dict(),
            "fading": {} if self._fading is None else self._fading.state_dict(),
            "devices": {k: v.copy() for k, v in dataclasses.asdict(self.devices).items()},
            "bandwidth_hz": self._bandwidth_hz.copy(), "power_w": self._power_w.copy(),
            "serving": self._serving.copy(), "timer": self._timer.copy(),
            "site_interference_psd": self._site_interference_psd.copy(),
            "handover_log": list(self.handover_log),
            "rng": {name: rng.bit_generator.state for name, rng in self._rng.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.mobility.load_state_dict(state["mobility"])
        self._shadowing.load_state_dict(state["shadowing"])
        if self._fading is not None:
            self._fading.load_state_dict(state["fading"])
        self.devices = DeviceArrays(**{k: np.array(v, dtype=float) for k, v in state["devices"].items()})
        self._bandwidth_hz = np.array(state["bandwidth_hz"], dtype=float)
        self._power_w = np.array(state["power_w"], dtype=float)
        self._serving = np.array(state["serving"], dtype=np.intp)
        self._timer = np.array(state["timer"], dtype=np.int64)
        self._site_interference_psd = np.array(state["site_interference_psd"], dtype=float)
        self.handover_log = list(state["handover_log"])
        for name, rng_state in state["rng"].items():
            self._rng[name].bit_generator.state = rng_state
        self._interval = int(state["interval"])
        self._fading_key = None
        self._large_scale()
        self._set_radio()
        self._start_env(float(state["now_s"]))
