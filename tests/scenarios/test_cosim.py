"""The co-simulation loop, one round at a time, with a small deterministic learner (no torch).

The learner here is a real object implementing the interface the loop uses (costs, retention
curves, training reports, aggregation), with costs that are simple functions of the token
budget; the World is the real SimPy world. The tests check what the policy saw, what it decided
and what the trace says.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from learning.costs import StepCost
from learning.learner_config import DeviceReport, LearnerConfig
from learning.strategies import strategy as make_strategy
from netsim.reasons import Reason
from netsim.world import World
from scenarios.config import ScenarioConfig
from scenarios.cosim import CoSimulation
from scenarios.policies import Decision, Policy, RoundView

K_MAX = 16
STEPS = 2
# Per-step costs: uplink 1000 bits per kept token plus 3000 (CLS, fused token, labels).
UP_PER_TOKEN, UP_EXTRA = 1000.0, 3000.0
DEVICE_FLOPS, SERVER_FLOPS_PER_TOKEN, SERVER_FLOPS = 2e6, 1e5, 4e5


class CountingLearner:
    """Deterministic stand-in for :class:`learning.federated.Learner` (same methods)."""

    def __init__(self, num_devices: int, strategy: str = "split-federated") -> None:
        self.num_patches = K_MAX
        self.config = LearnerConfig(local_steps=STEPS, strategy=strategy)
        self.strategy = make_strategy(strategy)
        self.model_config = type("ModelConfig", (), {"device_trainable": False, "cut": 1})()
        self.model = type("Model", (), {"depth": 2})()
        self.num_devices = num_devices
        self.trained: list[tuple[list[int], list[int]]] = []
        self.aggregated: list[list[int]] = []

    def label_histograms(self) -> np.ndarray:
        return np.ones((self.num_devices, 10), dtype=np.int64)

    def step_cost(self, tokens: int | None = None, batch_size: int | None = None, cut: int | None = None,
                  bits: int | None = None) -> StepCost:
        k = K_MAX if tokens is None else tokens
        return StepCost(device_forward_flops=DEVICE_FLOPS, device_backward_flops=0.0,
                        server_flops=SERVER_FLOPS + SERVER_FLOPS_PER_TOKEN * k,
                        uplink_bits=UP_EXTRA + UP_PER_TOKEN * k, downlink_bits=0.0, adapter_bits=0.0)

    def retention(self, devices):
        # f_i(K) = (K / K_max) ** (1 / (i + 1)): concave, device-dependent.
        k = np.arange(K_MAX + 1) / K_MAX
        return np.array([k ** (1.0 / (d + 1)) for d in devices])

    def train_round(self, devices, tokens):
        self.trained.append((list(devices), list(tokens)))
        return [DeviceReport(d, 50, STEPS, 1.0, k, self.step_cost(k)) for d, k in zip(devices, tokens)]

    def aggregate(self, devices):
        self.aggregated.append(list(devices))

    def evaluate(self):
        return 0.5, 1.0

    def token_examples(self, device, tokens, n):
        return {"images": np.zeros((n, 4, 4, 3), np.uint8), "kept": np.ones((n, 2, 2), bool),
                "tokens": np.full(n, tokens)}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class Recording(Policy):
    """Keeps every view it is shown; decides a fixed budget, W / m each, full power, and
    refuses the devices listed in ``refuse`` with an energy status."""

    name = "recording"
    label = "Recording"
    description = "test policy"
    refuse: tuple[int, ...] = ()

    def __init__(self) -> None:
        self.views: list[RoundView] = []

    def decide(self, view: RoundView) -> Decision:
        self.views.append(view)
        m = view.num_devices
        status = np.array([Reason.ENERGY.value if d in self.refuse else Reason.ALLOCATED.value
                           for d in view.devices], dtype=object)
        return Decision(tokens=np.full(m, 5), bandwidth_hz=np.full(m, view.total_bandwidth_hz / m),
                        power_w=view.max_power_w.copy(), status=status, planned_ste=1.25)


def make(policy: Policy, devices: int = 3, deadline_s: float = 5.0) -> CoSimulation:
    config = ScenarioConfig(devices=devices, rounds=2, deadline_s=deadline_s, token_maps=0)
    return CoSimulation(config, policy, World(config.world, seed=1), CountingLearner(devices),
                        np.random.default_rng(0), np.random.default_rng(1))


def test_the_policy_sees_the_channel_limits_and_the_learners_costs():
    policy = Recording()
    cosim = make(policy)
    state = cosim.world.channel_state()
    cosim.step()
    (view,) = policy.views
    assert view.devices.tolist() == [0, 1, 2]
    assert view.max_tokens == K_MAX and view.total_bandwidth_hz == state.total_bandwidth_hz
    # Bits per kept token over the round's steps, and the extra tokens of the payload.
    assert np.allclose(view.bits_per_token, STEPS * UP_PER_TOKEN)
    assert view.extra_tokens == pytest.approx(UP_EXTRA / UP_PER_TOKEN)
    # Deadline: the planning margin times min(deadline, time in the cell).
    margin = cosim.config.planning.deadline_margin
    assert np.allclose(view.deadline_s, margin * np.minimum(5.0, state.time_left_s))
    # Compute at K = 0: device FLOPs on the device's CPU plus the server's share, by hand.
    speed = state.cpu_hz * state.flops_per_cycle
    want = STEPS * DEVICE_FLOPS / speed + STEPS * SERVER_FLOPS / state.server_flops_per_s
    assert np.allclose(view.compute_time_s, want, rtol=1e-12)
    assert np.allclose(view.compute_time_per_token_s, STEPS * SERVER_FLOPS_PER_TOKEN / state.server_flops_per_s)
    assert np.allclose(view.compute_energy_j, state.kappa * STEPS * DEVICE_FLOPS / state.flops_per_cycle
                       * state.cpu_hz**2, rtol=1e-12)
    assert np.allclose(view.compute_energy_per_token_j, 0.0)
    # Planned gain: the large-scale gain less the 3 dB fading margin, capped where the SNR over
    # an equal share of the band would exceed the spectral-efficiency cap.
    large_scale = 10 ** (-(state.pathloss_db + state.shadowing_db) / 10) * 10 ** -0.3
    cap = cosim.world.config.ofdma.max_spectral_efficiency
    g_cap = (2.0**cap - 1) * state.noise_psd_w_per_hz * state.total_bandwidth_hz / 3 / state.max_power_w
    assert np.allclose(view.gain_lin, np.minimum(large_scale, g_cap), rtol=1e-12)
    assert np.allclose(view.retention, cosim.learner.retention([0, 1, 2]))


def test_the_decision_is_trained_timed_and_traced():
    policy = Recording()
    policy.refuse = (1,)
    cosim = make(policy)
    row = cosim.step()
    # Device 1 was refused: only 0 and 2 train, with the decided budget.
    assert cosim.learner.trained == [([0, 2], [5, 5])]
    decisions = {r["device"]: r for r in cosim.trace.decisions}
    assert decisions[1]["status"] == decisions[1]["reason"] == Reason.ENERGY
    assert not decisions[1]["aggregated"] and math.isnan(decisions[1]["latency_s"])
    for d in (0, 2):
        assert decisions[d]["status"] == Reason.ALLOCATED and decisions[d]["tokens"] == 5
        assert decisions[d]["bandwidth_hz"] == pytest.approx(cosim.world.channel_state().total_bandwidth_hz / 3)
    # The world drained exactly the payload of the decided budget, per step.
    uplinks = [e for e in cosim.trace.events if e["phase"] == "uplink"]
    assert len(uplinks) == 2 * STEPS
    assert all(e["bits"] == UP_EXTRA + 5 * UP_PER_TOKEN for e in uplinks)
    assert row["uplink_bits"] == pytest.approx(2 * STEPS * (UP_EXTRA + 5 * UP_PER_TOKEN))
    assert row["selected"] == 3 and row["ste_planned"] == 1.25 and row["tokens_mean"] == 5
    # Completed devices are aggregated; the realised STE uses the retention planned with.
    assert cosim.learner.aggregated == [[0, 2]] and row["dropped"] == 1
    f = cosim.learner.retention([0, 2])[:, 5].sum()
    assert row["ste"] == pytest.approx(f / row["latency_s"])


def test_a_deadline_the_plan_cannot_meet_is_recorded_by_the_world():
    policy = Recording()
    cosim = make(policy, deadline_s=1e-4)
    row = cosim.step()
    decisions = cosim.trace.decisions
    assert [d["reason"] for d in decisions] == [Reason.DEADLINE] * 3
    assert cosim.learner.aggregated == [[]] and row["dropped"] == 3


def test_devices_outside_the_cell_are_never_shown_to_the_policy():
    policy = Recording()
    cosim = make(policy)
    cosim.world._in_cell[1] = False  # the world's own state: device 1 has left
    cosim.step()
    assert policy.views[0].devices.tolist() == [0, 2]
    left = [r for r in cosim.trace.decisions if r["device"] == 1]
    assert left == [{**left[0], "status": Reason.NOT_SCHEDULED, "reason": Reason.LEFT_CELL}]


def test_a_sequential_policy_gives_each_device_the_whole_band_in_turn():
    from scenarios.policies import policy_class

    policy = policy_class("split-lora")()
    config = ScenarioConfig(devices=3, rounds=2, deadline_s=5.0, token_maps=0, policy="split-lora")
    cosim = CoSimulation(config, policy, World(config.world, seed=1), CountingLearner(3, "split-sequential"),
                         np.random.default_rng(0), np.random.default_rng(1))
    row = cosim.step()
    band = cosim.world.channel_state().total_bandwidth_hz
    assert [r["bandwidth_hz"] for r in cosim.trace.decisions] == [band] * 3
    assert cosim.learner.trained == [([0, 1, 2], [K_MAX] * 3)]
    # Devices take turns: each starts after the previous one ended.
    spans = [(min(e["start_s"] for e in cosim.trace.events if e["device"] == d),
              max(e["end_s"] for e in cosim.trace.events if e["device"] == d)) for d in range(3)]
    assert all(spans[i][1] <= spans[i + 1][0] + 1e-12 for i in range(2))
    assert math.isnan(row["ste"]) and math.isnan(row["ste_planned"])
