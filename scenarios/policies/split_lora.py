"""Split LoRA: vanilla split learning, devices take turns with the whole band at full power."""
from __future__ import annotations

from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@register_policy
class SplitLora(Policy):
    name = "split-lora"
    label = "Split LoRA"
    description = ("vanilla split learning with LoRA: one shared model, devices take turns with the "
                   "whole band at full power; nothing optimised, late devices miss the deadline")
    reference = "Gupta & Raskar, Distributed learning of deep neural network over multiple agents, 2018"
    strategy = "split-sequential"
    token_policy = "all"
    schedule = "sequential"
    plans_tokens = False

    def decide(self, view: RoundView) -> Decision:
        return Decision.everyone(view, view.total_bandwidth_hz, view.max_power_w)
