"""A learner's checkpoint: what it takes to continue a run bit for bit.

Adapters (global and per device), optimiser states and the state of every random stream the
learner draws from during training. Taken between rounds: results of a round not yet
aggregated are not included.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from learning.federated import Learner


def learner_state(learner: "Learner") -> dict:
    """The checkpoint of ``learner`` (plain tensors, dicts and generator states)."""
    return {
        "strategy": learner.config.strategy,
        "num_devices": learner.num_devices,
        "global": {k: v.clone() for k, v in learner.global_state.items()},
        "device_states": copy.deepcopy(learner.device_states),
        "opt_states": copy.deepcopy(learner.opt_states),
        "streams": [s.state_dict() for s in learner._streams],
        "token_gens": [g.get_state() for g in learner._token_gens],
        "dropout_gens": [g.get_state() for g in learner._dropout_gens],
        "sample_cache": learner.samples.state_dict() if learner.samples is not None else None,
    }


def load_learner_state(learner: "Learner", state: dict) -> None:
    """Restore a :func:`learner_state` into a learner built with the same configs and data.

    Raises:
        ValueError: the state is of another strategy or number of devices.
    """
    if state["strategy"] != learner.config.strategy or state["num_devices"] != learner.num_devices:
        raise ValueError(
            f"state is of strategy={state['strategy']!r} with {state['num_devices']} devices, "
            f"this learner has strategy={learner.config.strategy!r} with {learner.num_devices}"
        )
    learner.global_state = {k: v.clone() for k, v in state["global"].items()}
    learner.device_states = copy.deepcopy(state["device_states"])
    learner.opt_states = copy.deepcopy(state["opt_states"])
    for s, st in zip(learner._streams, state["streams"]):
        s.load_state_dict(st)
    for g, st in zip(learner._token_gens, state["token_gens"]):
        g.set_state(st)
    for g, st in zip(learner._dropout_gens, state["dropout_gens"]):
        g.set_state(st)
    if learner.samples is not None:
        if state.get("sample_cache") is not None:
            learner.samples.load_state_dict(state["sample_cache"])
        else:
            learner.samples.reset()
    learner.pending.clear()
    learner.pending_cuts.clear()
    learner.order.clear()
