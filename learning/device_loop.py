"""The per-device loop: a round's devices trained one after the other on the learner's model.

Every strategy runs here (``learner.batched=false``, or where :mod:`learning.batched` does not
apply): each device loads the adapters its strategy starts it from, runs ``local_steps`` split
(or whole-model) steps with its own optimiser, and leaves its result with the learner.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from learning.learner_config import DeviceReport
from learning.optimizer import make_optimizer
from learning.split_step import split_step, whole_step

if TYPE_CHECKING:  # pragma: no cover
    from learning.federated import Learner


@contextlib.contextmanager
def dropout_rng(learner: "Learner", device: int) -> Iterator[None]:
    # peft's LoRA dropout draws from torch's global generator: fork it, seeded from the
    # device's own stream (results depend on the seed only; the caller's state is kept)
    if learner.model_config.lora_dropout == 0:
        yield
        return
    seed = int(torch.randint(2**62, (1,), generator=learner._dropout_gens[device]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def train_one_by_one(learner: "Learner", devices: list[int], budgets: list[int], cut_of: list[int],
                     width_of: list[int]) -> list[DeviceReport]:
    """One round of ``devices`` in the order given; the contract of
    :meth:`learning.federated.Learner.train_round` after its checks."""
    c = learner.config
    split = learner.strategy.split
    learner.model.train()
    reports = []
    for d, k, cut, width in zip(devices, budgets, cut_of, width_of):
        options = learner.token_options(width)
        state, opt_state = learner.strategy.start(learner, d)
        learner.model.load_trainable_state(state)
        opt = make_optimizer(learner.trainable_params(), c)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        b = learner.batch_size_of(d)
        losses, up, down = [], [], []
        cached = split and learner.activations is not None and learner.activations.usable(cut)
        for _ in range(c.local_steps):
            index = learner.next_batch(d, b)
            x, y = learner.train_set.batch(index)
            x, y = x.to(learner.device), y.to(learner.device)
            pre = learner.device_activations(index, options.policy != "all") if cached else None
            opt.zero_grad(set_to_none=True)
            with dropout_rng(learner, d):
                if learner.strategy.split:
                    out = split_step(learner.model, x, y, k, options, learner.token_generator(d), cut=cut, device_out=pre)
                else:
                    out = whole_step(learner.model, x, y)
            opt.step()
            losses.append(out.loss)
            up.append(out.uplink_bits)
            down.append(out.downlink_bits)
        keep_opt = learner.strategy.keeps_optimizer
        learner.hold(d, learner.model.trainable_state(), copy.deepcopy(opt.state_dict()) if keep_opt else None, cut)
        cost = replace(learner.step_cost(k, b, cut if split else None, width), uplink_bits=float(np.mean(up)),
                       downlink_bits=float(np.mean(down)))
        reports.append(DeviceReport(d, len(learner.partitions[d]), c.local_steps, float(np.mean(losses)), k, cost,
                                    cut, width))
    learner.model.train(False)
    return reports
