"""Equal split: a fixed share of the most attended tokens, W / n each, full power."""
from __future__ import annotations

from netsim.allocation import equal_share
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


def ratio_tokens(view: RoundView, keep_ratio: float) -> int:
    """``round(keep_ratio K_max)`` clipped to ``[1, K_max]``."""
    return min(max(int(round(keep_ratio * view.max_tokens)), 1), view.max_tokens)


def equal_split(view: RoundView, tokens: int) -> Decision:
    """Every device keeps ``tokens`` tokens and gets W / n at full power (less where its
    energy budget requires); a device that still cannot make it is dropped."""
    return Decision.from_allocation(equal_share(view.problem(), tokens))


@register_policy
class EqualSplit(Policy):
    name = "equal"
    label = "Equal split"
    description = "semantic tokens at the scenario's keep_ratio, equal bandwidth, full power (nothing optimised)"
    reference = "static baseline of the ST-SFLora comparison (arXiv:2605.26120)"

    def decide(self, view: RoundView) -> Decision:
        return equal_split(view, ratio_tokens(view, view.keep_ratio))
