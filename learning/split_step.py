"""One training step, split at the cut or whole, with the payloads that cross the cut.

Split step (ST-SFLora / SFL): device forward -> token selection -> uplink payload (tokens and
labels) -> server forward, loss, backward -> downlink payload (the gradient of the sent
tokens) -> device backward. The server input is a fresh leaf built from what the server
*receives* (the dequantised payload), so a quantised uplink has a straight-through gradient
and the device gets exactly the (possibly quantised) gradient that was sent back.

When the device part is frozen it needs no gradient: nothing goes down and the device runs
forward only (``downlink_bits == 0``).

Each phase runs inside ``meter(phase)`` so that :mod:`learning.costs` can count the FLOPs of
the very code that trains; in training the meter is a no-op.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch
import torch.nn.functional as F

from learning.quantize import encode
from learning.split_vit import SplitViT
from learning.tokens import patch_importance, select_tokens

Meter = Callable[[str], ContextManager]
PHASES = ("device_forward", "device_backward", "server")


def _no_meter(phase: str) -> ContextManager:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class TokenOptions:
    """How the device picks and sends tokens (see :mod:`learning.tokens`, :mod:`learning.quantize`).

    Attributes:
        policy: ``semantic``, ``random``, ``norm`` or ``all``.
        ranking: ``batch`` or ``sample``.
        fuse: append the fused token of the dropped ones.
        uplink_bits_per_value: quantisation width of the activations, bits per value,
            ``None`` for float32.
        downlink_bits_per_value: quantisation width of the returned gradients, bits per
            value, ``None`` for float32.
    """

    policy: str = "semantic"
    ranking: str = "batch"
    fuse: bool = True
    uplink_bits_per_value: int | None = None
    downlink_bits_per_value: int | None = None


@dataclass(frozen=True)
class StepOutcome:
    """What one step did.

    Attributes:
        loss: mean cross-entropy of the batch.
        uplink_bits: bits of the activation payload plus the labels (0 for whole-model steps).
        downlink_bits: bits of the gradient payload (0 when the device part is frozen).
        kept: ``int64 [B, K]`` patch indices sent (all patches for whole-model steps).
    """

    loss: float
    uplink_bits: int
    downlink_bits: int
    kept: torch.Tensor


def label_dtype(num_classes: int) -> torch.dtype:
    """Smallest integer dtype that carries a class index (labels travel with the activations)."""
    return torch.uint8 if num_classes <= 256 else torch.int16 if num_classes <= 32768 else torch.int32


def device_select(
    model: SplitViT, images: torch.Tensor, k: int, options: TokenOptions, generator: torch.Generator | None,
    cut: int | None = None, device_out: tuple[torch.Tensor, torch.Tensor | None] | None = None,
):
    """Device forward (to ``cut``, default the configured one) and token selection; returns
    ``(selection, importance [B, N] or None)``. ``device_out``: the device part's output for
    ``images`` computed before (a frozen part's cached ``(tokens, cls_attn)``), used as is."""
    # the attention row is computed even at the full budget, so that the device's cost does
    # not depend on K (a cost model fitted over K stays monotone); it is ~0.1 % of the forward
    if device_out is None:
        device_out = model.device_forward(images, need_attention=options.policy != "all", cut=cut)
    tokens, cls_attn = device_out
    if options.policy == "all":
        cls_attn = None
    importance = patch_importance(cls_attn, model.num_prefix_tokens) if cls_attn is not None else None
    sel = select_tokens(
        tokens, importance, k, options.policy, options.ranking, options.fuse, generator, model.num_prefix_tokens
    )
    return sel, importance


def split_step(
    model: SplitViT,
    images: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    options: TokenOptions,
    generator: torch.Generator | None = None,
    meter: Meter = _no_meter,
    cut: int | None = None,
    device_out: tuple[torch.Tensor, torch.Tensor | None] | None = None,
) -> StepOutcome:
    """Forward and backward of one split step; gradients accumulate in the parameters' ``.grad``.

    Args:
        model: the split model (train or eval mode as the caller set it).
        images: ``float [B, 3, H, W]``.
        labels: ``int64 [B]``.
        k: patch tokens to send, in ``[1, N]``.
        options: selection and quantisation.
        generator: draws of the ``random`` policy.
        meter: context manager per phase (``device_forward``, ``server``, ``device_backward``).
        cut: blocks on the device (default: the configured cut); a device that does not train
            its part (:meth:`SplitViT.trains_device_part`) runs it without gradient, so its
            adapters (if any) stay as they were.
        device_out: the frozen device part's ``(tokens, cls_attn)`` for ``images``, computed
            before (:class:`learning.activation_cache.ActivationCache`); ignored when the
            device part trains.

    Returns:
        The :class:`StepOutcome`.
    """
    trainable = model.trains_device_part(cut)
    with meter("device_forward"), torch.set_grad_enabled(trainable):
        sel, _ = device_select(model, images, k, options, generator, cut, None if trainable else device_out)
        up = encode(sel.tokens, options.uplink_bits_per_value)
        up_labels = encode(labels.to(label_dtype(model.config.num_classes)), None)
    with meter("server"):
        # the cut: the server's leaf is what it decoded, so its gradient is straight-through
        received = up.dequantize().to(sel.tokens.dtype).detach().requires_grad_(trainable)
        loss = F.cross_entropy(model.server_forward(received, cut), labels)
        loss.backward()
    down_bits = 0
    if trainable:
        with meter("device_backward"):
            down = encode(received.grad, options.downlink_bits_per_value)
            sel.tokens.backward(down.dequantize().to(sel.tokens.dtype))
            down_bits = down.bits
    return StepOutcome(float(loss.detach()), up.bits + up_labels.bits, down_bits, sel.kept)


def whole_step(
    model: SplitViT, images: torch.Tensor, labels: torch.Tensor, meter: Meter = _no_meter
) -> StepOutcome:
    """Forward and backward of the unsplit model (whole-model strategies, the reference).

    All of it runs on the device: the forward is metered as ``device_forward`` and the
    backward as ``device_backward``; nothing crosses a cut.
    """
    with meter("device_forward"):
        loss = F.cross_entropy(model(images), labels)
    with meter("device_backward"):
        loss.backward()
    b = images.shape[0]
    kept = torch.arange(model.config.num_patches).expand(b, -1)
    return StepOutcome(float(loss.detach()), 0, 0, kept)
