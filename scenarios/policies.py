"""The comparison set of the ST-SFLora paper, by name, as a learner variant plus a radio policy.

A *policy* of a scenario decides two things: how the model is trained (the learner variant of
:mod:`learning.federated`) and how the round's radio and token decisions are made (an allocation
policy of :mod:`netsim.allocation`, or none when nothing is uploaded per step).

=================  ==============  ================  ===========  ==========
policy             learner         allocation        tokens       schedule
=================  ==============  ================  ===========  ==========
st-sflora          st-sflora       st-sflora         semantic     parallel
st-sflora-full     sflora          full-tokens       all          parallel
sflora             sflora          equal (ratio 1)   all          parallel
split-lora         split-lora      none: whole band  all          sequential
fed-lora           fed-lora        none: equal band  (none)       parallel
local-lora         local-lora      none: no radio    (none)       parallel
random-tokens      st-sflora       random-tokens     random       parallel
equal              st-sflora       equal (keep_ratio) semantic    parallel
=================  ==============  ================  ===========  ==========

``split-lora`` is vanilla split learning: devices take turns, each with the whole band at full
power and nothing optimised, which is why its rounds are long and late devices miss deadlines. ``fed-lora`` uploads only LoRA adapters at the end of the round, over an
equal share of the band at full power; ``local-lora`` never communicates.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicySpec:
    """How one named policy trains and allocates.

    Attributes:
        learner_variant: name of the :class:`learning.federated.LearnerConfig` variant.
        allocation: :func:`netsim.allocation.solve` policy, or ``None`` when nothing is
            optimised (split-lora, fed-lora, local-lora).
        token_policy: which tokens a device keeps (``semantic``, ``random``, ``all``).
        schedule: ``parallel`` (OFDMA, all at once) or ``sequential`` (devices take turns).
        all_tokens: the token budget is always every patch token.
        communicates: whether the device uses the radio at all.
    """

    learner_variant: str
    allocation: str | None
    token_policy: str
    schedule: str = "parallel"
    all_tokens: bool = False
    communicates: bool = True


POLICIES: dict[str, PolicySpec] = {
    "st-sflora": PolicySpec("st-sflora", "st-sflora", "semantic"),
    "st-sflora-full": PolicySpec("sflora", "full-tokens", "all", all_tokens=True),
    "sflora": PolicySpec("sflora", "equal", "all", all_tokens=True),
    "split-lora": PolicySpec("split-lora", None, "all", schedule="sequential", all_tokens=True),
    "fed-lora": PolicySpec("fed-lora", None, "all", all_tokens=True),
    "local-lora": PolicySpec("local-lora", None, "all", all_tokens=True, communicates=False),
    "random-tokens": PolicySpec("st-sflora", "random-tokens", "random"),
    "equal": PolicySpec("st-sflora", "equal", "semantic"),
}


def policy_spec(name: str) -> PolicySpec:
    """The :class:`PolicySpec` of ``name``; ValueError listing the valid names otherwise."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {name!r}") from None
