"""A small convolutional stem in place of the ViT's linear patch embedding.

A stack of stride-2 3x3 convolutions, each followed by a normalisation and a non-linearity,
then a 1x1 convolution to the token width, reduces the image to the same token grid the
linear patch embedding makes (``img_size / patch_size`` per side, so ``patch_size`` must be a
power of two). It plugs into timm's ``VisionTransformer`` as its ``embed_layer``: same
constructor arguments, same ``num_patches`` / ``grid_size`` / ``feat_ratio()`` attributes, and
the same output ``[B, N, D]`` (row-major over the grid), so everything downstream -- position
embeddings, token selection by grid index, the cut -- is unchanged.

GroupNorm is used where the paper uses BatchNorm: it keeps no running statistics, so a frozen
device part stays frozen in train mode and its activations do not depend on the batch. Its
statistics are pooled over the whole image, so a token also depends (weakly) on pixels outside
its 7x7 receptive field.

Source:
    Xiao et al., "Early Convolutions Help Transformers See Better", NeurIPS 2021 (the
    ``ViT_C`` stem: stride-2 3x3 convolutions, then a 1x1 convolution to the width).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class ConvStem(nn.Module):
    """Stride-2 3x3 convolutions to the ``img_size / patch_size`` token grid, then 1x1 to ``embed_dim``.

    Args:
        img_size: input side, pixels (an int or a pair of equal ints).
        patch_size: total stride, a power of two >= 2 (one 3x3 convolution per factor 2).
        in_chans: input channels.
        embed_dim: token width D.
        bias: bias of the final 1x1 convolution (timm passes ``not pre_norm``).
        **kwargs: other timm ``PatchEmbed`` arguments; only the defaults are supported.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 32,
        patch_size: int | tuple[int, int] = 4,
        in_chans: int = 3,
        embed_dim: int = 128,
        bias: bool = True,
        **kwargs,
    ) -> None:
        super().__init__()
        img = _side(img_size, "img_size")
        patch = _side(patch_size, "patch_size")
        if patch < 2 or patch & (patch - 1):
            raise ValueError(f"patch_size must be a power of two >= 2 for the conv stem, got {patch_size!r}")
        if img % patch:
            raise ValueError(f"patch_size must divide img_size={img}, got {patch_size!r}")
        unsupported = {k: v for k, v in kwargs.items() if k not in ("device", "dtype") and v not in (None, False)}
        if unsupported:
            raise ValueError(f"conv stem supports timm's default PatchEmbed options only, got {unsupported!r}")
        stages = int(math.log2(patch))
        self.img_size = (img, img)
        self.patch_size = (patch, patch)
        self.grid_size = (img // patch, img // patch)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.flatten = True
        self.output_fmt = "NLC"
        self.dynamic_img_pad = False
        layers: list[nn.Module] = []
        ch = in_chans
        for i in range(stages):
            # D/4, D/2, ... then D at the last stride: narrow early layers keep the stem cheap on
            # CPU (at D=128 it costs ~34 ms per 128-image training step against ~54 ms for D/2, D)
            out = embed_dim if i == stages - 1 else max(8, (embed_dim // 4) << i)
            layers += [
                nn.Conv2d(ch, out, kernel_size=3, stride=2, padding=1, bias=False),
                nn.GroupNorm(_groups(out), out),
                nn.GELU(),
            ]
            ch = out
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Conv2d(ch, embed_dim, kernel_size=1, bias=bias)

    def feat_ratio(self, as_scalar: bool = True) -> int | tuple[int, int]:
        """Total stride (pixels per token side), as timm's ``PatchEmbed.feat_ratio``."""
        return self.patch_size[0] if as_scalar else self.patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` -> tokens ``[B, N, D]``, row-major over the grid."""
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"images must be {self.img_size[0]}x{self.img_size[1]}, got {tuple(x.shape[-2:])}")
        # [B, D, H/p, W/p] -> [B, N, D]
        return self.proj(self.convs(x)).flatten(2).transpose(1, 2)


def _side(value: int | tuple[int, int], name: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"{name} must be square, got {value!r}")
        value = value[0]
    return int(value)


def _groups(channels: int) -> int:
    """Groups of the GroupNorm: 8 channels a group where possible."""
    return max(1, channels // 8) if channels % 8 == 0 else 1
