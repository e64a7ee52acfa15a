"""Reuse of a frozen device part's activations: computed once per batch, served again after.

When the device part of the split model holds no trainable parameter (ST-SFLora style: no
device LoRA, one fixed cut), its output for a batch of images depends only on the device-part
weights, the cut and the images. The same batch is then forwarded more than once in a run:
the round's retention curves score the very batches the round then trains on, and every
evaluation forwards the same fixed test batches. This cache keeps the device part's output
(the tokens at the cut and the [CLS] attention row) of each batch and hands it back instead
of forwarding again.

Entries are whole batches, keyed by the exact sample indices in their order: a hit returns
tensors computed from the same batch composition, so results are byte-identical to
forwarding again (CPU kernels are not guaranteed batch-invariant: a sample forwarded alone
can differ in the last bits from the same sample inside a batch). The key also holds

* the identity and in-place version counter (``Tensor._version``) of every device-part
  parameter and buffer: any change of the device weights (``copy_``, ``load_state_dict``,
  an optimiser step) invalidates every entry;
* the cut and the data set object (its images and preprocessing).

The cache is bypassed (callers forward as usual) when the device part trains, when it holds a
module whose output depends on train/eval mode in train mode (dropout, batch norm, stochastic
depth), or for any cut other than the one it was built for. It only saves wall time: the
simulated cost of a step is measured separately and stays the device's real work.

Memory: ``(1 + N) x D`` float32 values per sample (33 KB at N = 64, D = 128), least recently
used batches evicted beyond ``max_bytes``.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np
import torch
from torch import nn

from learning.split_vit import SplitViT

Activations = tuple[torch.Tensor, torch.Tensor | None]


def mode_sensitive(module: nn.Module) -> bool:
    """Whether ``module`` computes differently in train mode (random or batch-dependent)."""
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return True
    drop_prob = getattr(module, "drop_prob", 0.0)  # timm DropPath
    return bool(drop_prob)


class ActivationCache:
    """Device-part outputs of whole batches of one data set, for one model at one cut.

    Args:
        model: the split model; its device part at ``cut`` must be frozen (checked per call).
        cut: the only cut served.
        max_bytes: bound on the bytes held (least recently used batches evicted).

    Attributes:
        hits: batches served from the cache.
        misses: batches forwarded (and stored).
    """

    def __init__(self, model: SplitViT, cut: int, max_bytes: int = 1 << 30) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes!r}")
        self.model = model
        self.cut = int(cut)
        self.max_bytes = int(max_bytes)
        names = [n for n, _ in model.named_parameters() if model.is_device_param(n, self.cut)]
        params = dict(model.named_parameters())
        self._tensors = [params[n] for n in names] + [
            b for n, b in model.named_buffers() if model.is_device_param(n, self.cut)]
        blocks = list(model.vit.blocks[: self.cut])
        stem = [model.vit.patch_embed, model.vit.pos_drop, model.vit.patch_drop, model.vit.norm_pre]
        self._sensitive = any(mode_sensitive(m) for part in stem + blocks for m in part.modules())
        self._entries: OrderedDict[tuple, Activations] = OrderedDict()
        self._bytes = 0
        self._datasets: dict[int, object] = {}
        self.hits = 0
        self.misses = 0

    def _weights_key(self) -> tuple:
        return tuple((id(t), t._version) for t in self._tensors)

    def usable(self, cut: int | None = None) -> bool:
        """Whether a forward at ``cut`` (default the configured one) may be served: the device
        part is frozen, the cut is this cache's, and the mode does not change its output."""
        cut = self.model.cut if cut is None else int(cut)
        if cut != self.cut or cut == 0 or self.model.trains_device_part(cut):
            return False
        if any(t.requires_grad for t in self._tensors):
            return False
        return not (self._sensitive and self.model.training)

    def forward(self, dataset: object, index: np.ndarray, images: Callable[[], torch.Tensor],
                need_attention: bool = True) -> Activations:
        """The device part's ``(tokens [B, 1 + N, D], cls_attn [B, heads, 1 + N] or None)``.

        Args:
            dataset: the data set the indices point into (part of the key).
            index: ``int [B]`` sample indices, in batch order.
            images: builds the ``float [B, 3, H, W]`` batch (called on a miss only).
            need_attention: the [CLS] attention row is wanted.

        Returns:
            As :meth:`learning.split_vit.SplitViT.device_forward` at this cache's cut, the
            stored tensors on a hit (treat them as read-only).

        Raises:
            ValueError: the cache is not :meth:`usable` now.
        """
        if not self.usable():
            raise ValueError(f"the activation cache serves a frozen device part at cut {self.cut} only")
        index = np.asarray(index, dtype=np.int64)
        key = (id(dataset), self._weights_key(), index.tobytes())
        entry = self._entries.get(key)
        if entry is not None and (entry[1] is not None or not need_attention):
            self._entries.move_to_end(key)
            self.hits += 1
            return entry
        self.misses += 1
        with torch.no_grad():
            tokens, attn = self.model.device_forward(images(), need_attention=need_attention, cut=self.cut)
        self._store(key, (tokens, attn), dataset)
        return tokens, attn

    def _store(self, key: tuple, value: Activations, dataset: object) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= _nbytes(old)
        size = _nbytes(value)
        if size > self.max_bytes:
            return
        self._entries[key] = value
        self._bytes += size
        self._datasets.setdefault(id(dataset), dataset)  # a key's id stays this object's
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= _nbytes(evicted)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return self._bytes

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self._bytes = 0


def _nbytes(value: Activations) -> int:
    return sum(t.numel() * t.element_size() for t in value if t is not None)
