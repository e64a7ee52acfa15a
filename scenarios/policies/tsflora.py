"""TSFLora: top-K [CLS]-attended tokens plus one merged token, b-bit activations, server LoRA.

Source: TSFLora, token-compressed split federated LoRA fine-tuning (arXiv:2605.23988):
attention-guided token selection, merging of the rest into one token, low-bit activation
quantisation (8, 4 or 2 bits) and LoRA adapters trained on the server, with the frozen
backbone unchanged. K and b are fixed; there is no radio optimisation, so every device gets
an equal share of the band at full power (less where its energy budget requires; a device that
still cannot finish in time is dropped, as the ``equal`` baseline does).

What the learner does for it: the device keeps its K most [CLS]-attended patch tokens and
fuses the rest into one token (the learner's ``semantic`` policy with fusion), quantises every
sent token to b bits per value with a float32 minimum and step per token
(:mod:`learning.quantize`), and the bits on the air are those of the payload tensors: codes,
per-token headers and labels. The plan sees the same payload: its uplink cost per token is
measured from the learner at b bits.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from netsim.allocation import equal_share
from scenarios.costs import LinearCost
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy

BITS = (2, 4, 8)


@dataclass(frozen=True)
class TsfloraParams:
    """TSFLora's fixed compression (``--set tsflora.tokens=16 --set tsflora.bits=8``)."""

    tokens: int = field(default=16, metadata={"help": "patch tokens kept per image (clipped to the patch count)",
                                              "unit": "tokens"})
    bits: int = field(default=8, metadata={"help": "bits per activation value: 8, 4 or 2", "unit": "bit/value"})

    def __post_init__(self) -> None:
        if isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens < 1:
            raise ValueError(f"tokens must be an integer >= 1, got {self.tokens!r}")
        if self.bits not in BITS:
            raise ValueError(f"bits must be one of {BITS}, got {self.bits!r}")


@register_policy
class TSFLora(Policy):
    name = "tsflora"
    label = "TSFLora"
    description = ("split LoRA; top-K [CLS]-attended tokens + one merged token, b-bit activations "
                   "(tsflora.tokens, tsflora.bits), equal bandwidth, full power")
    reference = "TSFLora: token-compressed split federated LoRA fine-tuning, arXiv:2605.23988"
    token_policy = "semantic"
    params_type = TsfloraParams

    def decide(self, view: RoundView) -> Decision:
        k = min(int(self.params.tokens), view.max_tokens)
        bits = int(self.params.bits)
        problem = view.problem()
        if view.step_cost_of is not None:
            # the plan's payload is the learner's at b bits: codes, per-token headers, labels
            # below K_max a step sends [CLS], K patches and the merged token: affine in K, so the
            # line through K = 1 and K_max - 1 is exact there (and one token high at K_max)
            at = lambda t: view.step_cost_of(t, view.model_cut, bits).uplink_bits  # noqa: E731
            top = view.max_tokens - 1 if view.max_tokens > 2 else view.max_tokens
            up = LinearCost.fit(at(1), at(top), top)
            per = view.local_steps * up.per_token
            problem = dataclasses.replace(problem, bits_per_token=np.full(view.num_devices, per),
                                          extra_tokens=up.base / up.per_token)
        alloc = equal_share(problem, k)
        d = Decision.from_allocation(alloc)
        return dataclasses.replace(d, bits_per_value=np.full(view.num_devices, bits, dtype=int))
