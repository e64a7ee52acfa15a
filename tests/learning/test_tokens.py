import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.split_step import TokenOptions, device_select, split_step
from learning.split_vit import SplitViT
from learning.tokens import cls_attention, patch_importance, retention_curve, select_tokens


def _images(cfg, b=5, seed=0):
    return torch.randn(b, 3, cfg.img_size, cfg.img_size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("qk_norm", [False, True])
def test_cls_attention_matches_timm_attention(tiny_model_config, qk_norm):
    model = SplitViT(tiny_model_config, seed=0).eval()
    attn = model.vit.blocks[model.cut - 1].attn
    if qk_norm:  # give the block timm's qk-norm layers, with non-trivial affine parameters
        attn.q_norm = torch.nn.LayerNorm(attn.head_dim)
        attn.k_norm = torch.nn.LayerNorm(attn.head_dim)
        with torch.no_grad():
            attn.q_norm.weight.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(1))
            attn.k_norm.bias.uniform_(-1, 1, generator=torch.Generator().manual_seed(2))
    x = _images(tiny_model_config)
    # reference 1: the attention matrix timm's own explicit path computes (attn_drop sees it)
    seen = []
    hook = attn.attn_drop.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    attn.fused_attn = False
    with torch.no_grad():
        _, cls_attn = model.device_forward(x)
    hook.remove()
    torch.testing.assert_close(cls_attn, seen[0][:, :, 0], rtol=0, atol=1e-6)
    # reference 2: softmax(q k^T / sqrt(d)) by hand from the block input, under the fused path
    attn.fused_attn = True
    inputs = []
    hook = model.vit.blocks[model.cut - 1].norm1.register_forward_hook(lambda m, i, o: inputs.append(o.detach()))
    with torch.no_grad():
        _, cls_fused = model.device_forward(x)
        h = inputs[0]
        b, n, d = h.shape
        qkv = attn.qkv(h).reshape(b, n, 3, attn.num_heads, attn.head_dim)
        q, k = attn.q_norm(qkv[:, :, 0].transpose(1, 2)), attn.k_norm(qkv[:, :, 1].transpose(1, 2))
        manual = torch.softmax(q @ k.transpose(-1, -2) / attn.head_dim**0.5, dim=-1)[:, :, 0]
    hook.remove()
    torch.testing.assert_close(cls_fused, manual, rtol=0, atol=1e-6)
    torch.testing.assert_close(cls_attn.sum(-1), torch.ones(5, attn.num_heads))


def test_importance_leaves_out_cls():
    attn = torch.rand(2, 3, 5).softmax(-1)
    imp = patch_importance(attn)
    assert imp.shape == (2, 4)
    torch.testing.assert_close(imp, attn[:, :, 1:].mean(1))


def _tokens_and_importance(b=4, n=10, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n + 1, d, generator=g), torch.rand(b, n, generator=g)


def test_semantic_batch_ranking_keeps_top_k_of_summed_importance():
    tokens, imp = _tokens_and_importance()
    sel = select_tokens(tokens, imp, 3, "semantic", "batch", fuse=False)
    top = set(imp.sum(0).topk(3).indices.tolist())
    assert all(set(row.tolist()) == top for row in sel.kept)
    assert sel.tokens.shape == (4, 4, 6)
    torch.testing.assert_close(sel.tokens[:, 0], tokens[:, 0])
    torch.testing.assert_close(sel.tokens[:, 1:], tokens[:, 1:][torch.arange(4)[:, None], sel.kept])


def test_sample_ranking_and_fused_token_is_importance_weighted_mean():
    tokens, imp = _tokens_and_importance()
    sel = select_tokens(tokens, imp, 3, "semantic", "sample", fuse=True)
    assert sel.tokens.shape == (4, 5, 6) and sel.fused
    for i in range(4):
        assert set(sel.kept[i].tolist()) == set(imp[i].topk(3).indices.tolist())
        dropped = [j for j in range(10) if j not in sel.kept[i].tolist()]
        w = imp[i, dropped] / imp[i, dropped].sum()
        torch.testing.assert_close(sel.tokens[i, -1], (w[:, None] * tokens[i, 1:][dropped]).sum(0))


def test_norm_and_random_policies():
    tokens, imp = _tokens_and_importance()
    sel = select_tokens(tokens, imp, 2, "norm", "sample", fuse=False)
    for i in range(4):
        assert set(sel.kept[i].tolist()) == set(tokens[i, 1:].norm(dim=-1).topk(2).indices.tolist())
    a = select_tokens(tokens, imp, 5, "random", "batch", generator=torch.Generator().manual_seed(0))
    b = select_tokens(tokens, imp, 5, "random", "batch", generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.kept, b.kept) and a.kept.unique(dim=0).shape[0] == 1
    c = select_tokens(tokens, imp, 5, "random", "sample", generator=torch.Generator().manual_seed(0))
    assert c.kept.unique(dim=0).shape[0] > 1


def test_all_policy_and_full_budget_send_everything():
    tokens, imp = _tokens_and_importance()
    for sel in (select_tokens(tokens, imp, 2, "all"), select_tokens(tokens, imp, 10, "semantic")):
        assert torch.equal(sel.tokens, tokens) and not sel.fused


@pytest.mark.parametrize("k", [0, 11, -3])
def test_budget_outside_range(k):
    tokens, imp = _tokens_and_importance()
    with pytest.raises(ValueError, match=rf"k must be in \[1, 10\], got {k}"):
        select_tokens(tokens, imp, k)


def test_unknown_policy():
    tokens, imp = _tokens_and_importance()
    with pytest.raises(ValueError, match="policy.*'best'"):
        select_tokens(tokens, imp, 3, "best")


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 4), n=st.integers(1, 20), seed=st.integers(0, 10_000),
    policy=st.sampled_from(["semantic", "random", "norm", "all"]), ranking=st.sampled_from(["batch", "sample"]),
)
def test_retention_curve_properties(b, n, seed, policy, ranking):
    tokens, imp = _tokens_and_importance(b, n, 3, seed)
    f = retention_curve(imp, policy, ranking, tokens)
    assert f.shape == (n + 1,) and f[0] == 0.0 and f[-1] == 1.0
    assert np.all(np.diff(f) >= 0)
    if policy == "semantic":  # top-K share is concave in K: each next token adds no more
        assert np.all(np.diff(f, 2) <= 1e-12)
        assert np.all(f >= np.arange(n + 1) / n - 1e-12)


def test_retention_curve_semantic_value():
    imp = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.3, 0.2, 0.1, 0.4]])
    # batch sums: 0.4, 0.6, 0.3, 0.7 of 2.0 -> 0.35, 0.65, 0.85, 1
    np.testing.assert_allclose(retention_curve(imp, "semantic", "batch"), [0, 0.35, 0.65, 0.85, 1.0])
    np.testing.assert_allclose(retention_curve(imp, "semantic", "sample"), [0, 0.4, 0.7, 0.9, 1.0])
    np.testing.assert_allclose(retention_curve(imp, "random"), [0, 0.25, 0.5, 0.75, 1.0])


def test_fewer_tokens_reach_the_server_and_gradient_flows_to_device_lora(tiny_model_config):
    from dataclasses import replace

    cfg = replace(tiny_model_config, device_trainable=True)
    model = SplitViT(cfg, seed=0)
    x = _images(cfg)
    sel, imp = device_select(model, x, 4, TokenOptions(), None)
    assert sel.tokens.shape == (5, 1 + 4 + 1, cfg.embed_dim) and imp.shape == (5, 16)
    out = split_step(model, x, torch.zeros(5, dtype=torch.long), 4, TokenOptions(), None)
    grads = [p.grad for n, p in model.named_parameters() if model.is_device_param(n) and p.requires_grad]
    assert grads and all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert out.downlink_bits > 0
