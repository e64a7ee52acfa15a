"""How the devices' local results become the model: four learner strategies.

A strategy says what runs where and what is kept between rounds; the
:class:`~learning.federated.Learner` holds the state (global adapters, per-device copies,
optimiser states, the round's pending results) and asks its strategy at the few points where
the strategies differ. A strategy holds no state of its own.

``split-federated``
    SplitFed V1 (Thapa et al., "SplitFed: When Federated Learning Meets Split Learning",
    AAAI 2022): the model is cut; within a round every device starts from the global adapters
    and the server keeps a separate copy of its adapters (and head) per device; at the end
    device- and server-side copies alike are averaged, weighted by sample counts (FedAvg,
    McMahan et al., AISTATS 2017). Optimisers start afresh every round. With a cut per device
    (``LearnerConfig.per_device_cut``, every block has adapters) each adapter is averaged over
    the devices that trained it this round: block j's over the devices cut at or before j
    (their server copies) and, when devices train their part, also over those cut after j
    (their device copies); an adapter no device trained keeps its value.
``split-sequential``
    Vanilla split learning (Gupta & Raskar, "Distributed learning of deep neural network
    over multiple agents", J. Netw. Comput. Appl. 2018): devices train one after another on
    one shared model, one optimiser kept across devices and rounds, no averaging.
``federated``
    Federated LoRA without a cut: the whole model, with LoRA in every block, runs on the
    device; FedAvg of the adapters and head. No activations cross the air.
``local``
    Each device trains the whole model alone, keeping its own adapters and optimiser across
    rounds; evaluation is the mean over devices of each device model's accuracy and loss
    (each device model evaluated once after it changes, the learner keeping the result).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from learning.aggregation import fedavg

if TYPE_CHECKING:  # pragma: no cover
    from learning.federated import Learner, State


class Strategy:
    """What differs between learner strategies (the whole contract with the Learner).

    Attributes:
        name: the strategy's name in ``LearnerConfig.strategy``.
        split: the model is cut and activations cross the air every step.
        shares: what a device exchanges per round for aggregation: ``"device"`` (the device
            part's trainable weights), ``"all"`` (every trainable weight) or ``"none"``.
        keeps_optimizer: optimiser states survive the round.
        communicates: the device uses the radio at all.
    """

    name: ClassVar[str]
    split: ClassVar[bool]
    shares: ClassVar[str]
    keeps_optimizer: ClassVar[bool] = False
    communicates: ClassVar[bool] = True

    def start(self, learner: "Learner", device: int) -> tuple["State", dict | None]:
        """Adapters and optimiser state ``device`` starts its round from."""
        return learner.global_state, None

    def aggregate(self, learner: "Learner", devices: Sequence[int]) -> None:
        """Fold the pending results of ``devices`` (non-empty) into the learner's state."""
        learner.global_state = fedavg([learner.pending[d][0] for d in devices],
                                      [len(learner.partitions[d]) for d in devices])

    def model_of(self, learner: "Learner", device: int) -> "State":
        """The adapters ``device`` holds between rounds."""
        return learner.global_state

    def evaluate(self, learner: "Learner") -> tuple[float, float]:
        """Accuracy and loss reported for the learner's model(s)."""
        return learner.evaluate_state(learner.global_state)

    def uploads_adapters(self, device_trainable: bool) -> bool:
        """Whether adapters travel to the server and back at the end of a round."""
        return False


def block_of(name: str) -> int | None:
    """The transformer block a parameter belongs to (``vit.blocks.<j>.``), else ``None``."""
    parts = name.split(".")
    return int(parts[2]) if name.startswith("vit.blocks.") else None


def average_over_holders(states: Sequence["State"], weights: Sequence[float], cuts: Sequence[int],
                         device_trains: Sequence[bool], fallback: "State") -> "State":
    """FedAvg of each parameter over the devices that trained it.

    Args:
        states: ``M`` devices' parameter dicts after their round.
        weights: ``M`` FedAvg weights (sample counts).
        cuts: ``M`` cuts: device ``m`` ran blocks ``< cuts[m]``, its server copy the rest.
        device_trains: ``M`` whether device ``m`` trained its own blocks.
        fallback: the value of a parameter no device trained (the global one).

    Returns:
        Per parameter, the sample-weighted mean over the devices holding it trainable:
        non-block parameters (the head) over all; block ``j`` over ``cuts[m] <= j`` or
        ``device_trains[m]``.
    """
    out: dict = {}
    for key in fallback:
        j = block_of(key)
        held = [m for m in range(len(states)) if j is None or j >= cuts[m] or device_trains[m]]
        out[key] = (fedavg([{key: states[m][key]} for m in held], [weights[m] for m in held])[key]
                    if held else fallback[key].clone())
    return out


class SplitFederated(Strategy):
    name = "split-federated"
    split = True
    shares = "device"

    def aggregate(self, learner, devices):
        if not learner.config.per_device_cut:
            return super().aggregate(learner, devices)
        cuts = [learner.pending_cuts[d] for d in devices]
        learner.global_state = average_over_holders(
            [learner.pending[d][0] for d in devices], [len(learner.partitions[d]) for d in devices], cuts,
            [learner.model.trains_device_part(c) for c in cuts], learner.global_state)

    def uploads_adapters(self, device_trainable: bool) -> bool:
        return device_trainable


class SplitSequential(Strategy):
    name = "split-sequential"
    split = True
    shares = "device"
    keeps_optimizer = True

    def start(self, learner, device):
        if learner.order:  # continue from the previous device of this round
            return learner.pending[learner.order[-1]]
        return learner.global_state, learner.opt_states.get("shared")

    def aggregate(self, learner, devices):
        # The shared model as the last of ``devices`` (in training order) left it: an
        # approximation when an earlier device is dropped, since later ones built on it.
        last = max(devices, key=learner.order.index)
        learner.global_state, learner.opt_states["shared"] = learner.pending[last]


class Federated(Strategy):
    name = "federated"
    split = False
    shares = "all"

    def uploads_adapters(self, device_trainable: bool) -> bool:
        return True


class Local(Strategy):
    name = "local"
    split = False
    shares = "none"
    keeps_optimizer = True
    communicates = False

    def start(self, learner, device):
        return learner.device_states.get(device, learner.global_state), learner.opt_states.get(device)

    def aggregate(self, learner, devices):
        for d in devices:
            learner.device_states[d], learner.opt_states[d] = learner.pending[d]
            learner.device_results.pop(d, None)  # its model changed

    def model_of(self, learner, device):
        return learner.device_states.get(device, learner.global_state)

    def evaluate(self, learner):
        # Each distinct model is evaluated once and its result kept: a device's model changes
        # only when it trains, and the devices that never trained hold the global model, which
        # this strategy never changes (kept under ``None``). The numbers are those of
        # evaluating every device model every time.
        memo = learner.device_results

        def result(d: int) -> tuple[float, float]:
            key = d if d in learner.device_states else None
            if key not in memo:
                memo[key] = learner.evaluate_state(self.model_of(learner, d))
            return memo[key]

        results = [result(d) for d in range(learner.num_devices)]
        return float(np.mean([r[0] for r in results])), float(np.mean([r[1] for r in results]))


STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (SplitFederated, SplitSequential, Federated, Local)}


def strategy(name: str) -> Strategy:
    """The strategy called ``name``; ValueError listing the names otherwise."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise ValueError(f"strategy must be one of {tuple(STRATEGIES)}, got {name!r}") from None
