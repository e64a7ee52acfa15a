"""Retention curves of the batches a device is about to train on (the round's own data).

:meth:`learning.federated.Learner.retention` scores a fixed probe batch per device; a planner
that chooses this round's token budgets can instead score the very batches the round will
send: the ``local_steps`` batches the device's data stream gives next. This reads them without
consuming them (the stream's state is saved and restored), so training is unchanged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from learning.tokens import patch_importance, retention_curve

if TYPE_CHECKING:  # pragma: no cover
    from learning.federated import Learner


@torch.no_grad()
def round_retention(learner: "Learner", devices: Sequence[int]) -> np.ndarray:
    """Semantic retention f(K), K = 0..num_patches, of each device's next round of batches.

    One curve per batch (:func:`learning.tokens.retention_curve` under the learner's token
    policy and ranking: the [CLS] attention mass the kept tokens carry), averaged over the
    round's ``local_steps`` batches, with the current (global, or the device's own) model.

    Args:
        learner: the learner (its streams are read and restored, nothing else changes).
        devices: device indices.

    Returns:
        ``float64 [len(devices), num_patches + 1]``: ``f[:, 0] = 0``, non-decreasing,
        ``f[:, -1] = 1``.
    """
    devices = [int(d) for d in devices]
    if learner.model_config.cut == 0:
        return learner.retention(devices)
    cfg, model = learner.config, learner.model
    out = np.empty((len(devices), learner.num_patches + 1))
    model.eval()
    for i, d in enumerate(devices):
        model.load_trainable_state(learner.strategy.model_of(learner, d))
        stream = learner._streams[d]
        saved = stream.state_dict()
        curves = []
        for _ in range(cfg.local_steps):
            # the very batch training sends next: a frozen device part's output is cached for it
            tokens, cls_attn = learner.device_activations(stream.next(learner.batch_size_of(d)))
            imp = patch_importance(cls_attn, model.num_prefix_tokens)
            curves.append(retention_curve(imp, cfg.token_policy, cfg.ranking, tokens))
        stream.load_state_dict(saved)
        out[i] = np.mean(curves, axis=0)
    return out
