"""Federated LoRA: the whole model on the device, only adapters uploaded, equal band share."""
from __future__ import annotations

from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@register_policy
class FedLora(Policy):
    name = "fed-lora"
    label = "FedLoRA"
    description = "federated LoRA without a cut: adapters uploaded at the end of the round over W / n at full power"
    reference = "McMahan et al., FedAvg, AISTATS 2017; with LoRA adapters (Hu et al., ICLR 2022)"
    strategy = "federated"
    token_policy = "all"
    plans_tokens = False

    def decide(self, view: RoundView) -> Decision:
        return Decision.everyone(view, view.total_bandwidth_hz / view.num_devices, view.max_power_w)
