"""Compute and communication cost of one local step, measured on the real code path.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` around each phase of
:func:`learning.split_step.split_step` (or :func:`~learning.split_step.whole_step`) run on a
zero batch of the actual shape. The counter counts matrix products and convolutions
(``2 * M * N * K`` per product, the convention of PyTorch's counter and of most FLOP tables);
element-wise work (softmax, LayerNorm, GELU) is not counted, a few percent for a ViT.
Bits come from the payload tensors that step built (:class:`learning.quantize.Payload`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

from learning.split_step import PHASES, TokenOptions, split_step, whole_step
from learning.split_vit import SplitViT


@dataclass(frozen=True)
class StepCost:
    """Cost of one local step of one device (batch of ``batch_size`` samples).

    Attributes:
        device_forward_flops: device forward, token selection included, FLOPs.
        device_backward_flops: device backward (0 when the device part is frozen), FLOPs.
        server_flops: server forward + backward, FLOPs (0 for whole-model steps).
        uplink_bits: activations (+ quantiser side information) and labels sent, bits.
        downlink_bits: gradient of the sent activations returned, bits.
        adapter_bits: per round, the adapters a device uploads (and downloads) for
            aggregation, bits (0 when the device holds no trainable weights or never shares).
    """

    device_forward_flops: float
    device_backward_flops: float
    server_flops: float
    uplink_bits: float
    downlink_bits: float
    adapter_bits: float

    @property
    def device_flops(self) -> float:
        """Device forward + backward, FLOPs."""
        return self.device_forward_flops + self.device_backward_flops


class _PhaseMeter:
    """Counts FLOPs per phase; used as ``meter`` by the step functions."""

    def __init__(self) -> None:
        self.flops = {p: 0.0 for p in PHASES}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        with FlopCounterMode(display=False) as counter:
            yield
        self.flops[phase] += float(counter.get_total_flops())


def adapter_bits(model: SplitViT, shared: str, cut: int | None = None) -> int:
    """Bits of the trainable weights a device exchanges per round.

    Args:
        model: the model.
        shared: ``"device"`` (the device part's trainable weights, split strategies),
            ``"all"`` (every trainable weight, federated whole-model strategy) or ``"none"``.
        cut: the device's cut (default: the configured one); a device that does not train
            its part (:meth:`SplitViT.trains_device_part`) exchanges nothing.
    """
    if shared == "device" and not model.trains_device_part(cut):
        return 0
    total = 0
    for name, p in model.named_parameters():
        if p.requires_grad and (shared == "all" or (shared == "device" and model.is_device_param(name, cut))):
            total += p.numel() * p.element_size() * 8
    return total


def measure_step_cost(
    model: SplitViT,
    batch_size: int,
    k: int,
    options: TokenOptions,
    split: bool,
    shared: str,
    cut: int | None = None,
) -> StepCost:
    """Run one step on a zero batch under the FLOP counter and read its payload bits.

    Parameter gradients are reset to ``None`` before and after, and the ``random`` policy
    draws from a throw-away generator, so no training state is touched.

    Args:
        model: the model (its mode, train or eval, is used as is).
        batch_size: samples per step.
        k: patch tokens sent (ignored by whole-model steps).
        options: token selection and quantisation.
        split: split step (``True``) or whole-model step.
        shared: what the device exchanges per round, see :func:`adapter_bits`.
        cut: blocks on the device (default: the configured cut; split steps only).

    Returns:
        The :class:`StepCost`.
    """
    cfg = model.config
    device = next(model.parameters()).device
    images = torch.zeros(batch_size, 3, cfg.img_size, cfg.img_size, device=device)
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    meter = _PhaseMeter()
    model.zero_grad(set_to_none=True)
    if split:
        out = split_step(model, images, labels, k, options, torch.Generator().manual_seed(0), meter, cut)
    else:
        out = whole_step(model, images, labels, meter)
    model.zero_grad(set_to_none=True)
    return StepCost(
        device_forward_flops=meter.flops["device_forward"],
        device_backward_flops=meter.flops["device_backward"],
        server_flops=meter.flops["server"],
        uplink_bits=float(out.uplink_bits),
        downlink_bits=float(out.downlink_bits),
        adapter_bits=float(adapter_bits(model, shared, cut if split else None)),
    )
