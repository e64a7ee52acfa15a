"""ST-SFLora's radio allocation with every token sent (the token budget ablation)."""
from __future__ import annotations

from netsim.allocation import fixed_tokens
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@register_policy
class StSFLoraFull(Policy):
    name = "st-sflora-full"
    label = "ST-SFLora (all tokens)"
    description = "all tokens sent; bandwidth and power optimised (min-max latency) as in ST-SFLora"
    reference = "ablation of ST-SFLora (arXiv:2605.26120)"
    token_policy = "all"

    def decide(self, view: RoundView) -> Decision:
        return Decision.from_allocation(fixed_tokens(view.problem(), view.max_tokens))
