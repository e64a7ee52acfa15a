from dataclasses import replace

import pytest
import torch

from learning.costs import adapter_bits, measure_step_cost
from learning.quantize import encode
from learning.split_step import TokenOptions
from learning.split_vit import SplitViT


def test_float_payload_bits_are_numel_times_32():
    x = torch.randn(8, 18, 48)
    assert encode(x, None).bits == 8 * 18 * 48 * 32


@pytest.mark.parametrize("bits", [2, 4, 8, 12])
def test_quantised_payload_bits_and_error(bits):
    x = torch.randn(8, 18, 48, generator=torch.Generator().manual_seed(0))
    p = encode(x, bits)
    # codes plus a float32 minimum and step per token
    assert p.bits == 8 * 18 * 48 * bits + 8 * 18 * 2 * 32
    assert int(p.values.max()) <= 2**bits - 1
    step = (x.amax(-1, keepdim=True) - x.amin(-1, keepdim=True)) / (2**bits - 1)
    assert torch.all((p.dequantize() - x).abs() <= step / 2 + 1e-6)


def test_constant_token_decodes_exactly():
    x = torch.full((2, 3, 5), 1.5)
    torch.testing.assert_close(encode(x, 4).dequantize(), x)


def test_quantisation_width_out_of_range_is_refused():
    with pytest.raises(ValueError, match="bits"):
        encode(torch.randn(4, 6), 0)


def test_step_cost_bits_equal_hand_computation(tiny_model_config):
    cfg = replace(tiny_model_config, device_trainable=True)
    model = SplitViT(cfg, seed=0)
    b, k, d = 8, 5, cfg.embed_dim
    sent = 1 + k + 1  # CLS, kept patches, fused token
    cost = measure_step_cost(model, b, k, TokenOptions(uplink_bits_per_value=8, downlink_bits_per_value=4), True, "device")
    labels = b * 8  # 4 classes travel as uint8
    assert cost.uplink_bits == b * sent * d * 8 + b * sent * 2 * 32 + labels
    assert cost.downlink_bits == b * sent * d * 4 + b * sent * 2 * 32
    cost = measure_step_cost(model, b, k, TokenOptions(fuse=False), True, "device")
    assert cost.uplink_bits == b * (1 + k) * d * 32 + labels and cost.downlink_bits == b * (1 + k) * d * 32
    # device adapters: rank-8 LoRA on qkv of block 0: A [8, d] and B [3d, 8], float32
    assert cost.adapter_bits == adapter_bits(model, "device") == (8 * d + 3 * d * 8) * 32


def test_flops_positive_and_increasing_with_k(tiny_model_config):
    model = SplitViT(tiny_model_config, seed=0)
    costs = [measure_step_cost(model, 4, k, TokenOptions(), True, "device") for k in (1, 4, 8, 16)]
    assert all(c.device_forward_flops > 0 and c.server_flops > 0 for c in costs)
    server = [c.server_flops for c in costs]
    assert server == sorted(server) and server[0] < server[-1]
    assert len({c.device_forward_flops for c in costs}) == 1  # the device always runs every token
    assert all(c.device_backward_flops == 0 and c.downlink_bits == 0 and c.adapter_bits == 0 for c in costs)
    assert all(p.grad is None for p in model.parameters())


def test_flops_against_a_hand_count(tiny_model_config):
    # server part of one block at T tokens, forward only counted by hand:
    # qkv 2*T*d*3d, q k^T and attn v 2 * 2*T*T*d, proj 2*T*d*d, fc1 + fc2 2 * 2*T*d*4d; head 2*d*C
    cfg = replace(tiny_model_config, depth=2, cut=1, head_trainable=False, lora_targets=("qkv",))
    model = SplitViT(cfg, seed=0)
    b, k, d, c = 2, 6, cfg.embed_dim, cfg.num_classes
    t = 1 + k + 1
    fwd_block = 2 * t * d * 3 * d + 4 * t * t * d + 2 * t * d * d + 16 * t * d * d
    lora_fwd = 2 * t * d * 8 + 2 * t * 8 * 3 * d
    fwd = b * (fwd_block + lora_fwd + 2 * d * c)
    cost = measure_step_cost(model, b, k, TokenOptions(), True, "device")
    # backward costs about twice the forward; here the frozen weights need only input gradients
    assert fwd < cost.server_flops < 3.2 * fwd


def test_whole_model_step_cost(tiny_model_config):
    model = SplitViT(tiny_model_config, seed=0, lora_everywhere=True)
    cost = measure_step_cost(model, 4, 3, TokenOptions(), False, "all")
    assert cost.uplink_bits == cost.downlink_bits == cost.server_flops == 0
    assert cost.device_forward_flops > 0 and cost.device_backward_flops > 0 and cost.adapter_bits > 0


@pytest.mark.parametrize("device_trainable", [False, True])
def test_costs_at_each_cut_of_a_per_device_model(tiny_model_config, device_trainable):
    cfg = replace(tiny_model_config, device_trainable=device_trainable)  # 3 blocks, width 48, rank 8, qkv
    model = SplitViT(cfg, seed=0, lora_everywhere=True)
    opts = TokenOptions(policy="all")
    costs = [measure_step_cost(model, 4, cfg.num_patches, opts, True, "device", cut=c) for c in range(4)]
    # one block's LoRA on qkv: A [r, D] + B [3D, r] = 4 D r float32 values
    per_block = 4 * 48 * 8 * 32
    assert [c.adapter_bits for c in costs] == [per_block * c * device_trainable for c in range(4)]
    # every block maps the same token shape: the same payload at every cut
    assert len({c.uplink_bits for c in costs}) == 1
    fwd = [c.device_forward_flops for c in costs]
    srv = [c.server_flops for c in costs]
    assert fwd == sorted(fwd) and fwd[0] < fwd[1] and srv == sorted(srv, reverse=True)
    # cut 0 runs only the patch embedding: a linear map of each 4x4x3 patch to 48 values
    assert costs[0].device_forward_flops == 2 * 4 * cfg.num_patches * (4 * 4 * 3) * 48
    assert (costs[2].device_backward_flops > 0) == device_trainable
