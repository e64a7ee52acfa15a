"""The activation cache of a frozen device part: same bits as forwarding again, invalidated by
weight changes, bypassed where the device part trains or the cut varies."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from learning.activation_cache import ActivationCache
from learning.federated import Learner, LearnerConfig
from learning.round_retention import round_retention
from learning.split_vit import SplitViT


def _partitions(n: int, devices: int = 3) -> list[np.ndarray]:
    return [np.arange(n)[d::devices] for d in range(devices)]


def _learner(model_config, train, test, **learner_kw) -> Learner:
    # the per-device loop: the batch cache is bit-exact there (batched rounds use the per-sample one)
    cfg = LearnerConfig(local_steps=2, batch_size=8, eval_samples=60, eval_batch_size=25, probe_samples=8,
                        **{"batched": False, **learner_kw})
    return Learner(model_config, cfg, train, test, _partitions(len(train)), seed=3)


def _run(learner: Learner, rounds: int = 3) -> list:
    out = []
    for r in range(rounds):
        devices = [r % 3, (r + 1) % 3]
        curves = round_retention(learner, devices)
        reports = learner.train_round(devices, tokens=[5, 9])
        learner.aggregate(devices)
        out.append((curves, reports, learner.evaluate()))
    return out


@pytest.mark.parametrize("policy", ["semantic", "random", "all"])
def test_cached_run_equals_uncached_bit_for_bit(tiny_model_config, tiny_train, tiny_test, policy):
    on = _learner(tiny_model_config, tiny_train, tiny_test, token_policy=policy)
    off = _learner(tiny_model_config, tiny_train, tiny_test, token_policy=policy, activation_cache=False)
    assert on.activations is not None and off.activations is None
    a, b = _run(on), _run(off)
    for (ca, ra, ea), (cb, rb, eb) in zip(a, b):
        assert np.array_equal(ca, cb)
        assert ra == rb  # losses, tokens, bits, FLOP counts of every device, exactly
        assert ea == eb
    for key, value in off.global_state.items():
        assert torch.equal(on.global_state[key], value), key
    # the round's training batches were the ones its retention scored, and every evaluation after
    # the first reused the test batches: hits happened, and the FLOPs reported are the measured ones
    assert on.activations.hits >= 3 * 2 * 2 + 2 * 3
    assert ra[0].cost.device_flops == off.step_cost(5, 8).device_flops


def test_entries_are_batches_and_weights_invalidate(tiny_model_config, tiny_train):
    model = SplitViT(tiny_model_config, seed=0)
    cache = ActivationCache(model, tiny_model_config.cut)
    index = np.array([5, 1, 7])

    def images(ix=index):
        return tiny_train.batch(ix)[0]

    t1, a1 = cache.forward(tiny_train, index, images)
    t2, _ = cache.forward(tiny_train, index, images)
    assert (cache.hits, cache.misses) == (1, 1) and t2 is t1
    # another order is another batch (kernels need not be batch-invariant): forwarded afresh
    cache.forward(tiny_train, index[::-1].copy(), lambda: images(index[::-1].copy()))
    assert cache.misses == 2
    # a change of the device weights, however made, invalidates: the entry is recomputed
    with torch.no_grad():
        model.vit.blocks[0].mlp.fc1.weight.mul_(1.5)
    t3, _ = cache.forward(tiny_train, index, images)
    assert cache.misses == 3 and not torch.equal(t3, t1)
    assert torch.equal(t3, model.device_forward(images())[0])
    # a server-side change does not
    with torch.no_grad():
        model.vit.blocks[-1].mlp.fc1.weight.mul_(1.5)
    cache.forward(tiny_train, index, images)
    assert cache.misses == 3
    # bounded memory: least recently used batches go
    small = ActivationCache(model, tiny_model_config.cut, max_bytes=t1.numel() * 4 + a1.numel() * 4 + 1)
    small.forward(tiny_train, index, images)
    small.forward(tiny_train, index[:2], lambda: images(index[:2]))
    small.forward(tiny_train, index, images)
    assert small.misses == 3 and small.nbytes <= small.max_bytes


def test_bypassed_where_the_device_part_changes(tiny_model_config, tiny_train, tiny_test):
    trainable = replace(tiny_model_config, device_trainable=True)
    assert _learner(trainable, tiny_train, tiny_test).activations is None
    assert _learner(tiny_model_config, tiny_train, tiny_test, per_device_cut=True).activations is None
    assert _learner(tiny_model_config, tiny_train, tiny_test, strategy="federated").activations is None
    model = SplitViT(tiny_model_config, seed=0)
    cut = tiny_model_config.cut
    assert ActivationCache(model, cut).usable() and not ActivationCache(model, cut).usable(cut + 1)
    # adapters in the device blocks (a cut per device) are trainable weights: never served
    everywhere = SplitViT(replace(tiny_model_config, cut=2), seed=0, lora_everywhere=True)
    assert not ActivationCache(everywhere, 2).usable()
    # a device part with dropout computes differently in train mode: served in eval mode only
    dropout = SplitViT(tiny_model_config, seed=0)
    dropout.vit.pos_drop.p = 0.1
    cache = ActivationCache(dropout, tiny_model_config.cut)
    dropout.train()
    assert not cache.usable()
    with pytest.raises(ValueError, match="frozen device part"):
        cache.forward(tiny_train, np.arange(2), lambda: tiny_train.batch(np.arange(2))[0])
    dropout.eval()
    assert cache.usable()
