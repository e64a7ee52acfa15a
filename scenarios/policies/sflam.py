"""SFLAM: the device holds only the patch embedding; bits, power and bandwidth chosen jointly.

Source: "Deploying Large AI Models on Resource-Limited
Devices with Split Federated Learning" (SFLAM), arXiv:2504.09114, IEEE TMC 2026. The device
runs only the patch embedding (cut 0), uploads quantised activations of every token, and each
round the bits per value, transmit power and bandwidth of every device are chosen jointly to
cut the round latency under the devices' energy limits.

Reconstructed, not reproduced: the solver (:func:`netsim.allocation.sflam.solve_sflam`) is
rebuilt from the paper's problem statement; its docstring says what differs (latency +
lambda x quantisation distortion as the objective, an exact radio block instead of SCA, a
continuous bandwidth split instead of matching). Here the server trains LoRA adapters on every
block (the paper fine-tunes the whole model; its released code has no quantisation).

The problem's payload is the learner's, measured at cut 0 with every token: values per step V,
quantiser headers H (a float32 minimum and step per token) and label bits L are read from the
payload at float32, 8 and 4 bits (U(b) = V b + H + L), so the bits the plan counts are the bits
the learner sends at the width the policy chose. Device compute is the patch embedding's FLOPs
on the device's CPU; the server time is its FLOPs at an equal share of the server.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.allocation.sflam import SflamProblem, solve_sflam
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@dataclass(frozen=True)
class SflamParams:
    """SFLAM's choices (``--set sflam.distortion_weight_s=1 --set sflam.bit_levels=2,4,8,16``)."""

    bit_levels: tuple[int, ...] = field(default=(2, 4, 8, 16), metadata={
        "help": "bits per value the solver chooses from (strictly increasing, in [1, 16])", "unit": "bit/value"})
    distortion_weight_s: float = field(default=1.0, metadata={
        "help": "round latency worth one unit of normalised quantisation distortion (2^b - 1)^-2", "unit": "s"})
    method: str = field(default="bcd", metadata={
        "help": "bcd (block coordinate descent) or exhaustive (every bit vector; few devices only)", "unit": ""})

    def __post_init__(self) -> None:
        levels = tuple(self.bit_levels)
        if (not levels or any(isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 16 for b in levels)
                or list(levels) != sorted(set(levels))):
            raise ValueError(f"bit_levels must be strictly increasing integers in [1, 16], got {self.bit_levels!r}")
        if not (np.isfinite(self.distortion_weight_s) and self.distortion_weight_s >= 0):
            raise ValueError(f"distortion_weight_s must be a finite number >= 0, got {self.distortion_weight_s!r}")
        if self.method not in ("bcd", "exhaustive"):
            raise ValueError(f"method must be 'bcd' or 'exhaustive', got {self.method!r}")


def payload_terms(view: RoundView, cut: int = 0) -> tuple[float, float, float]:
    """``(V, H, L)`` per step at ``cut`` with every token: activation values, quantiser header
    bits and label bits, from the learner's payloads at float32, 8 and 4 bits."""
    at = lambda b: view.step_cost_of(view.max_tokens, cut, b).uplink_bits  # noqa: E731
    u32, u8, u4 = at(32), at(8), at(4)
    values = (u8 - u4) / 4.0
    labels = u32 - 32.0 * values
    return values, u8 - 8.0 * values - labels, labels


@register_policy
class SFLAM(Policy):
    name = "sflam"
    label = "SFLAM"
    description = ("split FL with only the patch embedding on the device (cut 0), quantised activations; "
                   "bits per value, power and bandwidth chosen jointly (reconstruction)")
    reference = ("Deploying Large AI Models on Resource-Limited Devices with Split Federated "
                 "Learning (SFLAM), arXiv:2504.09114, IEEE TMC 2026")
    token_policy = "all"
    plans_tokens = False
    chooses_cut = True
    params_type = SflamParams

    def __init__(self, params: SflamParams | None = None) -> None:
        super().__init__(params)
        self.last = None  # the last round's BitsAllocation (for inspection)

    def decide(self, view: RoundView) -> Decision:
        m = view.num_devices
        values, header, labels = payload_terms(view)
        work = view.cost_at(0, bits=32)
        problem = SflamProblem(
            gain_lin=view.gain_lin, noise_psd_w_per_hz=view.noise_psd_w_per_hz,
            total_bandwidth_hz=view.total_bandwidth_hz, max_power_w=view.max_power_w,
            energy_budget_j=view.energy_budget_j, deadline_s=view.deadline_s, values_per_step=values,
            # the labels travel unquantised beside the codes: with widths below 32 they are a fixed
            # part of the payload, as the headers are
            header_bits_per_step=header + labels, steps=view.local_steps,
            distortion_weight_s=self.params.distortion_weight_s, compute_time_s=work.device_time_s,
            compute_energy_j=work.device_energy_j, fixed_time_s=work.server_time_s + work.downlink_time_s,
            bit_levels=self.params.bit_levels, tokens=view.max_tokens,
        )
        alloc = solve_sflam(problem, method=self.params.method)
        self.last = alloc
        return Decision(tokens=np.asarray(alloc.tokens, dtype=int), bandwidth_hz=np.asarray(alloc.bandwidth_hz),
                        power_w=np.asarray(alloc.power_w), status=np.asarray(alloc.status, dtype=object),
                        cut_layer=np.zeros(m, dtype=int),
                        bits_per_value=np.asarray(alloc.bits_per_value, dtype=int))
