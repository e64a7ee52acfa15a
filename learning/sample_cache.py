"""A frozen device part computed once per training sample, not once per batch.

With a frozen device part (no device LoRA, one cut) a sample's activations at the cut and its
[CLS] attention row depend only on the sample. A device's batches are fresh draws of its data
each step, so the batch cache (:mod:`learning.activation_cache`) rarely sees a batch twice; this
cache keeps each sample's row instead, so over a run of ``R`` rounds in which a device trains
``R_d`` times with ``S`` steps of ``B`` from ``n`` samples, the device part runs about
``min(n, R_d S B)`` sample forwards instead of ``R_d S B`` (3.2x fewer at the paper's 100
rounds, half participation, 2 x 16 of 500 samples).

Results are reproducible, including across a resume: samples missing from the cache are
forwarded together as one batch (a *group*), and the record of groups (their sample indices,
in order) is part of the learner's checkpoint; after a resume a recorded group is forwarded
again with exactly its first composition when one of its samples is needed, so every stored
row has the same bits as in an uninterrupted run. (CPU kernels are not batch-invariant: a row
computed inside another batch could differ in its last bits; results agree with the batch
cache and the per-device loop to float32 rounding, not bit for bit, which is why it serves the
batched round only, :mod:`learning.batched`.)

Memory: ``(1 + N) x D + heads x (1 + N)`` float32 values per sample (34.3 KB for the default
backbone: N = 64, D = 128, 4 heads), at most ``max_bytes``; a group that would exceed it is
used and not kept (its samples are forwarded again when next drawn). Everything recorded is
counted against the bound whether or not it is in memory, so what is kept does not depend on
when the run was resumed.
"""
from __future__ import annotations

import numpy as np
import torch

from learning.split_vit import SplitViT

Activations = tuple[torch.Tensor, torch.Tensor]


class SampleCache:
    """Device-part outputs of single training samples of one data set, at one cut.

    Args:
        model: the split model; its device part at ``cut`` must be frozen.
        cut: blocks on the device.
        dataset: the training set whose sample indices key the cache.
        max_bytes: bound on the bytes of the recorded rows.

    Attributes:
        forwarded: samples run through the device part (groups, re-forwards and overflow).
        served: samples handed out.
    """

    def __init__(self, model: SplitViT, cut: int, dataset, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes!r}")
        self.model = model
        self.cut = int(cut)
        self.dataset = dataset
        self.max_bytes = int(max_bytes)
        n_tokens = model.num_prefix_tokens + model.config.num_patches
        self.bytes_per_sample = 4 * n_tokens * (model.embed_dim + model.num_heads)
        self._device_tensors = [p for n, p in model.named_parameters() if model.is_device_param(n, self.cut)]
        self._weights = self._weights_key()
        self.forwarded = 0
        self.served = 0
        self.reset()

    def _weights_key(self) -> tuple:
        return tuple((id(t), t._version) for t in self._device_tensors)

    def reset(self) -> None:
        """Forget every recorded group."""
        self._groups: list[np.ndarray] = []
        self._group_of = np.full(len(self.dataset), -1, dtype=np.int64)
        self._row_of = np.zeros(len(self.dataset), dtype=np.int64)
        self._rows: dict[int, Activations] = {}

    @property
    def recorded_bytes(self) -> int:
        """Bytes of every recorded row (in memory now or to be recomputed on demand)."""
        return self.bytes_per_sample * sum(len(g) for g in self._groups)

    def _forward(self, index: np.ndarray) -> Activations:
        images = self.dataset.batch(index)[0].to(next(self.model.parameters()).device)
        self.forwarded += len(index)
        with torch.no_grad():
            tokens, attn = self.model.device_forward(images, need_attention=True, cut=self.cut)
        return tokens, attn

    def forward(self, index) -> Activations:
        """``(tokens [B, 1 + N, D], cls_attn [B, heads, 1 + N])`` of samples ``index``.

        Args:
            index: ``int [B]`` sample indices into the data set, in batch order.

        Returns:
            New tensors (the caller may keep them), as the device part computes them.
        """
        if self._weights_key() != self._weights:  # the device weights changed: start over
            self._weights = self._weights_key()
            self.reset()
        index = np.asarray(index, dtype=np.int64)
        missing = list(dict.fromkeys(int(i) for i in index if self._group_of[i] < 0))
        spill: dict[int, tuple[Activations, int]] = {}
        if missing:
            group = np.asarray(missing, dtype=np.int64)
            value = self._forward(group)
            if self.recorded_bytes + self.bytes_per_sample * len(group) <= self.max_bytes:
                gid = len(self._groups)
                self._groups.append(group)
                self._group_of[group] = gid
                self._row_of[group] = np.arange(len(group))
                self._rows[gid] = value
            else:
                spill = {i: (value, r) for r, i in enumerate(missing)}
        for gid in {int(self._group_of[i]) for i in index if self._group_of[i] >= 0} - set(self._rows):
            self._rows[gid] = self._forward(self._groups[gid])  # recorded before a resume
        parts = [spill[int(i)] if int(i) in spill else (self._rows[int(self._group_of[i])], int(self._row_of[i]))
                 for i in index]
        self.served += len(index)
        tokens = torch.stack([v[0][r] for v, r in parts])
        attn = torch.stack([v[1][r] for v, r in parts])
        return tokens, attn

    def state_dict(self) -> dict:
        """The record of groups (sample indices), enough to recompute every row bit for bit."""
        return {"groups": [g.copy() for g in self._groups]}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; rows are recomputed when first needed."""
        self.reset()
        for gid, group in enumerate(state["groups"]):
            group = np.asarray(group, dtype=np.int64)
            self._groups.append(group)
            self._group_of[group] = gid
            self._row_of[group] = np.arange(len(group))
