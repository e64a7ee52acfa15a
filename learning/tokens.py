"""Which patch tokens a device sends: importance, selection policies, fusion, retention.

The importance of patch ``j`` is the attention the [CLS] query pays to it in the last device
block, averaged over heads. It is recomputed from that block's own ``qkv`` output (after
``q_norm`` / ``k_norm``) because timm's fused scaled-dot-product attention never materialises
the attention matrix; only the [CLS] row is computed, ``O(N)`` instead of ``O(N^2)``.

Policies for a budget of ``K`` patch tokens: ``semantic`` (top-K by importance), ``random``,
``norm`` (top-K by activation L2 norm) and ``all`` (no selection). Tokens not kept can be
fused into one extra token, their importance-weighted mean (EViT). Ranking is either
``batch`` (importances summed over the batch, one set of kept positions for every sample, as
the ST-SFLora paper does) or ``sample`` (each sample its own top-K).

Sources:
    Liang et al., "Not All Patches are What You Need: Expediting Vision Transformers via
    Token Reorganizations" (EViT), ICLR 2022: [CLS] attention as importance, fusion of the
    inattentive tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

TOKEN_POLICIES = ("semantic", "random", "norm", "all")
RANKINGS = ("batch", "sample")


def cls_attention(
    qkv: torch.Tensor,
    num_heads: int,
    head_dim: int,
    scale: float,
    q_norm: Callable[[torch.Tensor], torch.Tensor],
    k_norm: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The [CLS] row of a block's attention, ``softmax(q_cls k^T * scale)``.

    Args:
        qkv: output of the block's ``attn.qkv`` layer, ``[B, N, 3 * heads * head_dim]``,
            laid out as timm's ``Attention`` reshapes it.
        num_heads: attention heads.
        head_dim: width of one head.
        scale: the logit scale, ``head_dim ** -0.5`` in timm.
        q_norm: the block's ``attn.q_norm`` (identity unless qk-norm is on).
        k_norm: the block's ``attn.k_norm``.

    Returns:
        ``[B, heads, N]``, each row summing to one.
    """
    b, n, _ = qkv.shape
    # [3, B, heads, N, head_dim], as timm's Attention.forward
    qkv = qkv.reshape(b, n, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k = q_norm(qkv[0][:, :, :1]), k_norm(qkv[1])
    # [B, heads, 1, N]; q is scaled before the product exactly as timm's non-fused path does
    logits = (q * scale) @ k.transpose(-2, -1)
    return logits.softmax(dim=-1).squeeze(2)


def patch_importance(cls_attn: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """Importance of each patch token: [CLS] attention averaged over heads.

    Args:
        cls_attn: ``[B, heads, prefix + N]`` from :func:`cls_attention`.
        num_prefix_tokens: leading non-patch tokens (CLS, registers) to leave out.

    Returns:
        ``[B, N]``, non-negative.
    """
    return cls_attn[:, :, num_prefix_tokens:].mean(dim=1)


def _scores(
    patches: torch.Tensor,
    importance: torch.Tensor | None,
    policy: str,
    ranking: str,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Ranking scores ``[B or 1, N]`` (higher is kept first)."""
    b, n, _ = patches.shape
    if policy == "semantic":
        if importance is None:
            raise ValueError("policy='semantic' needs the attention of a device block (cut >= 1)")
        s = importance
    elif policy == "norm":
        s = patches.detach().norm(dim=-1)
    elif policy == "random":
        # drawn on the CPU generator, so the draws are the same bits wherever the model runs
        return torch.rand((1 if ranking == "batch" else b, n), generator=generator).to(patches.device)
    else:
        raise ValueError(f"policy must be one of {TOKEN_POLICIES}, got {policy!r}")
    return s.detach().sum(0, keepdim=True) if ranking == "batch" else s.detach()


@dataclass(frozen=True)
class Selection:
    """What a device sends for one batch.

    Attributes:
        tokens: ``[B, prefix + K (+ 1 fused), D]``: CLS, kept patches in grid order, fused token.
        kept: ``int64 [B, K]`` indices of the kept patches in ``[0, N)``, ascending.
        fused: whether the last token of ``tokens`` is the fusion of the dropped ones.
    """

    tokens: torch.Tensor
    kept: torch.Tensor
    fused: bool


def select_tokens(
    tokens: torch.Tensor,
    importance: torch.Tensor | None,
    k: int,
    policy: str = "semantic",
    ranking: str = "batch",
    fuse: bool = True,
    generator: torch.Generator | None = None,
    num_prefix_tokens: int = 1,
) -> Selection:
    """Keep ``k`` patch tokens by ``policy``; optionally fuse the rest into one token.

    Args:
        tokens: activations at the cut, ``[B, prefix + N, D]``.
        importance: ``[B, N]`` from :func:`patch_importance`; ``None`` only for policies
            that do not need it (then fusion weights are uniform).
        k: patch tokens to keep, in ``[1, N]``; ignored by ``all``.
        policy: one of :data:`TOKEN_POLICIES`.
        ranking: one of :data:`RANKINGS`.
        fuse: append the importance-weighted mean of the dropped tokens (EViT); the weights
            are detached, so the device's gradient reaches the fused tokens but not the
            ranking statistic.
        generator: source of the ``random`` policy's draws.
        num_prefix_tokens: leading non-patch tokens, always sent.

    Returns:
        The :class:`Selection`.
    """
    if policy not in TOKEN_POLICIES:
        raise ValueError(f"policy must be one of {TOKEN_POLICIES}, got {policy!r}")
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    b, t, d = tokens.shape
    n = t - num_prefix_tokens
    if policy == "all":
        k = n
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k!r}")
    prefix, patches = tokens[:, :num_prefix_tokens], tokens[:, num_prefix_tokens:]
    if k == n:
        kept = torch.arange(n, device=tokens.device).expand(b, n)
        return Selection(tokens, kept, False)
    scores = _scores(patches, importance, policy, ranking, generator)
    # [B or 1, K] -> [B, K]; grid order keeps the payload layout independent of the scores
    kept = scores.topk(k, dim=1, sorted=False).indices.sort(dim=1).values.expand(b, k)
    sent = patches.gather(1, kept.unsqueeze(-1).expand(b, k, d))
    parts = [prefix, sent]
    if fuse:
        dropped = torch.ones(b, n, dtype=torch.bool, device=tokens.device).scatter_(1, kept, False)
        w = importance.detach() if importance is not None else torch.ones(b, n, dtype=tokens.dtype, device=tokens.device)
        # [B, N]; a tiny floor keeps the mean defined if every dropped token has weight 0
        w = (w + 1e-12) * dropped
        w = w / w.sum(dim=1, keepdim=True)
        parts.append((w.unsqueeze(-1) * patches).sum(dim=1, keepdim=True))
    return Selection(torch.cat(parts, dim=1), kept.contiguous(), fuse)


def retention_curve(
    importance: torch.Tensor,
    policy: str = "semantic",
    ranking: str = "batch",
    tokens: torch.Tensor | None = None,
) -> np.ndarray:
    """Semantic retention f(K): the share of total importance the kept tokens carry.

    For ``semantic`` this is the share held by the top-K; for ``norm`` the share held by the
    top-K by activation norm (needs ``tokens``); for ``random`` its expectation ``K / N``; for
    ``all`` (which ignores K) the semantic curve. With ``batch`` ranking the shares are of the
    batch's summed importance; with ``sample`` ranking they are averaged over samples.

    Args:
        importance: ``[B, N]`` from :func:`patch_importance`.
        policy: one of :data:`TOKEN_POLICIES`.
        ranking: one of :data:`RANKINGS`.
        tokens: ``[B, prefix + N, D]``, needed by ``norm``.

    Returns:
        ``float64 [N + 1]``: ``f[0] = 0``, non-decreasing, ``f[N] = 1``.
    """
    if policy not in TOKEN_POLICIES:
        raise ValueError(f"policy must be one of {TOKEN_POLICIES}, got {policy!r}")
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    imp = importance.detach().double()
    b, n = imp.shape
    if policy == "random":
        return np.arange(n + 1, dtype=np.float64) / n
    if policy == "norm":
        if tokens is None:
            raise ValueError("tokens=None: policy='norm' needs the activations")
        scores = tokens.detach()[:, -n:].norm(dim=-1).double()
    else:
        scores = imp
    if ranking == "batch":
        imp, scores = imp.sum(0, keepdim=True), scores.sum(0, keepdim=True)
    order = scores.argsort(dim=1, descending=True, stable=True)
    kept = imp.gather(1, order).cumsum(dim=1) / imp.sum(dim=1, keepdim=True)
    curve = np.concatenate([[0.0], kept.mean(0).numpy()])
    # cumulative sums of non-negative values: clip only rounding at the top
    curve = np.minimum(np.maximum.accumulate(curve), 1.0)
    curve[-1] = 1.0
    return curve
