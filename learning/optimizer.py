"""The local optimiser of a device's round, built from the learner's settings.

Both the per-device loop and the batched round (:mod:`learning.batched`) build it here: the
batched round hands it tensors stacked over devices, which is the same optimiser per device
because SGD (momentum, L2 decay) and AdamW update every entry on its own.
"""
from __future__ import annotations

from typing import Iterable

import torch

from learning.learner_config import LearnerConfig


def make_optimizer(params: Iterable[torch.Tensor], config: LearnerConfig) -> torch.optim.Optimizer:
    """``config.optimizer`` (``adamw`` or ``sgd``) over ``params`` with the configured rate and decay."""
    group = list(params)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(group, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(group, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
