"""ST-SFLora: semantic token budgets, bandwidth and power chosen jointly to maximise STE."""
from __future__ import annotations

from netsim.allocation import max_ste
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@register_policy
class StSFLora(Policy):
    name = "st-sflora"
    label = "ST-SFLora"
    description = ("split federated LoRA; each device keeps its K most [CLS]-attended tokens, K, "
                   "bandwidth and power optimised jointly for semantic transmission efficiency")
    reference = ("Qiang, Chang & Min, Semantic-aware Token Selection and Resource Optimization for "
                 "Communication-efficient Split Federated Fine-tuning in Edge Intelligence, arXiv:2605.26120")
    default = True

    def decide(self, view: RoundView) -> Decision:
        return Decision.from_allocation(max_ste(view.problem()))
