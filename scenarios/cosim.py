"""The co-simulation loop: where the SimPy world and the real training meet, once per round.

Each round:

1. the world's clock is at the end of the previous round; mobility and channels have moved on;
2. selection (:func:`scenarios.planning.select`): devices in the cell, with battery left, that
   can finish before they leave the cell, optionally a random fraction of them;
3. the policy sees the round's view (:class:`scenarios.policies.RoundView`: the planned
   channel, the devices' limits, the compute costs from the learner's measured step costs,
   the retention curves f_i(K)) and decides each device's token budget, bandwidth and power;
4. the learner runs the real training of each scheduled device with its budget; the world
   times every phase from the measured FLOPs and payload bits and the rate the channel gives
   while the bits flow, with the server shared among devices;
5. devices that missed the deadline, ran out of energy or left the cell are dropped from
   aggregation; the rest are aggregated; the model is evaluated every ``eval_every`` rounds.

Simulated time never comes from the wall clock: it is a function of the seed and the config.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from learning.federated import DeviceReport, Learner
from learning.round_retention import round_retention
from netsim.reasons import Reason
from netsim.units import db_to_lin
from netsim.world import Compute, DevicePlan, Transfer, World
from scenarios.cells import decide_by_cell, with_interference, with_session_bits
from scenarios.costs import CostModel
from scenarios.device_inputs import with_device_inputs
from scenarios.planning import (PlanSettings, estimated_round_s, expected_gain, plan_record, planning_gain,
                                round_budget_j, round_view, select, whole_rbs)
from scenarios.policies import Decision, InvalidDecision, Policy, RoundView
from scenarios.trace import DeviceRound, Trace, channel_rows, decision_rows, event_row, round_row

if TYPE_CHECKING:  # pragma: no cover
    from scenarios.config import ScenarioConfig


class CoSimulation:
    """One scenario run: a :class:`netsim.world.World`, a :class:`learning.federated.Learner`
    and a :class:`scenarios.policies.Policy`, stepped one round at a time.

    Args:
        config: the resolved scenario config.
        policy: the policy (an instance of a registered class or a user's).
        world: the SimPy world, already built from ``config.world``.
        learner: the learner, already built with the policy's strategy.
        select_rng: generator of the client-sampling draws.
        alloc_rng: generator of the policy's draws (``RoundView.rng``).
    """

    def __init__(self, config: "ScenarioConfig", policy: Policy, world: World, learner: Learner,
                 select_rng: np.random.Generator, alloc_rng: np.random.Generator) -> None:
        self.config = config
        self.policy = policy
        self.world = world
        self.learner = learner
        self.select_rng = select_rng
        self.alloc_rng = alloc_rng
        self.trace = Trace()
        self.round = 0
        k = learner.num_patches
        steps = int(learner.config.local_steps)
        p = config.planning
        if p.costs == "exact":
            self.costs = CostModel.from_learner(learner.step_cost, k, steps)
        else:
            self.costs = CostModel.from_step_costs(learner.step_cost(1), learner.step_cost(k), k, steps)
        self.plan = PlanSettings(p.channel, p.fading_margin_db, p.deadline_margin, config.deadline_s,
                                 config.sample_fraction, config.keep_ratio, p.energy_margin, p.passes)
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
        row = round_row(0, self.world.now_s, accuracy, loss)
        self.trace.rounds.append(row)
        return row

    def step(self) -> dict:
        """Run one round; returns its ``rounds.parquet`` row."""
        cfg = self.config
        self.round += 1
        r = self.round
        start_s = self.world.now_s
        state = self.world.channel_state()
        radio = self.world.config.ofdma
        strategy = self.learner.strategy
        self.trace.channel.extend(channel_rows(r, self.world.now_s, state))
        width = cfg.learner.uplink_bits_per_value or 32  # 32: float32
        devices = [DeviceRound(d, cut_layer=cfg.model.cut, bits_per_value=width)
                   for d in range(self.world.num_devices)]

        # -- 2. selection
        gain = planning_gain(state, self.plan, radio, self.world.config.channel)
        gain = with_interference(state, gain)  # multi-cell: the SINR it can expect; else unchanged
        estimate_s = estimated_round_s(state, gain, self.costs, radio, strategy.communicates, strategy.split)
        idx, left_out = select(state, estimate_s, self.plan.sample_fraction, self.select_rng)
        for d, why in left_out.items():
            devices[d].reason = why

        # -- 3. the policy decides
        if state.serving_cell is None:
            decision, view = self.decide(idx, state, gain)
            if view is not None and cfg.planning.whole_rbs and self.policy.schedule == "parallel":
                decision = whole_rbs(decision, view, self.costs, radio)
        else:  # several cells: one decision per cell (scenarios.cells)
            decision, view = decide_by_cell(self, idx, state, gain)
        budget = round_budget_j(state, idx) if idx.size else np.zeros(0)
        for j, d in enumerate(idx):
            rec = devices[d]
            rec.planned, rec.status = True, str(decision.status[j])
            rec.tokens, rec.bandwidth_hz, rec.power_w = (int(decision.tokens[j]), float(decision.bandwidth_hz[j]),
                                                         float(decision.power_w[j]))
            if decision.cut_layer is not None:
                rec.cut_layer = int(decision.cut_layer[j])
            if decision.bits_per_value is not None:
                rec.bits_per_value = int(decision.bits_per_value[j])
            compute_j = float(self.costs.compute_energy_at_j(max(1, rec.tokens), state.cpu_hz[d],
                                                              state.flops_per_cycle[d], state.kappa[d]))
            rec.plan = plan_record(view, j, rec.tokens, rec.bandwidth_hz, rec.power_w, float(budget[j]), compute_j,
                                   self.costs, radio.max_spectral_efficiency, strategy.split)
            if rec.status != Reason.ALLOCATED:
                rec.reason = rec.status
        ok = np.asarray([s == Reason.ALLOCATED for s in decision.status], dtype=bool)
        sched, sched_tokens = idx[ok], np.asarray(decision.tokens, dtype=int)[ok]

        # -- 4. real training, then simulated timing of what it did
        cuts = None if decision.cut_layer is None else np.asarray(decision.cut_layer, dtype=int)[ok].tolist()
        bits = (None if decision.bits_per_value is None
                else np.asarray(decision.bits_per_value, dtype=int)[ok].tolist())
        per_device = {} if cuts is None and bits is None else {"cuts": cuts, "bits": bits}
        reports = (self.learner.train_round(sched.tolist(), sched_tokens.tolist(), **per_device)
                   if sched.size else [])
        plans = [self.device_plan(rep, devices[rep.device].bandwidth_hz, devices[rep.device].power_w)
                 for rep in reports]
        if state.serving_cell is not None:
            plans = with_session_bits(self, plans)
        result = self.world.run_round(r, plans, cfg.deadline_s, schedule=self.policy.schedule)
        self.trace.events.extend(event_row(e) for e in result.rows)
        for e in result.rows:
            devices[int(e["device"])].add_event(e)

        # -- 5. aggregation of the devices that made it
        for o in result.outcomes:
            devices[o.device].outcome = o
            if o.reason:
                devices[o.device].reason = o.reason
        kept = [o.device for o in result.outcomes if o.finished and not o.reason]
        self.learner.aggregate(kept)
        self.trace.decisions.extend(decision_rows(r, [devices[d] for d in idx] + [
            rec for rec in devices if not rec.planned]))

        evaluate = (r % cfg.eval_every == 0) or r == cfg.rounds
        accuracy, loss = self.learner.evaluate() if evaluate else (math.nan, math.nan)
        self._maybe_token_maps(r, sched, sched_tokens)

        latencies = [o.latency_s for o in result.outcomes]
        latency_s = float(max(latencies)) if latencies else 0.0
        kept_set = set(kept)
        retention = self._retention_sum(sched, sched_tokens, kept_set)
        rows = result.rows
        row = round_row(r, self.world.now_s, accuracy, loss)
        row.update(
            train_loss=float(np.mean([rep.loss for rep in reports])) if reports else math.nan,
            uplink_bits=float(sum(e["bits"] for e in rows if e["phase"] in ("uplink", "adapter_uplink"))),
            downlink_bits=float(sum(e["bits"] for e in rows if e["phase"] in ("downlink", "adapter_downlink"))),
            energy_j=float(sum(e["energy_j"] for e in rows)),
            latency_s=latency_s,
            duration_s=float(self.world.now_s - start_s),
            selected=int(idx.size),
            dropped=int(idx.size - len(kept_set)),
            ste=float(retention / latency_s) if latency_s > 0 and self.policy.plans_tokens else math.nan,
            ste_planned=float(decision.planned_ste),
            tokens_mean=float(np.mean(sched_tokens)) if sched.size else math.nan,
        )
        self.trace.rounds.append(row)
        return row

    def decide(self, idx: np.ndarray, state, gain: np.ndarray) -> tuple[Decision, RoundView | None]:
        """The policy's decision for the selected devices ``idx`` and the view of its last pass
        (nothing to decide, and no view, if none).

        With the ``expected`` planned channel and ``passes > 1``, each further pass recomputes
        the allocated devices' gain at the bandwidth and power the previous pass gave them and
        asks the policy again.
        """
        if idx.size == 0:
            empty = np.zeros(0)
            return Decision(np.zeros(0, dtype=int), empty, empty, np.zeros(0, dtype=object)), None
        self._curves = {}
        curves: list[np.ndarray] = []

        def retention_of() -> np.ndarray:
            if not curves:  # once per round, whatever the number of passes
                if self.config.planning.retention == "round":
                    curves.append(np.asarray(round_retention(self.learner, idx.tolist()), dtype=float))
                else:
                    curves.append(np.asarray(self.learner.retention(idx.tolist()), dtype=float))
                self._curves = dict(zip(idx.tolist(), curves[0]))
            return curves[0]

        radio = self.world.config.ofdma
        gain = np.asarray(gain, dtype=float).copy()
        passes = self.plan.passes if self.plan.channel == "expected" else 1
        for pass_ in range(passes):
            if pass_:
                ok = np.asarray([s == Reason.ALLOCATED for s in decision.status], dtype=bool)
                if not ok.any():
                    break
                b = np.asarray(state.total_bandwidth_hz / idx.size * np.ones(idx.size))
                b[ok] = np.asarray(decision.bandwidth_hz, dtype=float)[ok]
                p = np.asarray(state.max_power_w, dtype=float)[idx].copy()
                p[ok] = np.asarray(decision.power_w, dtype=float)[ok]
                full_b, full_p = np.full(gain.size, state.total_bandwidth_hz), np.asarray(state.max_power_w).copy()
                full_b[idx], full_p[idx] = b, p
                eff = expected_gain(state, full_b, full_p, radio, self.world.config.channel)
                gain[idx[ok]] = eff[idx[ok]] * db_to_lin(-self.plan.fading_margin_db)
            view = round_view(state, idx, gain, self.costs, self.plan, radio, self.alloc_rng, retention_of)
            view = with_device_inputs(view, state, self.learner, self.costs, radio, gain)
            decision = self._decide(view)
        if self.policy.plans_tokens:
            view.retention  # the realised STE uses the curves of the plan (cached if the policy read them)
        return decision, view

    def _decide(self, view: RoundView) -> Decision:
        """The policy's decision for ``view``, checked (:meth:`Decision.check`) before anything
        uses it; an exception inside ``decide()`` is the policy's, reported in one line."""
        name = self.policy.name
        try:
            decision = self.policy.decide(view)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a user's policy may raise anything
            text = " ".join(str(exc).split())[:300]
            raise InvalidDecision(f"policy {name}: decide() raised {type(exc).__name__}: {text}") from exc
        if not isinstance(decision, Decision):
            raise InvalidDecision(f"policy {name}: decide() must return a Decision, got {type(decision).__name__}")
        decision.check(view, self.policy)
        return decision

    # ------------------------------------------------------------------ helpers
    def device_plan(self, report: DeviceReport, bandwidth_hz: float, power_w: float) -> DevicePlan:
        """The phases the World times for what ``report``'s device did this round."""
        phases: list = []
        cost = report.cost
        strategy = self.learner.strategy
        for step in range(report.steps):
            phases.append(Compute("device_forward", cost.device_forward_flops, where="device", step=step))
            if strategy.split:
                phases.append(Transfer("uplink", cost.uplink_bits, direction="uplink", step=step))
                phases.append(Compute("server", cost.server_flops, where="server", step=step))
                phases.append(Transfer("downlink", cost.downlink_bits, direction="downlink", step=step))
            if cost.device_backward_flops:
                phases.append(Compute("device_backward", cost.device_backward_flops, where="device", step=step))
        uploads = strategy.communicates and strategy.uploads_adapters(self.learner.model_config.device_trainable)
        if cost.adapter_bits and uploads:
            phases.append(Transfer("adapter_uplink", cost.adapter_bits, direction="uplink", step=-1))
            phases.append(Transfer("adapter_downlink", cost.adapter_bits, direction="downlink", step=-1))
        return DevicePlan(device=int(report.device), phases=phases, bandwidth_hz=bandwidth_hz,
                          power_w=power_w, tokens_kept=int(report.tokens))

    def _retention_sum(self, sched: np.ndarray, tokens: np.ndarray, kept: set) -> float:
        if not sched.size or not self.policy.plans_tokens or not self._curves:
            return 0.0
        # The curves the policy planned with (this round's, before training).
        return float(sum(self._curves[int(d)][int(k)] for d, k in zip(sched, tokens) if int(d) in kept))

    def _maybe_token_maps(self, r: int, sched: np.ndarray, tokens: np.ndarray) -> None:
        n = int(self.config.token_maps)
        if n <= 0 or not sched.size or not self.policy.plans_tokens or r not in (1, self.config.rounds):
            return
        ex = self.learner.token_examples(int(sched[0]), int(tokens[0]), n)
        self.trace.token_maps.append({
            "images": np.asarray(ex["images"]), "kept": np.asarray(ex["kept"]),
            "round": np.full(len(ex["images"]), r), "device": np.full(len(ex["images"]), int(sched[0])),
            "tokens": np.asarray(ex["tokens"]),
        })
