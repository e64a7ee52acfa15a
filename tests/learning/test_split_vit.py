from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from learning.split_step import TokenOptions, split_step, whole_step
from learning.split_vit import SplitViT, SplitViTConfig


def _nonzero_lora(model, seed=3):
    # peft initialises B = 0; give the adapters a value so that their gradients are not trivial
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def _batch(cfg, b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, cfg.img_size, cfg.img_size, generator=g), torch.randint(0, cfg.num_classes, (b,), generator=g)


@pytest.mark.parametrize("cut", [0, 1, 3])
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("stem", ["linear", "conv"])
def test_split_step_with_all_tokens_equals_unsplit_training(tiny_model_config, cut, fused, stem):
    cfg = replace(tiny_model_config, cut=cut, device_trainable=True, lora_targets=("qkv", "fc1"),
                  fused_attention=fused, stem=stem)
    model = SplitViT(cfg, seed=0)
    _nonzero_lora(model)
    x, y = _batch(cfg)
    model.zero_grad()
    ref = whole_step(model, x, y)
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    out = split_step(model, x, y, cfg.num_patches, TokenOptions(policy="semantic", fuse=False))
    assert out.loss == pytest.approx(ref.loss, rel=1e-6, abs=1e-6)
    assert any("lora" in n and ref_grads[n].abs().sum() > 0 for n in ref_grads)
    for n, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, ref_grads[n], rtol=1e-5, atol=1e-7, msg=n)


@pytest.mark.parametrize("stem", ["linear", "conv"])
def test_logits_of_split_forward_equal_timm_forward(tiny_model_config, stem):
    model = SplitViT(replace(tiny_model_config, cut=2, stem=stem), seed=1).eval()
    x, _ = _batch(tiny_model_config)
    with torch.no_grad():
        tokens, _ = model.device_forward(x)
        torch.testing.assert_close(model.server_forward(tokens), model.vit(x))


def test_only_lora_and_head_train_and_frozen_device_part_has_none(tiny_model_config):
    model = SplitViT(tiny_model_config, seed=0)
    names = model.trainable_names()
    assert names and all("lora_" in n or n.startswith("vit.head.") for n in names)
    assert "vit.head.weight" in names
    assert not any(model.is_device_param(n) for n in names)
    x, y = _batch(tiny_model_config)
    out = split_step(model, x, y, 4, TokenOptions())
    assert out.downlink_bits == 0
    assert all(p.grad is None for n, p in model.named_parameters() if model.is_device_param(n))


def test_device_trainable_gives_device_lora(tiny_model_config):
    model = SplitViT(replace(tiny_model_config, device_trainable=True, head_trainable=False), seed=0)
    names = model.trainable_names()
    assert any(model.is_device_param(n) for n in names) and "vit.head.weight" not in names


def test_same_seed_same_model_and_global_rng_untouched(tiny_model_config):
    before = torch.random.get_rng_state()
    a, b = SplitViT(tiny_model_config, seed=5), SplitViT(tiny_model_config, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n
    c = SplitViT(tiny_model_config, seed=6)
    assert not torch.equal(a.vit.pos_embed, c.vit.pos_embed)


def test_backbone_state_round_trip(tiny_model_config):
    a = SplitViT(tiny_model_config, seed=1)
    b = SplitViT(tiny_model_config, seed=2, backbone_state=a.backbone_state())
    x, _ = _batch(tiny_model_config)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x))
    other = SplitViT(replace(tiny_model_config, num_classes=7), seed=2, backbone_state=a.backbone_state())
    assert other.vit.head.weight.shape[0] == 7  # a head of another shape is re-initialised


@pytest.mark.parametrize(
    "field, value",
    [("model_name", "resnet50"), ("model_name", "vit_no_such_model"), ("cut", 4), ("cut", -1),
     ("lora_targets", ("mlp",)), ("patch_size", 5), ("lora_rank", -1), ("stem", "vgg")],
)
def test_bad_config_names_field_and_value(tiny_model_config, field, value):
    with pytest.raises(ValueError, match=field) as err:
        replace(tiny_model_config, **{field: value})
    assert repr(value) in str(err.value)


def test_rank_zero_trains_only_the_head(tiny_model_config):
    model = SplitViT(replace(tiny_model_config, lora_rank=0), seed=0)
    assert model.trainable_names() == ["vit.head.weight", "vit.head.bias"]
    assert not any("lora_" in n for n, _ in model.named_parameters())
    with pytest.raises(ValueError, match="nothing to train"):
        replace(tiny_model_config, lora_rank=0, head_trainable=False)


def test_cut_beyond_timm_default_depth():
    with pytest.raises(ValueError, match="cut"):
        SplitViT(SplitViTConfig(img_size=16, patch_size=4, depth=None, embed_dim=48, num_heads=3, cut=13), seed=0)


def test_conv_stem_makes_the_linear_embeddings_token_grid(tiny_model_config):
    from learning.stem import ConvStem

    linear = SplitViT(tiny_model_config, seed=0).vit.patch_embed
    conv = SplitViT(replace(tiny_model_config, stem="conv"), seed=0).vit.patch_embed
    assert isinstance(conv, ConvStem)
    assert conv.num_patches == linear.num_patches == 16 and tuple(conv.grid_size) == tuple(linear.grid_size) == (4, 4)
    assert conv.feat_ratio() == 4
    x, _ = _batch(tiny_model_config, b=2)
    assert conv(x).shape == linear(x).shape == (2, 16, tiny_model_config.embed_dim)


def test_conv_stem_tokens_are_row_major_and_local(tiny_model_config):
    # two stride-2 3x3 convolutions (padding 1) see pixels 4i-3 .. 4i+3 for grid row/column i, so
    # a change at pixel (15, 15) -- grid row 3, column 3, token 15 in row-major order -- reaches
    # token 15 directly; the others move only through GroupNorm's per-image statistics, far less
    stem = SplitViT(replace(tiny_model_config, stem="conv"), seed=0).vit.patch_embed.eval()
    x, _ = _batch(tiny_model_config, b=1)
    y = x.clone()
    y[..., 15, 15] += 5.0
    with torch.no_grad():
        change = (stem(x) - stem(y)).abs().amax(-1)[0]
    assert int(change.argmax()) == 15
    far = [i for i in range(16) if i not in (10, 11, 14, 15)]
    assert change[far].max() < 0.2 * change[15]


@pytest.mark.parametrize("patch_size", [3, 1])
def test_conv_stem_needs_a_power_of_two_patch(patch_size):
    with pytest.raises(ValueError, match="patch_size"):
        SplitViTConfig(img_size=12, patch_size=patch_size, depth=2, embed_dim=48, num_heads=3, stem="conv")
