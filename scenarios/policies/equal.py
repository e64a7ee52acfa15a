"""Equal split: a fixed share of the most attended tokens, W / n each, full power."""
from __future__ import annotations

from netsim.allocation import solve
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


def equal_split(view: RoundView, keep_ratio: float) -> Decision:
    """Every device keeps ``round(keep_ratio K_max)`` tokens and gets W / n at full power
    (less where its energy budget requires); a device that still cannot make it is dropped."""
    return Decision.from_allocation(solve(view.problem(), policy=EqualSplit.name, keep_ratio=keep_ratio))


@register_policy
class EqualSplit(Policy):
    name = "equal"
    label = "Equal split"
    description = "semantic tokens at the scenario's keep_ratio, equal bandwidth, full power (nothing optimised)"
    reference = "static baseline of the ST-SFLora comparison (arXiv:2605.26120)"

    def decide(self, view: RoundView) -> Decision:
        return equal_split(view, view.keep_ratio)
