"""The batched round (learning/batched.py) against the per-device loop, and its per-sample cache.

Tolerance (float32): with SGD, every per-device training loss, the evaluation's accuracy and
loss after each of 3 rounds agree within a relative 1e-5 and every adapter and head weight
within 1e-6 absolute (measured: 8e-8 and 1.5e-8). AdamW divides each gradient entry by its
own running magnitude, so entries whose gradient is at rounding level move by up to ``lr`` in
either direction whichever path computes them (the per-device loop itself, run with 1 and 2
torch threads, differs by 0.05 in accuracy after 3 rounds at lr 0.05): it is checked over one
step, each weight within 1 % of one step (``0.01 * lr``; measured 2.6e-4 of it).
"""
from dataclasses import replace

import numpy as np
import pytest
import torch

from learning.batched import batch_blocker, token_groups
from learning.federated import Learner
from learning.learner_config import LearnerConfig
from learning.sample_cache import SampleCache
from learning.split_vit import SplitViTConfig

# uneven data: device 1 holds fewer samples (5) than a batch (16)
PARTS = [np.arange(0, 100), np.arange(100, 105), np.arange(105, 200), np.arange(200, 400)]
TOKENS = [16, 3, 8, 5]
BITS = [32, 8, 32, 4]


def _learner(cfg, train, test, batched, **kw):
    lc = LearnerConfig(local_steps=3, batch_size=16, eval_samples=120, eval_batch_size=60, optimizer="sgd",
                       lr=0.05, batched=batched, **kw)
    return Learner(cfg, lc, train, test, PARTS, seed=3)


def _rounds(learner, rounds=3):
    out = []
    for r in range(rounds):
        reports = learner.train_round([0, 1, 2, 3], tokens=TOKENS, bits=BITS)
        learner.aggregate([0, 1, 3] if r == 1 else [0, 1, 2, 3])  # device 2 dropped in round 1
        out.append([rep.loss for rep in reports] + [rep.cost.uplink_bits for rep in reports]
                   + list(learner.evaluate()))
    return np.asarray(out)


def test_batched_round_agrees_with_the_per_device_loop(tiny_model_config, tiny_train, tiny_test):
    loop, batched = (_learner(tiny_model_config, tiny_train, tiny_test, b) for b in (False, True))
    assert batched.batched and not loop.batched
    a, b = _rounds(loop), _rounds(batched)
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=0)
    for name, value in loop.global_state.items():
        torch.testing.assert_close(batched.global_state[name], value, rtol=0, atol=1e-6)
    # the per-sample cache served every training batch of the batched learner
    assert batched.samples.served == 3 * 3 * sum(min(16, len(p)) for p in PARTS)


def test_batched_adamw_step_within_one_percent_of_a_step(tiny_model_config, tiny_train, tiny_test):
    pending = []
    for b in (False, True):
        learner = _learner(tiny_model_config, tiny_train, tiny_test, b)
        learner.config = replace(learner.config, optimizer="adamw", local_steps=1)
        learner.train_round([0, 1, 2, 3], tokens=TOKENS, bits=BITS)
        pending.append(learner.pending)
    for d in range(4):
        for name, value in pending[0][d][0].items():
            torch.testing.assert_close(pending[1][d][0][name], value, rtol=0, atol=0.01 * 0.05)


@pytest.mark.parametrize("change", [dict(strategy="federated"), dict(strategy="split-sequential"),
                                    dict(per_device_cut=True), dict(device_trainable=True)])
def test_other_settings_run_the_loop(change, tiny_model_config, tiny_train, tiny_test):
    change = dict(change)
    model_cfg = replace(tiny_model_config, device_trainable=change.pop("device_trainable", False))
    learner = _learner(model_cfg, tiny_train, tiny_test, True, **change)
    assert batch_blocker(learner) is not None and not learner.batched
    learner.train_round([0, 1], tokens=4)
    assert learner.samples is None or learner.samples.served == 0


def test_token_groups_cover_every_device_within_the_padding_ratio():
    counts = [66, 3, 10, 12, 40, 3, 50, 11]
    groups = token_groups(counts, 1.25)
    assert sorted(m for g in groups for m in g) == list(range(len(counts)))
    for g in groups:
        assert max(counts[m] for m in g) <= 1.25 * min(counts[m] for m in g)
    assert [sorted(counts[m] for m in g) for g in groups] == [[3, 3], [10, 11, 12], [40, 50], [66]]


def test_resumed_batched_learner_continues_bit_for_bit(tiny_model_config, tiny_train, tiny_test):
    full = _learner(tiny_model_config, tiny_train, tiny_test, True)
    _rounds(full, 2)
    state = full.state_dict()
    resumed = _learner(tiny_model_config, tiny_train, tiny_test, True)
    resumed.load_state_dict(state)
    a, b = _rounds(full, 2), _rounds(resumed, 2)
    assert np.array_equal(a, b)
    for name, value in full.global_state.items():
        assert torch.equal(resumed.global_state[name], value)


def test_sample_cache_computes_each_sample_once_and_matches_the_batch_forward(tiny_model_config, tiny_train):
    learner = _learner(tiny_model_config, tiny_train, tiny_train, True)
    cache = SampleCache(learner.model, tiny_model_config.cut, tiny_train, max_bytes=1 << 30)
    first = cache.forward(np.arange(0, 16))
    again = cache.forward(np.arange(8, 24))  # 8 cached, 8 new
    assert cache.forwarded == 24 and cache.served == 32
    with torch.no_grad():
        x = tiny_train.batch(np.arange(8, 24))[0]
        tokens, attn = learner.model.device_forward(x)
    torch.testing.assert_close(again[0], tokens, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(again[1], attn, rtol=1e-5, atol=1e-6)
    assert torch.equal(again[0][:8], first[0][8:])
    # a bound of one group's bytes keeps the first group and forwards the rest every time
    small = SampleCache(learner.model, tiny_model_config.cut, tiny_train, max_bytes=16 * cache.bytes_per_sample)
    small.forward(np.arange(0, 16))
    small.forward(np.arange(16, 20))
    small.forward(np.arange(16, 20))
    assert small.forwarded == 24 and small.recorded_bytes <= small.max_bytes
    # a restored record recomputes each group with its first composition: the same bits
    restored = SampleCache(learner.model, tiny_model_config.cut, tiny_train, max_bytes=1 << 30)
    restored.load_state_dict(cache.state_dict())
    out = restored.forward(np.arange(8, 24))
    assert torch.equal(out[0], again[0]) and torch.equal(out[1], again[1])


def test_batched_default_follows_the_device(tiny_model_config, tiny_train, tiny_test):
    # None (the default): the per-device loop on the CPU; an explicit value wins
    assert LearnerConfig().batched is None
    assert not _learner(tiny_model_config, tiny_train, tiny_test, None, device="cpu").batched
    assert _learner(tiny_model_config, tiny_train, tiny_test, True, device="cpu").batched


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batched_round_agrees_with_cpu(tiny_model_config, tiny_train, tiny_test):
    cpu = _learner(tiny_model_config, tiny_train, tiny_test, True, device="cpu")
    gpu = _learner(tiny_model_config, tiny_train, tiny_test, None, device="cuda")  # the default on CUDA: batched
    assert gpu.batched
    assert not _learner(tiny_model_config, tiny_train, tiny_test, False, device="cuda").batched
    np.testing.assert_allclose(_rounds(gpu), _rounds(cpu), rtol=1e-4, atol=0)
