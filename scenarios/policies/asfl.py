"""ASFL: each vehicle's cut layer chosen every round from its link and its CPU.

Source: adaptive split federated learning for vehicles (IEEE Wireless Communications
32(4):90-97, 2025; the ASFL code, arXiv:2406.15804). Known secondhand: the cut is adapted to
each vehicle's channel and compute; the released code draws it at random during training.
Here the rule is written out (:func:`netsim.allocation.cut_layer.choose_cut_layer`): per
device and round, the cut in ``[asfl.min_cut, asfl.max_cut]`` with the least round latency
under the device's energy budget and deadline, every device sending all its tokens at full
power over an equal share of the band.

The costs of each cut are the learner's, measured at that cut (FLOPs of the real step on each
side, activation and gradient bits, and, when devices train their blocks, the adapters of the
blocks below the cut that travel for aggregation both ways); the server is shared equally by
the round's devices. In a ViT every block keeps the token shape, so the activations are the same
size at every cut and the cut trades device FLOPs against server FLOPs (and adapter bits): a
device slower per block than its server share cuts early, whatever its link.

The learner runs each device at its own cut in the same round; each adapter is averaged over
the devices that trained it (:func:`learning.strategies.average_over_holders`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.allocation.cut_layer import choose_cut_layer
from netsim.allocation.radio import rate_bps
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@dataclass(frozen=True)
class AsflParams:
    """The cuts ASFL chooses from (``--set asfl.min_cut=1 --set asfl.max_cut=-1``)."""

    min_cut: int = field(default=1, metadata={"help": "earliest cut (blocks on the device)", "unit": "blocks"})
    max_cut: int = field(default=-1, metadata={"help": "latest cut (-1: the model's depth)", "unit": "blocks"})

    def __post_init__(self) -> None:
        for name in ("min_cut", "max_cut"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < -1:
                raise ValueError(f"{name} must be an integer >= 0 (or -1 for max_cut), got {v!r}")
        if self.min_cut < 0:
            raise ValueError(f"min_cut must be >= 0, got {self.min_cut!r}")
        if self.max_cut != -1 and self.max_cut < self.min_cut:
            raise ValueError(f"max_cut must be >= min_cut={self.min_cut} or -1, got {self.max_cut!r}")


def candidate_cuts(view: RoundView, params: AsflParams) -> np.ndarray:
    """``int [C]`` the cuts to choose from, within ``[0, depth]``."""
    top = view.depth if params.max_cut == -1 else min(params.max_cut, view.depth)
    low = min(params.min_cut, top)
    return np.arange(low, top + 1)


@register_policy
class ASFL(Policy):
    name = "asfl"
    label = "ASFL"
    description = ("split federated LoRA with each device's cut layer chosen per round from its link and CPU "
                   "(least round latency within energy and deadline), all tokens, equal bandwidth, full power")
    reference = ("Adaptive split federated learning for vehicles, IEEE Wireless Communications 32(4):90-97, "
                 "2025; ASFL code, arXiv:2406.15804")
    token_policy = "all"
    plans_tokens = False
    chooses_cut = True
    params_type = AsflParams

    def __init__(self, params: AsflParams | None = None) -> None:
        super().__init__(params)
        self.last = None  # the last round's CutChoice (for inspection)

    @classmethod
    def check_config(cls, config, depth: int) -> None:
        """``asfl.min_cut`` must be a cut of the model (a ``max_cut`` above it is clipped)."""
        params = cls.from_config(config).params
        if params.min_cut > depth:
            raise ValueError(f"asfl.min_cut={params.min_cut}: must be <= the model's depth {depth} "
                             f"(blocks a device can hold)")

    def decide(self, view: RoundView) -> Decision:
        m = view.num_devices
        cuts = candidate_cuts(view, self.params)
        per_cut = [view.cost_at(int(c)) for c in cuts]
        bandwidth = np.full(m, view.total_bandwidth_hz / m)
        power = np.asarray(view.max_power_w, dtype=float)
        uplink = rate_bps(bandwidth, power, view.gain_lin, view.noise_psd_w_per_hz)
        choice = choose_cut_layer(
            cuts,
            device_flops=np.array([c.device_flops for c in per_cut]),
            server_flops=np.array([c.server_flops for c in per_cut]),
            uplink_bits=np.array([c.uplink_bits + c.adapter_bits for c in per_cut]),
            downlink_bits=np.array([c.downlink_bits + c.adapter_bits for c in per_cut]),
            cpu_hz=view.cpu_hz, flops_per_cycle=view.flops_per_cycle, kappa=view.kappa,
            server_flops_per_s=view.server_flops_per_s / m, uplink_rate_bps=uplink,
            downlink_rate_bps=view.downlink_rate_bps, tx_power_w=power,
            energy_budget_j=view.energy_budget_j, deadline_s=view.deadline_s,
        )
        self.last = choice
        ok = choice.ok
        return Decision(tokens=np.full(m, view.max_tokens, dtype=int), bandwidth_hz=np.where(ok, bandwidth, 0.0),
                        power_w=np.where(ok, power, 0.0), status=np.asarray(choice.status, dtype=object),
                        cut_layer=np.asarray(choice.cut, dtype=int))
