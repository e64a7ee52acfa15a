"""Accuracy and loss of a learner's model on its fixed evaluation subset of the test set.

With all tokens the logits are the unsplit model's (timm's own forward). When the device part
is frozen and the learner caches its activations, the device part of each (fixed) evaluation
batch is computed once per run and only the server part runs per evaluation: the split
forward runs the same operations on the same batch as the unsplit one, so the logits are the
same bits.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from learning.split_step import device_select

if TYPE_CHECKING:  # pragma: no cover
    from learning.federated import Learner, State


def _logits(learner: "Learner", index: np.ndarray) -> torch.Tensor:
    """Logits ``[B, classes]`` of the test samples ``index`` under the current weights."""
    model, k = learner.model, learner.config.eval_tokens
    whole = k is None or k >= learner.num_patches or not learner.strategy.split
    cache = learner.activations
    if cache is not None and cache.usable():
        images = lambda: learner.test_set.batch(index)[0].to(learner.device)  # noqa: E731
        out = cache.forward(learner.test_set, index, images, need_attention=not whole)
        if whole:
            return model.server_forward(out[0])
        sel, _ = device_select(model, None, k, learner.config.token_options, torch.Generator().manual_seed(0),
                               device_out=out)
        return model.server_forward(sel.tokens)
    x = learner.test_set.batch(index)[0].to(learner.device)
    if whole:
        return model(x)
    sel, _ = device_select(model, x, k, learner.config.token_options, torch.Generator().manual_seed(0))
    return model.server_forward(sel.tokens)


@torch.no_grad()
def evaluate_state(learner: "Learner", state: "State") -> tuple[float, float]:
    """``(accuracy in [0, 1], mean cross-entropy in nats)`` of ``state`` on the evaluation subset.

    Args:
        learner: its model, test set, evaluation subset (``_eval_index``, in batches of
            ``eval_batch_size``) and token budget (``eval_tokens``).
        state: trainable weights loaded into the model first.
    """
    learner.model.load_trainable_state(state)
    learner.model.eval()
    correct, loss_sum = 0, 0.0
    index, step = learner._eval_index, learner.config.eval_batch_size
    for i in range(0, len(index), step):
        chunk = index[i : i + step]
        y = learner.test_set.batch(chunk)[1].to(learner.device)
        logits = _logits(learner, chunk)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(dim=1) == y).sum())
    return correct / len(index), loss_sum / len(index)
