"""The round's cost model: what a device's local steps cost as a function of its token budget.

The learner measures one local step at K = 1 and K = K_max on its real code path
(:meth:`learning.federated.Learner.step_cost`); each cost is fitted once as
``base + per_token * K`` and turned into time and energy on each device's hardware with
netsim's compute formulas (:func:`netsim.energy.compute_time_s`,
:func:`netsim.energy.compute_energy_j`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learning.costs import StepCost
from netsim.energy import compute_energy_j, compute_time_s


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


@dataclass(frozen=True)
class RoundCompute:
    """Time and energy of a round's work that the radio does not decide, per device ``[m]``.

    Attributes:
        time_s: device and server compute plus the gradient downlink at K = 0, s.
        energy_j: device compute energy at K = 0, J.
        time_per_token_s: extra time per kept token, s.
        energy_per_token_j: extra device energy per kept token, J.
    """

    time_s: np.ndarray
    energy_j: np.ndarray
    time_per_token_s: np.ndarray
    energy_per_token_j: np.ndarray


@dataclass(frozen=True)
class CostModel:
    """Per-step costs of the learner, linear in the token budget, and their round totals.

    Attributes:
        k_max: patch tokens per image.
        local_steps: local steps per device per round.
        uplink: uplink bits per step.
        downlink: downlink bits per step.
        server: server FLOPs per step.
        device: device FLOPs (forward + backward) per step.
        adapter_bits: adapters exchanged per round for aggregation, bits.
    """

    k_max: int
    local_steps: int
    uplink: LinearCost
    downlink: LinearCost
    server: LinearCost
    device: LinearCost
    adapter_bits: float

    @classmethod
    def from_step_costs(cls, one: StepCost, full: StepCost, k_max: int, local_steps: int) -> "CostModel":
        """Fit from the measured costs of a step at K = 1 (``one``) and K = K_max (``full``)."""
        uplink = LinearCost.fit(one.uplink_bits, full.uplink_bits, k_max)
        if uplink.per_token <= 0 and full.uplink_bits > 0:
            # Learners that always send every token report the same payload for any budget:
            # split it evenly over the patch tokens and the [CLS] token.
            per = full.uplink_bits / (k_max + 1)
            uplink = LinearCost(per, per)
        return cls(
            k_max=k_max, local_steps=local_steps, uplink=uplink,
            downlink=LinearCost.fit(one.downlink_bits, full.downlink_bits, k_max),
            server=LinearCost.fit(one.server_flops, full.server_flops, k_max),
            device=LinearCost.fit(one.device_flops, full.device_flops, k_max),
            adapter_bits=float(full.adapter_bits),
        )

    @property
    def extra_tokens(self) -> float:
        """Token-equivalents of the uplink payload besides the kept patches."""
        return self.uplink.base / self.uplink.per_token

    def full_compute_s(self, cpu_hz: np.ndarray, flops_per_cycle: np.ndarray, server_flops_per_s: float,
                       k: int | None = None) -> np.ndarray:
        """``[N]`` device plus server compute time of a round at ``k`` tokens (default K_max), s."""
        k = self.k_max if k is None else k
        return self.local_steps * (compute_time_s(self.device(k), cpu_hz, flops_per_cycle)
                                   + self.server(k) / server_flops_per_s)

    def round_compute(self, cpu_hz: np.ndarray, flops_per_cycle: np.ndarray, kappa: np.ndarray,
                      server_flops_per_s: float, downlink_rate_bps: np.ndarray) -> RoundCompute:
        """The K-independent and per-token parts of a round's compute time and energy ``[m]``."""
        steps = self.local_steps
        server_s = steps / server_flops_per_s

        def part(device_flops: float, server_flops: float, downlink_bits: float):
            time_s = (compute_time_s(steps * device_flops, cpu_hz, flops_per_cycle) + server_flops * server_s
                      + steps * downlink_bits / downlink_rate_bps)
            return time_s, compute_energy_j(steps * device_flops, cpu_hz, flops_per_cycle, kappa)

        time_s, energy_j = part(self.device.base, self.server.base, self.downlink.base)
        time_k, energy_k = part(self.device.per_token, self.server.per_token, self.downlink.per_token)
        return RoundCompute(time_s, energy_j, time_k, energy_k)
