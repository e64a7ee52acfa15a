"""SFLora: split federated LoRA with every token sent, equal bandwidth and full power."""
from __future__ import annotations

from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.equal import equal_split
from scenarios.policies.registry import register_policy


@register_policy
class SFLora(Policy):
    name = "sflora"
    label = "SFLora"
    description = "split federated LoRA (SFL-V1), all tokens, equal bandwidth, full power"
    reference = "Thapa et al., SplitFed, AAAI 2022; with LoRA adapters (Hu et al., ICLR 2022)"
    token_policy = "all"

    def decide(self, view: RoundView) -> Decision:
        return equal_split(view, view.max_tokens)
