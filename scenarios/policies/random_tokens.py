"""Random tokens: a uniformly random token budget and random tokens, radio optimised for it."""
from __future__ import annotations

from netsim.allocation import random_tokens
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@register_policy
class RandomTokens(Policy):
    name = "random-tokens"
    label = "Random tokens"
    description = "random token budget of random tokens per device, bandwidth and power optimised for it"
    reference = "token selection baseline of the ST-SFLora comparison (arXiv:2605.26120)"
    token_policy = "random"

    def decide(self, view: RoundView) -> Decision:
        return Decision.from_allocation(random_tokens(view.problem(), view.rng))
