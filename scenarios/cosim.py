"""The co-simulation loop: where the SimPy world and the real training meet, once per round.

Each round:

1. the world's clock is at the end of the previous round; mobility and channels have moved on;
2. selection: devices in the cell, with battery left, that can finish before they leave the
   cell (``select_by_dwell``), optionally a random fraction of them;
3. the allocation policy sees the simulated channel state, the FLOPs and bits measured by the
   learner and the learner's current retention curves f_i(K), and returns each device's token
   budget, bandwidth and power;
4. the learner runs the real split training of each scheduled device with its budget; the world
   times every phase from the measured FLOPs and payload bits and the rate the channel gives
   while the bits flow, with the server shared among devices;
5. devices that missed the deadline, ran out of energy or left the cell are dropped from
   aggregation; the rest are averaged (FedAvg); the model is evaluated every ``eval_every``
   rounds.

Simulated time never comes from the wall clock: it is a function of the seed and the config.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netsim import ofdma
from netsim.allocation import AllocationProblem, select_by_dwell, solve
from netsim.world import Compute, DevicePlan, Transfer, World
from learning.federated import Learner
from scenarios.policies import PolicySpec

# Phases in the order a split step runs them.
SPLIT_PHASES = ("device_forward", "uplink", "server", "downlink", "device_backward")


@dataclass
class Trace:
    """Everything a run has recorded so far, as plain rows (what the checkpoint stores)."""

    events: list[dict] = field(default_factory=list)
    rounds: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    channel: list[dict] = field(default_factory=list)
    token_maps: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class LinearCost:
    """A per-step cost as ``base + per_token * K`` (fitted from two measured shapes)."""

    base: float
    per_token: float

    @classmethod
    def fit(cls, at_one: float, at_max: float, k_max: int) -> "LinearCost":
        if k_max <= 1:
            return cls(float(at_one), 0.0)
        # Costs never fall with more tokens; a measured dip (noise in a FLOP count) is flattened.
        slope = max(0.0, (at_max - at_one) / (k_max - 1))
        return cls(float(at_one - slope), float(slope))

    def __call__(self, k: np.ndarray | float) -> np.ndarray | float:
        return self.base + self.per_token * k


class CoSimulation:
    """One scenario run: a :class:`netsim.world.World`, a :class:`learning.federated.Learner`
    and a policy, stepped one round at a time.

    Args:
        config: the resolved scenario config (see :mod:`scenarios.base`).
        spec: the policy's learner variant and allocation.
        world: the SimPy world, already built from ``config.world``.
        learner: the learner, already built.
        select_rng: generator of the client-sampling draws.
        alloc_rng: generator of the allocation's draws (``random-tokens``).
    """

    def __init__(self, config: Any, spec: PolicySpec, world: World, learner: Learner,
                 select_rng: np.random.Generator, alloc_rng: np.random.Generator) -> None:
        self.config = config
        self.spec = spec
        self.world = world
        self.learner = learner
        self.select_rng = select_rng
        self.alloc_rng = alloc_rng
        self.trace = Trace()
        self.round = 0
        k_max = learner.num_patches
        self.k_max = k_max
        one, full = learner.step_cost(1), learner.step_cost(k_max)
        self.uplink = LinearCost.fit(one.uplink_bits, full.uplink_bits, k_max)
        if self.uplink.per_token <= 0 and full.uplink_bits > 0:
            # Learners that always send every token report the same payload for any budget:
            # split it evenly over the patch tokens and the [CLS] token.
            per = full.uplink_bits / (k_max + 1)
            self.uplink = LinearCost(per, per)
        self.downlink = LinearCost.fit(one.downlink_bits, full.downlink_bits, k_max)
        self.server = LinearCost.fit(one.server_flops, full.server_flops, k_max)
        self.device = LinearCost.fit(one.device_forward_flops + one.device_backward_flops,
                                     full.device_forward_flops + full.device_backward_flops, k_max)
        self.adapter_bits = float(full.adapter_bits)
        self._curves: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "round": self.round,
            "world": self.world.state_dict(),
            "learner": self.learner.state_dict(),
            "select_rng": self.select_rng.bit_generator.state,
            "alloc_rng": self.alloc_rng.bit_generator.state,
            "trace": self.trace,
        }

    def load_state_dict(self, state: dict) -> None:
        self.round = int(state["round"])
        self.world.load_state_dict(state["world"])
        self.learner.load_state_dict(state["learner"])
        self.select_rng.bit_generator.state = state["select_rng"]
        self.alloc_rng.bit_generator.state = state["alloc_rng"]
        self.trace = state["trace"]

    # ------------------------------------------------------------------ rounds
    def evaluate_start(self) -> dict:
        """Round 0: the starting model's accuracy, before any training."""
        accuracy, loss = self.learner.evaluate()
        row = _round_row(0, self.world.now_s, accuracy, loss)
        self.trace.rounds.append(row)
        return row

    def step(self) -> dict:
        """Run one round; returns its ``rounds.parquet`` row."""
        cfg = self.config
        self.round += 1
        r = self.round
        start_s = self.world.now_s
        state = self.world.channel_state()
        n = self.world.num_devices
        self._record_channel(r, state)

        # -- 2. selection
        reasons = np.full(n, "", dtype=object)
        in_cell = np.asarray(state.in_cell, dtype=bool)
        charged = np.asarray(state.battery_j) > 0
        candidates = in_cell & charged
        reasons[~in_cell] = "out-of-cell"
        reasons[in_cell & ~charged] = "battery"
        gain = self.planning_gain(state)
        estimate_s = self._estimated_round_s(state, gain)
        dwell_ok, dwell_reason = select_by_dwell(np.asarray(state.time_left_s, dtype=float), estimate_s)
        dwell_ok = np.asarray(dwell_ok, dtype=bool)
        newly = candidates & ~dwell_ok
        reasons[newly] = [str(x) for x in np.asarray(dwell_reason, dtype=object)[newly]]
        candidates &= dwell_ok
        idx = np.flatnonzero(candidates)
        if cfg.sample_fraction < 1.0 and idx.size:
            m = max(1, math.ceil(cfg.sample_fraction * idx.size))
            picked = np.sort(self.select_rng.choice(idx, size=m, replace=False))
            reasons[np.setdiff1d(idx, picked)] = "not-sampled"
            idx = picked

        # -- 3. allocation
        tokens, bandwidth, power, status, ste_pred = self._allocate(idx, state, gain)
        ok = status == "ok"
        reasons[idx[~ok]] = status[~ok]
        sched = idx[ok]
        sched_tokens = tokens[ok]

        # -- 4. real training, then simulated timing of what it did
        reports = self.learner.train_round(sched.tolist(), sched_tokens.tolist()) if sched.size else []
        plans = [
            self._plan(rep, float(bw), float(pw))
            for rep, bw, pw in zip(reports, bandwidth[ok], power[ok])
        ]
        result = self.world.run_round(r, plans, cfg.deadline_s, schedule=self.spec.schedule)
        self.trace.events.extend(result.rows)

        # -- 5. aggregation of the devices that made it
        kept = [o.device for o in result.outcomes if o.finished and not o.reason]
        self.learner.aggregate(kept)
        outcome_by_device = {o.device: o for o in result.outcomes}
        for d in sched:
            o = outcome_by_device[int(d)]
            if o.reason:
                reasons[d] = o.reason
        self._record_decisions(r, idx, tokens, bandwidth, power, status, outcome_by_device, reasons)

        evaluate = (r % cfg.eval_every == 0) or r == cfg.rounds
        accuracy, loss = self.learner.evaluate() if evaluate else (math.nan, math.nan)
        self._maybe_token_maps(r, sched, sched_tokens)

        finished_lat = [o.latency_s for o in result.outcomes]
        latency_s = float(max(finished_lat)) if finished_lat else 0.0
        kept_set = set(kept)
        retention = self._retention_sum(sched, sched_tokens, kept_set)
        rows = result.rows
        row = _round_row(r, self.world.now_s, accuracy, loss)
        row.update(
            train_loss=float(np.mean([rep.loss for rep in reports])) if reports else math.nan,
            uplink_bits=float(sum(e["bits"] for e in rows if e["phase"] in ("uplink", "adapter_uplink"))),
            downlink_bits=float(sum(e["bits"] for e in rows if e["phase"] in ("downlink", "adapter_downlink"))),
            energy_j=float(sum(e["energy_j"] for e in rows)),
            latency_s=latency_s,
            duration_s=float(self.world.now_s - start_s),
            selected=int(idx.size),
            dropped=int(idx.size - len(kept_set)),
            ste=float(retention / latency_s) if latency_s > 0 and self.spec.allocation else math.nan,
            ste_planned=float(ste_pred),
            tokens_mean=float(np.mean(sched_tokens)) if sched.size else math.nan,
        )
        self.trace.rounds.append(row)
        return row

    # ------------------------------------------------------------------ helpers
    def _steps(self) -> int:
        return int(self.learner.config.local_steps)

    def _estimated_round_s(self, state, gain: np.ndarray) -> np.ndarray:
        """A device's round time at full tokens, full power and an equal share of the band.

        Used only to decide whether it can finish before leaving the cell.
        """
        n = self.world.num_devices
        steps = self._steps()
        speed = np.asarray(state.cpu_hz) * np.asarray(state.flops_per_cycle)
        compute = steps * (self.device(self.k_max) / speed + self.server(self.k_max) / state.server_flops_per_s)
        if not self.spec.communicates:
            return compute
        share = state.total_bandwidth_hz / max(1, int(np.count_nonzero(state.in_cell)) or n)
        rate, _ = ofdma.uplink_rate_bps(np.full(n, share), np.asarray(state.max_power_w),
                                        gain, state.noise_psd_w_per_hz,
                                        self.world.config.ofdma.max_spectral_efficiency)
        bits = steps * self.uplink(self.k_max) if self.learner.config.split else self.adapter_bits
        return compute + bits / np.maximum(rate, 1e-9)

    def _allocate(self, idx: np.ndarray, state, planning_gain: np.ndarray):
        m = idx.size
        k_max = self.k_max
        status = np.full(m, "ok", dtype=object)
        if m == 0:
            empty = np.zeros(0)
            return np.zeros(0, dtype=int), empty, empty, status, math.nan
        steps = self._steps()
        cpu = np.asarray(state.cpu_hz)[idx]
        fpc = np.asarray(state.flops_per_cycle)[idx]
        kappa = np.asarray(state.kappa)[idx]
        gain = planning_gain[idx]
        p_max = np.asarray(state.max_power_w)[idx]
        budget = np.minimum(np.asarray(state.energy_budget_j)[idx], np.asarray(state.battery_j)[idx])
        plan = self.config.planning
        deadline = plan.deadline_margin * np.minimum(self.config.deadline_s, np.asarray(state.time_left_s)[idx])
        server_s = steps / state.server_flops_per_s
        cycles_per_flop = 1.0 / fpc
        # Downlink of the gradients, at the base station's rate over an equal share of the band.
        dl_rate = self._downlink_rate_estimate(state, idx)
        base_t = (steps * self.device.base / (cpu * fpc) + self.server.base * server_s
                  + steps * self.downlink.base / dl_rate)
        per_tok_t = (steps * self.device.per_token / (cpu * fpc) + self.server.per_token * server_s
                     + steps * self.downlink.per_token / dl_rate)
        base_e = kappa * steps * self.device.base * cycles_per_flop * cpu**2
        per_tok_e = kappa * steps * self.device.per_token * cycles_per_flop * cpu**2

        if self.spec.allocation is None:
            # fed-lora / local-lora: no activations, the only upload is the adapters, over an
            # equal share of the band. split-lora: devices take turns, each with the whole band
            # at full power; nothing to optimise, and a device late in the order simply misses
            # the deadline.
            tokens = np.full(m, k_max, dtype=int)
            if not self.spec.communicates:
                return tokens, np.zeros(m), np.zeros(m), status, math.nan
            share = state.total_bandwidth_hz / (1 if self.spec.schedule == "sequential" else m)
            return tokens, np.full(m, share), p_max.copy(), status, math.nan

        extra = self.uplink.base / self.uplink.per_token
        retention = np.asarray(self.learner.retention(idx.tolist()), dtype=float)
        self._curves = dict(zip(idx.tolist(), retention))
        problem = AllocationProblem(
            gain_lin=gain,
            noise_psd_w_per_hz=float(state.noise_psd_w_per_hz),
            total_bandwidth_hz=float(state.total_bandwidth_hz),
            max_power_w=p_max,
            energy_budget_j=budget,
            deadline_s=deadline,
            bits_per_token=np.full(m, steps * self.uplink.per_token),
            extra_tokens=float(extra),
            compute_time_s=base_t,
            compute_energy_j=base_e,
            compute_time_per_token_s=per_tok_t,
            compute_energy_per_token_j=per_tok_e,
            retention=retention,
            min_tokens=1,
        )
        options: dict[str, Any] = {}
        if self.spec.allocation == "equal":
            options["keep_ratio"] = 1.0 if self.spec.all_tokens else self.config.keep_ratio
        if self.spec.allocation == "random-tokens":
            options["rng"] = self.alloc_rng
        alloc = solve(problem, policy=self.spec.allocation, **options)
        status = np.asarray(alloc.status, dtype=object)
        tokens = np.asarray(alloc.tokens, dtype=int)
        bandwidth = np.asarray(alloc.bandwidth_hz, dtype=float)
        power = np.asarray(alloc.power_w, dtype=float)
        return tokens, bandwidth, power, status, float(alloc.ste)

    def planning_gain(self, state) -> np.ndarray:
        """The channel gain ``[N]`` the allocation plans with (see :class:`PlanningConfig`).

        An upload of a second or more sees hundreds of fading blocks, so by default the plan
        uses the large-scale gain (path loss and shadowing) less a fading margin rather than
        the fading of the instant the round starts; and where the world caps the spectral
        efficiency, the gain is clipped so that the SNR over an equal share of the band does not
        exceed the cap's.
        """
        plan = self.config.planning
        if plan.channel == "instantaneous":
            gain = np.asarray(state.gain_lin, dtype=float)
        else:
            gain = 10.0 ** (-(np.asarray(state.pathloss_db) + np.asarray(state.shadowing_db)) / 10.0)
        gain = gain * 10.0 ** (-plan.fading_margin_db / 10.0)
        cap = self.world.config.ofdma.max_spectral_efficiency
        if cap is not None:
            share_hz = state.total_bandwidth_hz / max(1, int(np.count_nonzero(state.in_cell)))
            snr_cap = 2.0**cap - 1.0
            gain = np.minimum(gain, snr_cap * state.noise_psd_w_per_hz * share_hz / np.asarray(state.max_power_w))
        return gain

    def _downlink_rate_estimate(self, state, idx: np.ndarray) -> np.ndarray:
        """Downlink rate over an equal share of the band (the base station's power follows it)."""
        radio = self.world.config.ofdma
        share = np.full(idx.size, state.total_bandwidth_hz / max(1, idx.size))
        rate, _ = ofdma.downlink_rate_bps(share, radio.bs_tx_power_w, state.total_bandwidth_hz,
                                          np.asarray(state.gain_lin)[idx],
                                          ofdma.noise_psd_w_per_hz(radio.ue_noise_figure_db),
                                          radio.max_spectral_efficiency)
        return np.maximum(rate, 1.0)

    def _plan(self, report, bandwidth_hz: float, power_w: float) -> DevicePlan:
        phases: list = []
        cost = report.cost
        for step in range(report.steps):
            if not self.learner.config.split:
                phases.append(Compute("device_forward", cost.device_forward_flops, where="device", step=step))
                if cost.device_backward_flops:
                    phases.append(Compute("device_backward", cost.device_backward_flops, where="device", step=step))
                continue
            phases.append(Compute("device_forward", cost.device_forward_flops, where="device", step=step))
            phases.append(Transfer("uplink", cost.uplink_bits, direction="uplink", step=step))
            phases.append(Compute("server", cost.server_flops, where="server", step=step))
            phases.append(Transfer("downlink", cost.downlink_bits, direction="downlink", step=step))
            if cost.device_backward_flops:
                phases.append(Compute("device_backward", cost.device_backward_flops, where="device", step=step))
        adapter_bits = cost.adapter_bits
        if self.spec.communicates and adapter_bits and self._uploads_adapters():
            phases.append(Transfer("adapter_uplink", adapter_bits, direction="uplink", step=-1))
            phases.append(Transfer("adapter_downlink", adapter_bits, direction="downlink", step=-1))
        return DevicePlan(device=int(report.device), phases=phases, bandwidth_hz=bandwidth_hz,
                          power_w=power_w, tokens_kept=int(report.tokens))

    def _uploads_adapters(self) -> bool:
        """Whether device-side adapters travel to the server for FedAvg at the end of a round."""
        if self.spec.learner_variant == "fed-lora":
            return True
        return self.learner.model_config.device_trainable and self.spec.learner_variant in ("st-sflora", "sflora")

    def _retention_sum(self, sched: np.ndarray, tokens: np.ndarray, kept: set) -> float:
        if not sched.size or self.spec.allocation is None:
            return 0.0
        # The curves the allocation planned with (this round's, before training).
        return float(sum(self._curves[int(d)][int(k)] for d, k in zip(sched, tokens) if int(d) in kept))

    def _record_channel(self, r: int, state) -> None:
        snr = state.max_power_w * state.gain_lin / (state.noise_psd_w_per_hz * state.total_bandwidth_hz)
        for d in range(self.world.num_devices):
            self.trace.channel.append({
                "round": r, "time_s": float(self.world.now_s), "device": d,
                "x_m": float(state.positions_m[d, 0]), "y_m": float(state.positions_m[d, 1]),
                "speed_mps": float(state.speeds_mps[d]), "in_cell": bool(state.in_cell[d]),
                "pathloss_db": float(state.pathloss_db[d]),
                "gain_db": float(10 * np.log10(max(float(state.gain_lin[d]), 1e-300))),
                "snr_db": float(10 * np.log10(max(float(snr[d]), 1e-300))),
            })

    def _record_decisions(self, r, idx, tokens, bandwidth, power, status, outcomes, reasons) -> None:
        for j, d in enumerate(idx):
            o = outcomes.get(int(d))
            self.trace.decisions.append({
                "round": r, "device": int(d), "status": str(status[j]),
                "tokens": int(tokens[j]), "bandwidth_hz": float(bandwidth[j]), "power_w": float(power[j]),
                "latency_s": float(o.latency_s) if o else math.nan,
                "energy_j": float(o.energy_j) if o else math.nan,
                "aggregated": bool(o is not None and o.finished and not o.reason),
                "reason": str(reasons[d]),
            })
        considered = set(idx.tolist())
        for d in np.flatnonzero(reasons != ""):
            if d in considered:
                continue
            self.trace.decisions.append({
                "round": r, "device": int(d), "status": "not-selected", "tokens": 0,
                "bandwidth_hz": 0.0, "power_w": 0.0, "latency_s": math.nan, "energy_j": math.nan,
                "aggregated": False, "reason": str(reasons[d]),
            })

    def _maybe_token_maps(self, r: int, sched: np.ndarray, tokens: np.ndarray) -> None:
        n = int(self.config.token_maps)
        if n <= 0 or not sched.size or self.spec.allocation is None:
            return
        if r not in (1, self.config.rounds):
            return
        ex = self.learner.token_examples(int(sched[0]), int(tokens[0]), n)
        self.trace.token_maps.append({
            "images": np.asarray(ex["images"]), "kept": np.asarray(ex["kept"]),
            "round": np.full(len(ex["images"]), r), "device": np.full(len(ex["images"]), int(sched[0])),
            "tokens": np.asarray(ex["tokens"]),
        })


def _round_row(r: int, time_s: float, accuracy: float, loss: float) -> dict:
    return {
        "round": r, "time_s": float(time_s), "accuracy": float(accuracy), "loss": float(loss),
        "train_loss": math.nan, "uplink_bits": 0.0, "downlink_bits": 0.0, "energy_j": 0.0,
        "latency_s": 0.0, "duration_s": 0.0, "selected": 0, "dropped": 0, "ste": math.nan,
        "ste_planned": math.nan, "tokens_mean": math.nan,
    }
