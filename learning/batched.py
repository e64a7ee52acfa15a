"""A round's devices trained together: SplitFed V1's server parts as one batched computation.

In SplitFed V1 (:mod:`learning.strategies`, ``split-federated``) every device of a round starts
from the global adapters and the server keeps a separate copy of its adapters and head per
device until the average, so the round's ``M`` server parts are independent problems of the
same shape. This module runs them in lock-step: the trainable weights are stacked into
``[M, ...]`` tensors, the server part is evaluated for all devices at once by
``torch.func.vmap`` over ``torch.func.functional_call`` of the model's own timm blocks (the
frozen base weights are shared, so each linear layer is one large product and each LoRA
adapter a batched one), and one backward of the sum of the devices' losses gives each slice
exactly its own device's gradient. The optimiser is the per-device one over the stacked
tensors (SGD and AdamW are element-wise, so each slice is updated as its device alone would).

What each device does is unchanged and stays per device: its data stream, its device part
(frozen: from the activation cache), its token selection with its own generator and budget,
its uplink quantisation, its payload bits. Devices differ in token count (budget) and batch
size (a device with fewer samples than ``batch_size``): tokens are zero-padded to the round's
largest count and padded keys get ``-inf`` attention logits, padded samples weigh zero in
their device's mean loss, so neither enters any device's result. Every device of a round runs
``local_steps`` steps (the learner has one step count), so no step mask is needed.

Agreement with the per-device loop: the same operations on the same values, but batched
products and padded softmax rows sum in another order, so results agree to float32 rounding
(tests/learning/test_batched.py states the tolerance), not bit for bit.

Measured and not kept: packing every device's tokens into one unpadded ``[sum B_m T_m, D]``
matrix (one frozen product per layer for the whole round, ``index_copy`` into padded views
for the attention and the per-device LoRA products) was slower than these groups on 2 CPU
cores: 613 against 451 ms per step for 50 devices x 16 samples x 11 tokens, 3.4 against
2.0 s with token counts drawn from 3-65 (one run, load 2.2; forward and backward agreed with
the groups to 2e-7). On a CPU the scatter and gather cost more than the padding they save.

Applies to ``split-federated`` with one cut for all, a frozen device part, no LoRA dropout
(the loop draws it from a per-device fork of the global generator), timm's [CLS] pooling and
no train-mode randomness in the server blocks; :func:`batch_blocker` names what blocks it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from learning.activation_cache import mode_sensitive
from learning.learner_config import DeviceReport
from learning.optimizer import make_optimizer
from learning.quantize import encode
from learning.split_step import device_select, label_dtype

if TYPE_CHECKING:  # pragma: no cover
    from learning.federated import Learner

BATCHED_STRATEGIES = ("split-federated",)
#: largest ratio of token counts padded together (more: less padding, more groups)
PAD_RATIO = 1.25


def batch_blocker(learner: "Learner") -> str | None:
    """Why a round of ``learner`` cannot run batched (``None``: it can)."""
    c, model = learner.config, learner.model
    if c.strategy not in BATCHED_STRATEGIES:
        return f"strategy {c.strategy!r} is not one of {BATCHED_STRATEGIES}"
    if c.per_device_cut:
        return "per_device_cut (devices cut at different blocks)"
    if model.trains_device_part():
        return "the device part trains (its backward is per device)"
    if learner.model_config.lora_dropout > 0:
        return "lora_dropout > 0 (drawn per device from the global generator)"
    if getattr(model.vit, "global_pool", "token") != "token":
        return f"global_pool {model.vit.global_pool!r} (padded tokens would enter the pooling)"
    server = list(model.vit.blocks[model.cut:]) + [model.vit.norm, model.vit.fc_norm, model.vit.head_drop]
    if any(mode_sensitive(m) for part in server for m in part.modules()):
        return "a server module is random in train mode (dropout, drop path)"
    return None


class _ServerPart(nn.Module):
    """The server part of ``model`` after block ``cut`` with an additive key mask (what
    :meth:`learning.split_vit.SplitViT.server_forward` runs, plus the mask)."""

    def __init__(self, model: nn.Module, cut: int) -> None:
        super().__init__()
        self.model = model
        self.cut = cut

    def forward(self, tokens: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        vit = self.model.vit
        x = tokens
        for blk in vit.blocks[self.cut:]:
            x = blk(x, attn_mask=key_bias)
        return vit.forward_head(vit.norm(x))


def batched_logits(model: nn.Module, cut: int, params: dict[str, torch.Tensor], tokens: torch.Tensor,
                   key_bias: torch.Tensor) -> torch.Tensor:
    """Server logits of ``M`` devices, each with its own trainable weights.

    Args:
        model: the :class:`~learning.split_vit.SplitViT` (its frozen weights are shared).
        cut: blocks on the device.
        params: trainable name -> ``[M, *shape]`` stacked weights.
        tokens: ``float [M, B, T, D]`` received tokens (CLS first), zero-padded.
        key_bias: ``float [M, 1, 1, 1, T]``: 0 for a real token, ``-inf`` for padding.

    Returns:
        ``[M, B, classes]``.
    """
    server = _ServerPart(model, cut)
    named = {f"model.{n}": p for n, p in params.items()}
    try:
        return vmap(lambda p, t, m: functional_call(server, p, (t, m)))(named, tokens, key_bias)
    finally:
        model._qkv_out = None  # the qkv hook kept a vmapped tensor


def token_groups(counts: list[int], max_ratio: float = PAD_RATIO) -> list[list[int]]:
    """Devices grouped by token count so that padding stays small.

    Args:
        counts: tokens each device sends per sample this step.
        max_ratio: largest ``max / min`` token count within a group.

    Returns:
        Groups of positions into ``counts`` (sorted by count), covering each position once.
    """
    order = sorted(range(len(counts)), key=lambda m: counts[m])
    groups: list[list[int]] = []
    for m in order:
        if groups and counts[m] <= max_ratio * counts[groups[-1][0]]:
            groups[-1].append(m)
        else:
            groups.append([m])
    return groups


def _group_losses(model: nn.Module, cut: int, params: dict[str, torch.Tensor], group: list[int],
                  received: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
    """``[len(group)]`` mean cross-entropy of each device of ``group`` on its own received
    tokens and labels, its tokens padded to the group's largest count and masked."""
    G = len(group)
    b_max = max(len(labels[m]) for m in group)
    t_max = max(received[m].shape[1] for m in group)
    dim = received[group[0]].shape[2]
    # [G, B, T, D] zero-padded tokens; [G, B] labels and sample weights; [G, 1, 1, 1, T] key mask
    tokens = received[group[0]].new_zeros(G, b_max, t_max, dim)
    y_all = labels[group[0]].new_zeros(G, b_max)
    weight = tokens.new_zeros(G, b_max)
    key_bias = tokens.new_full((G, 1, 1, 1, t_max), float("-inf"))
    for g, m in enumerate(group):
        r, y = received[m], labels[m]
        tokens[g, : r.shape[0], : r.shape[1]] = r
        y_all[g, : len(y)] = y
        weight[g, : len(y)] = 1.0 / len(y)
        key_bias[g, ..., : r.shape[1]] = 0.0
    index = torch.as_tensor(group, device=tokens.device)
    logits = batched_logits(model, cut, {n: p.index_select(0, index) for n, p in params.items()}, tokens, key_bias)
    # [G, B] per-sample cross-entropy; a device's loss is the mean over its own samples
    ce = F.cross_entropy(logits.flatten(0, 1), y_all.flatten(), reduction="none").view(G, b_max)
    return (ce * weight).sum(dim=1)


def train_batched(learner: "Learner", devices: list[int], budgets: list[int], cuts: list[int],
                  widths: list[int]) -> list[DeviceReport]:
    """One round of ``devices`` in lock-step (see the module docstring); the same contract as
    :meth:`learning.federated.Learner.train_round` after its checks (pending results, order,
    reports)."""
    c, model = learner.config, learner.model
    cut = learner.model.cut
    M = len(devices)
    names = learner.trainable_names
    starts = [learner.strategy.start(learner, d)[0] for d in devices]
    # [M, *shape] per trainable weight, each slice a device's server copy
    params = {n: torch.stack([s[n] for s in starts]).to(learner.device).requires_grad_(True) for n in names}
    opt = make_optimizer(params.values(), c)
    sizes = [learner.batch_size_of(d) for d in devices]
    options = [learner.token_options(w) for w in widths]
    need_attention = c.token_policy != "all"
    losses = np.zeros((M, c.local_steps))
    up_bits = np.zeros((M, c.local_steps))
    model.train()
    for step in range(c.local_steps):
        received, labels = [], []
        with torch.no_grad():
            for m, d in enumerate(devices):
                index = learner.next_batch(d, sizes[m])
                y = learner.train_set.batch(index)[1].to(learner.device)
                pre = learner.device_activations(index, need_attention)
                sel, _ = device_select(model, None, budgets[m], options[m], learner.token_generator(d),
                                       device_out=pre)
                up = encode(sel.tokens, options[m].uplink_bits_per_value)
                up_labels = encode(y.to(label_dtype(model.config.num_classes)), None)
                received.append(up.dequantize().to(sel.tokens.dtype))
                labels.append(y)
                up_bits[m, step] = up.bits + up_labels.bits
        opt.zero_grad(set_to_none=True)
        per_device = torch.zeros(M, device=learner.device)
        for group in token_groups([r.shape[1] for r in received]):
            per_device = per_device.index_add(0, torch.as_tensor(group, device=learner.device),
                                              _group_losses(model, cut, params, group, received, labels))
        per_device.sum().backward()
        opt.step()
        losses[:, step] = per_device.detach().cpu().numpy()
    model.train(False)
    reports = []
    for m, d in enumerate(devices):
        learner.hold(d, {n: p[m].detach().clone() for n, p in params.items()}, None, cut)
        cost = replace(learner.step_cost(budgets[m], sizes[m], cuts[m], widths[m]),
                       uplink_bits=float(np.mean(up_bits[m])), downlink_bits=0.0)
        reports.append(DeviceReport(d, len(learner.partitions[d]), c.local_steps, float(np.mean(losses[m])),
                                    budgets[m], cost, cuts[m], widths[m]))
    return reports

