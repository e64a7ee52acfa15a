"""Local LoRA: every device fine-tunes alone and never uses the radio."""
from __future__ import annotations

from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@register_policy
class LocalLora(Policy):
    name = "local-lora"
    label = "Local LoRA"
    description = "each device fine-tunes the whole model alone with its own adapters; no communication"
    reference = "local-training lower bound of federated learning comparisons"
    strategy = "local"
    token_policy = "all"
    plans_tokens = False

    def decide(self, view: RoundView) -> Decision:
        return Decision.everyone(view, 0.0, 0.0)
