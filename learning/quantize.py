"""Per-token uniform min-max quantisation of the tensors crossing the cut, and their bits.

A payload is what actually goes over the air: either the float32 tensor itself, or for
``q``-bit quantisation the integer codes plus, per token (last-dimension vector), its minimum
and step as float32 side information. Bits are counted from those tensors
(``numel x bits``), never from a separate formula.

Gradients pass straight through the quantiser (Bengio, Leonard, Courville, "Estimating or
Propagating Gradients Through Stochastic Neurons", arXiv:1308.3432, 2013).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

SIDE_INFO_DTYPE = torch.float32
#: Bits per value of an unquantised (float32) payload.
FLOAT_BITS = 32


@dataclass(frozen=True)
class Payload:
    """One transmitted tensor.

    Attributes:
        values: the float tensor when unquantised, else the integer codes (same shape).
        bits_per_value: bits of one entry of ``values`` on the air.
        side: side information tensors (per-token minimum and step, float32 ``[..., 1]``).
    """

    values: torch.Tensor
    bits_per_value: int
    side: tuple[torch.Tensor, ...] = ()

    @property
    def bits(self) -> int:
        """Bits on the air: ``values.numel() * bits_per_value`` plus the side information."""
        side = sum(s.numel() * s.element_size() * 8 for s in self.side)
        return self.values.numel() * self.bits_per_value + side

    def dequantize(self) -> torch.Tensor:
        """What the receiver reconstructs (float32)."""
        if not self.side:
            return self.values
        lo, step = self.side
        return self.values.to(lo.dtype) * step + lo


def encode(x: torch.Tensor, bits: int | None) -> Payload:
    """The payload that carries ``x``.

    Args:
        x: ``[..., D]`` float tensor; each ``D``-vector (a token) is quantised on its own range.
        bits: bits per value in ``[1, 16]``, or ``None`` to send ``x`` as it is.

    Returns:
        The :class:`Payload` (no autograd history).
    """
    x = x.detach()
    if bits is None:
        return Payload(x, x.element_size() * 8)
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in [1, 16] or None, got {bits!r}")
    levels = 2**bits - 1
    lo = x.amin(dim=-1, keepdim=True).to(SIDE_INFO_DTYPE)
    hi = x.amax(dim=-1, keepdim=True).to(SIDE_INFO_DTYPE)
    # a constant token gets step 1 so that its codes are all 0 and it decodes exactly
    step = torch.where(hi > lo, (hi - lo) / levels, torch.ones_like(lo))
    codes = ((x - lo) / step).round_().clamp_(0, levels)
    codes = codes.to(torch.uint8 if bits <= 8 else torch.int32)
    return Payload(codes, bits, (lo, step))
