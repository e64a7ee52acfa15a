"""The round's cost model: what a device's local steps cost as a function of its token budget.

The learner measures one local step on its real code path
(:meth:`learning.federated.Learner.step_cost`: FLOPs counted around each phase, bits read from
the payload tensors the step built). Two ways to turn that into a cost at every budget K:

* ``two-point`` (:meth:`CostModel.from_step_costs`): a line ``base + per_token * K`` through
  the costs at K = 1 and K = K_max. Below K_max the payload carries one fused token that the
  full payload does not, so this line plans about ``(K - 1) / (K_max - 1)`` tokens too few.
* ``exact`` (:meth:`CostModel.from_learner`): a table of the costs at every K. Below K_max a
  step sends [CLS], K patches and the fused token: its bits are affine in K and its FLOPs a
  quadratic (linear layers grow with the token count, attention with its square), so three
  measurements (K = 1, 2, 3) give every K < K_max; the value at K_max - 1 is measured too and
  must match the polynomial (relative 1e-9), otherwise every K is measured. K_max is measured.

Either way the allocation sees a line (its problem is linear in K): ``exact`` takes the secant
through K = 1 and K_max - 1, which is the exact payload for every K < K_max, an upper bound of
the convex server FLOPs between them, and one token above the payload at K_max. Time and energy
on each device's hardware use netsim's compute formulas (:func:`netsim.energy.compute_time_s`,
:func:`netsim.energy.compute_energy_j`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from learning.costs import StepCost
from netsim.energy import compute_energy_j, compute_time_s

#: The per-step costs a table holds, as :class:`learning.costs.StepCost` attributes.
COSTS = ("uplink_bits", "downlink_bits", "server_flops", "device_flops")


@dataclass(frozen=True)
class LinearCost:
    """A per-step cost as ``base + per_token * K``."""

    base: float
    per_token: float

    @classmethod
    def fit(cls, at_one: float, at_max: float, k_max: int) -> "LinearCost":
        """The line through ``(1, at_one)`` and ``(k_max, at_max)`` (flat if ``k_max <= 1``)."""
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


def _tables(step_cost: Callable[[int], StepCost], k_max: int) -> dict[str, np.ndarray]:
    """``{cost: float [K_max + 1]}`` per-step costs at K = 0..K_max (entry 0 repeats K = 1)."""
    measured: dict[int, StepCost] = {}

    def at(k: int) -> StepCost:
        if k not in measured:
            measured[k] = step_cost(k)
        return measured[k]

    ks = np.arange(k_max + 1, dtype=float)
    out = {name: np.empty(k_max + 1) for name in COSTS}
    if k_max >= 5:
        probe = k_max - 1
        for name in COSTS:
            y = [getattr(at(k), name) for k in (1, 2, 3)]
            # the quadratic through K = 1, 2, 3 (Newton form), evaluated at every K < K_max
            d1, d2 = y[1] - y[0], (y[2] - 2 * y[1] + y[0]) / 2.0
            poly = y[0] + d1 * (ks - 1) + d2 * (ks - 1) * (ks - 2)
            want = getattr(at(probe), name)
            if not np.isclose(poly[probe], want, rtol=1e-9, atol=1e-6):
                break
            out[name][:k_max] = poly[:k_max]
        else:
            for name in COSTS:
                out[name][k_max] = getattr(at(k_max), name)
                out[name][0] = out[name][1]
            return out
    for k in range(1, k_max + 1):  # a learner whose costs are not of that form: measure them all
        for name in COSTS:
            out[name][k] = getattr(at(k), name)
    for name in COSTS:
        out[name][0] = out[name][1]
    return out


@dataclass(frozen=True)
class CostModel:
    """Per-step costs of the learner as lines in the token budget, and their round totals.

    Attributes:
        k_max: patch tokens per image.
        local_steps: local steps per device per round.
        uplink: uplink bits per step (the line the allocation plans with).
        downlink: downlink bits per step.
        server: server FLOPs per step.
        device: device FLOPs (forward + backward) per step.
        adapter_bits: adapters exchanged per round for aggregation, bits.
        table: ``{cost: [K_max + 1]}`` exact per-step costs at every K (:data:`COSTS`), or
            ``None`` for the two-point lines.
    """

    k_max: int
    local_steps: int
    uplink: LinearCost
    downlink: LinearCost
    server: LinearCost
    device: LinearCost
    adapter_bits: float
    table: dict[str, np.ndarray] | None = field(default=None, repr=False)

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

    @classmethod
    def from_learner(cls, step_cost: Callable[[int], StepCost], k_max: int, local_steps: int) -> "CostModel":
        """The exact per-K table from the learner's own step costs (module docstring).

        Args:
            step_cost: ``K -> StepCost`` of one local step (the learner's, cached per shape).
            k_max: patch tokens per image.
            local_steps: local steps per round.
        """
        table = _tables(step_cost, k_max)
        full = step_cost(k_max)
        # the secant through K = 1 and K_max - 1: exact payload for every K < K_max
        hi = max(1, k_max - 1)
        lines = {name: LinearCost.fit(table[name][1], table[name][hi], hi) for name in COSTS}
        if lines["uplink_bits"].per_token <= 0 and full.uplink_bits > 0:
            per = full.uplink_bits / (k_max + 1)
            lines["uplink_bits"] = LinearCost(per, per)
        return cls(k_max=k_max, local_steps=local_steps, uplink=lines["uplink_bits"],
                   downlink=lines["downlink_bits"], server=lines["server_flops"], device=lines["device_flops"],
                   adapter_bits=float(full.adapter_bits), table=table)

    @property
    def extra_tokens(self) -> float:
        """Token-equivalents of the uplink payload besides the kept patches."""
        return self.uplink.base / self.uplink.per_token

    def step(self, name: str, k: np.ndarray | int) -> np.ndarray:
        """Per-step cost ``name`` (:data:`COSTS`) at budgets ``k``: the table's, or the line's."""
        if self.table is not None:
            return self.table[name][np.clip(np.asarray(k, dtype=int), 0, self.k_max)]
        line = {"uplink_bits": self.uplink, "downlink_bits": self.downlink, "server_flops": self.server,
                "device_flops": self.device}[name]
        return np.asarray(line(np.asarray(k, dtype=float)), dtype=float)

    def round_uplink_bits(self, k: np.ndarray | int) -> np.ndarray:
        """Uplink bits of a round's local steps at budgets ``k``, bits."""
        return self.local_steps * self.step("uplink_bits", k)

    def full_compute_s(self, cpu_hz: np.ndarray, flops_per_cycle: np.ndarray, server_flops_per_s: float,
                       k: int | None = None) -> np.ndarray:
        """``[N]`` device plus server compute time of a round at ``k`` tokens (default K_max), s."""
        k = self.k_max if k is None else k
        return self.local_steps * (compute_time_s(self.device(k), cpu_hz, flops_per_cycle)
                                   + self.server(k) / server_flops_per_s)

    def compute_energy_at_j(self, k: np.ndarray, cpu_hz: np.ndarray, flops_per_cycle: np.ndarray,
                            kappa: np.ndarray) -> np.ndarray:
        """``[m]`` device compute energy of a round at budgets ``k`` (the table's FLOPs if exact), J."""
        return compute_energy_j(self.local_steps * self.step("device_flops", k), cpu_hz, flops_per_cycle, kappa)

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
