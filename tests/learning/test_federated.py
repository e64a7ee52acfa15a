from dataclasses import replace

import numpy as np
import pytest
import torch

from learning.partition import iid_partition
from learning.federated import DeviceReport, Learner, LearnerConfig, fedavg
from learning.split_vit import SplitViT

FAST = LearnerConfig(local_steps=2, batch_size=8, eval_samples=60, probe_samples=16, lr=3e-3)


def make(tiny_model_config, tiny_train, tiny_test, seed=0, devices=4, **kw):
    parts = iid_partition(len(tiny_train), devices, np.random.default_rng(0))
    parts[1] = parts[1][:40]  # unequal sizes, so that weighting matters
    return Learner(tiny_model_config, replace(FAST, **kw), tiny_train, tiny_test, parts, seed)


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fedavg_weighted_average():
    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([3.0, 6.0]), "b": torch.tensor([4.0])}
    out = fedavg([a, b], [1, 3])
    torch.testing.assert_close(out["w"], torch.tensor([2.5, 5.0]))
    torch.testing.assert_close(out["b"], torch.tensor([3.0]))
    with pytest.raises(ValueError, match="weights"):
        fedavg([a, b], [0, 0])


def test_aggregate_averages_only_the_given_devices(tiny_model_config, tiny_train, tiny_test):
    full = make(tiny_model_config, tiny_train, tiny_test)
    full.train_round([0, 1, 2], 6)
    pending = {d: s for d, (s, _) in full.pending.items()}
    full.aggregate([0, 1])
    sizes = [len(full.partitions[d]) for d in (0, 1)]
    expected = {k: (sizes[0] * pending[0][k].double() + sizes[1] * pending[1][k].double()) / sum(sizes) for k in pending[0]}
    for k, v in expected.items():
        torch.testing.assert_close(full.global_state[k], v.float())
    # device 2's training changed nothing: the same as never having trained it
    only = make(tiny_model_config, tiny_train, tiny_test)
    only.train_round([0, 1], 6)
    only.aggregate([0, 1])
    assert states_equal(full.global_state, only.global_state)


def test_reports(tiny_model_config, tiny_train, tiny_test):
    learner = make(tiny_model_config, tiny_train, tiny_test)
    reports = learner.train_round([3, 1], [4, 16])
    assert [r.device for r in reports] == [3, 1] and all(isinstance(r, DeviceReport) for r in reports)
    assert reports[1].samples == 40 and reports[0].samples == len(learner.partitions[3])
    assert [r.tokens for r in reports] == [4, 16] and all(r.steps == 2 and np.isfinite(r.loss) for r in reports)
    assert reports[0].cost == learner.step_cost(4)
    assert reports[0].cost.uplink_bits < reports[1].cost.uplink_bits
    with pytest.raises(ValueError, match="untrained"):
        learner.aggregate([0])


@pytest.mark.parametrize("tokens, match", [(0, r"tokens must be in \[1, 16\], got 0"), (17, "got 17"),
                                           ([4, 99], r"tokens\[1\] must be in \[1, 16\], got 99")])
def test_bad_budget(tiny_model_config, tiny_train, tiny_test, tokens, match):
    learner = make(tiny_model_config, tiny_train, tiny_test)
    with pytest.raises(ValueError, match=match):
        learner.train_round([0, 1], tokens)


def test_bad_learner_input(tiny_model_config, tiny_train, tiny_test):
    with pytest.raises(ValueError, match="strategy.*'fedprox'"):
        LearnerConfig(strategy="fedprox")
    with pytest.raises(ValueError, match="local_steps.*0"):
        LearnerConfig(local_steps=0)
    with pytest.raises(ValueError, match="num_classes"):
        make(replace(tiny_model_config, num_classes=10), tiny_train, tiny_test)
    with pytest.raises(ValueError, match="device"):
        make(tiny_model_config, tiny_train, tiny_test).train_round([7], 4)


def _run(learner, rounds, devices=(0, 1, 2, 3), tokens=(4, 8, 16, 2)):
    for _ in range(rounds):
        learner.train_round(devices, list(tokens))
        learner.aggregate(devices)


@pytest.mark.parametrize("strategy", ["split-federated", "split-sequential", "local"])
def test_resume_is_bit_identical(tiny_model_config, tiny_train, tiny_test, strategy):
    cfg = replace(tiny_model_config, device_trainable=True, lora_dropout=0.1)
    kw = dict(strategy=strategy, token_policy="random")
    straight = make(cfg, tiny_train, tiny_test, **kw)
    _run(straight, 3)
    first = make(cfg, tiny_train, tiny_test, **kw)
    _run(first, 1)
    state = first.state_dict()
    _run(first, 1)  # moves on; the saved state must not
    resumed = make(cfg, tiny_train, tiny_test, **kw)
    resumed.load_state_dict(state)
    _run(resumed, 2)
    assert states_equal(straight.global_state, resumed.global_state)
    for d in straight.device_states:
        assert states_equal(straight.device_states[d], resumed.device_states[d])
    assert straight.evaluate() == resumed.evaluate()


def test_probes_and_costs_do_not_touch_training_streams(tiny_model_config, tiny_train, tiny_test):
    a = make(tiny_model_config, tiny_train, tiny_test, token_policy="random")
    b = make(tiny_model_config, tiny_train, tiny_test, token_policy="random")
    b.retention([0, 1, 2])
    b.step_cost(3)
    b.token_examples(0, 5, 2)
    b.evaluate()
    _run(a, 1)
    _run(b, 1)
    assert states_equal(a.global_state, b.global_state)


def test_training_learns(tiny_model_config, tiny_train, tiny_test):
    # as in a run: a backbone pretrained on a public split, a fresh head, federated rounds
    from learning.pretrain import PretrainConfig, pretrain

    public, private = tiny_train.subset(np.arange(200, 400)), tiny_train.subset(np.arange(200))
    recipe = PretrainConfig(public_samples=200, epochs=30, batch_size=32, lr=2e-3, warmup_steps=10)
    state, _ = pretrain(tiny_model_config, recipe, public)
    state = {k: v for k, v in state.items() if not k.startswith("head.")}
    parts = iid_partition(len(private), 4, np.random.default_rng(0))
    learner = Learner(tiny_model_config, replace(FAST, local_steps=4, lr=1e-2), private, tiny_test, parts, 0, state)
    acc0, loss0 = learner.evaluate()
    _run(learner, 6, tokens=(8, 8, 8, 8))
    acc, loss = learner.evaluate()
    assert loss < loss0 - 0.2 and acc > acc0 + 0.2, (acc0, acc, loss0, loss)


def test_retention_and_token_examples(tiny_model_config, tiny_train, tiny_test):
    learner = make(tiny_model_config, tiny_train, tiny_test)
    f = learner.retention([2, 0])
    assert f.shape == (2, 17) and np.all(f[:, 0] == 0) and np.allclose(f[:, -1], 1) and np.all(np.diff(f, axis=1) >= 0)
    ex = learner.token_examples(1, 5, 3)
    assert ex["images"].shape == (3, 16, 16, 3) and ex["images"].dtype == np.uint8
    assert ex["kept"].shape == (3, 4, 4) and ex["kept"].dtype == bool and ex["kept"].sum(axis=(1, 2)).tolist() == [5] * 3
    assert ex["tokens"].tolist() == [5, 5, 5]


@pytest.mark.parametrize("strategy, token_policy", [("split-federated", "all"), ("split-sequential", "all"),
                                                    ("federated", "semantic"), ("local", "semantic")])
def test_strategies(tiny_model_config, tiny_train, tiny_test, strategy, token_policy):
    learner = make(tiny_model_config, tiny_train, tiny_test, strategy=strategy, token_policy=token_policy)
    reports = learner.train_round([0, 1], 4)
    assert all(r.tokens == 16 for r in reports)  # all tokens: whole model, or the 'all' token policy
    learner.aggregate([0, 1])
    acc, loss = learner.evaluate()
    assert 0 <= acc <= 1 and np.isfinite(loss)
    cost = learner.step_cost(4)
    if strategy in ("federated", "local"):
        assert cost.uplink_bits == 0 and cost.server_flops == 0 and cost.device_backward_flops > 0
        assert (cost.adapter_bits > 0) == (strategy == "federated")
    else:
        assert cost.uplink_bits > 0 and cost.server_flops > 0


def test_split_sequential_continues_from_the_previous_device(tiny_model_config, tiny_train, tiny_test):
    learner = make(tiny_model_config, tiny_train, tiny_test, strategy="split-sequential")
    learner.train_round([2, 0])
    after_two, after_zero = learner.pending[2][0], learner.pending[0][0]
    learner.aggregate([2, 0])
    # The model is what the last device in training order left, not an average.
    assert states_equal(learner.global_state, after_zero)
    assert not states_equal(learner.global_state, after_two)
    # Device 0 started from device 2's result: alone, from the initial model, it ends elsewhere.
    alone = make(tiny_model_config, tiny_train, tiny_test, strategy="split-sequential")
    alone.train_round([0])
    assert not states_equal(alone.pending[0][0], after_zero)


def test_local_evaluates_each_device_model(tiny_model_config, tiny_train, tiny_test):
    learner = make(tiny_model_config, tiny_train, tiny_test, strategy="local")
    learner.train_round([0], 4)
    learner.aggregate([0])
    per_device = [learner.evaluate_state(learner.strategy.model_of(learner, d)) for d in range(4)]
    acc, loss = learner.evaluate()
    assert acc == pytest.approx(np.mean([a for a, _ in per_device])) and loss == pytest.approx(np.mean([l for _, l in per_device]))
    assert per_device[0] != per_device[1] and per_device[1] == per_device[2]


def test_local_evaluation_memo_equals_evaluating_every_device_model(tiny_model_config, tiny_train, tiny_test):
    learner = make(tiny_model_config, tiny_train, tiny_test, strategy="local")
    counted = []
    real = learner.evaluate_state
    learner.evaluate_state = lambda state: counted.append(1) or real(state)
    for r, devices in enumerate(([0, 1], [1, 2], [1])):  # device 1 retrains: its kept result is refreshed
        learner.train_round(devices, 4)
        learner.aggregate(devices)
        counted.clear()
        memo = learner.evaluate()
        evaluations = len(counted)
        per_device = [real(learner.strategy.model_of(learner, d)) for d in range(4)]
        assert memo == (float(np.mean([a for a, _ in per_device])), float(np.mean([l for _, l in per_device])))
        # the changed models (and the global one, once), not all four every round
        assert evaluations == len(devices) + (r == 0)
    resumed = make(tiny_model_config, tiny_train, tiny_test, strategy="local")
    resumed.load_state_dict(learner.state_dict())
    assert resumed.evaluate() == memo


def test_frozen_device_sends_no_gradient_and_no_adapters(tiny_model_config, tiny_train, tiny_test):
    learner = make(tiny_model_config, tiny_train, tiny_test)
    cost = learner.step_cost(4)
    assert cost.downlink_bits == 0 and cost.adapter_bits == 0 and cost.device_backward_flops == 0
    trainable = make(replace(tiny_model_config, device_trainable=True), tiny_train, tiny_test).step_cost(4)
    assert trainable.downlink_bits > 0 and trainable.adapter_bits > 0 and trainable.device_backward_flops > 0


def test_retention_is_cached_only_while_the_device_part_is_frozen(tiny_model_config, tiny_train, tiny_test):
    frozen = make(tiny_model_config, tiny_train, tiny_test)
    before = frozen.retention([0, 1])
    frozen.train_round([0, 1], 4)
    frozen.aggregate([0, 1])
    # Same frozen device blocks, same probe batch: the cached curve equals a fresh computation.
    fresh = make(tiny_model_config, tiny_train, tiny_test)
    assert np.array_equal(frozen.retention([0, 1]), before)
    assert np.array_equal(fresh.retention([0, 1]), before)

    trainable = replace(tiny_model_config, device_trainable=True)
    learner = make(trainable, tiny_train, tiny_test, lr=5e-2)
    before = learner.retention([0])
    learner.train_round([0], 4)
    learner.aggregate([0])
    assert not np.array_equal(learner.retention([0]), before)


# -- a cut and an uplink width per device ---------------------------------------------------
def _per_device(tiny_model_config, tiny_train, tiny_test, device_trainable, **kw):
    cfg = replace(tiny_model_config, device_trainable=device_trainable)
    parts = iid_partition(len(tiny_train), 4, np.random.default_rng(0))
    parts[1] = parts[1][:40]
    config = replace(FAST, per_device_cut=True, token_policy="all", optimizer="sgd", lr=0.05, **kw)
    return Learner(cfg, config, tiny_train, tiny_test, parts, seed=0)


@pytest.mark.parametrize("device_trainable", [False, True])
@pytest.mark.parametrize("cut", [0, 1, 2, 3])
def test_a_split_at_any_cut_equals_the_unsplit_model(tiny_model_config, cut, device_trainable):
    from learning.split_step import TokenOptions, split_step, whole_step

    cfg = replace(tiny_model_config, device_trainable=device_trainable)
    model = SplitViT(cfg, seed=0, lora_everywhere=True)  # as the learner builds it with per_device_cut
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    x = torch.randn(6, 3, cfg.img_size, cfg.img_size, generator=g)
    y = torch.randint(0, cfg.num_classes, (6,), generator=g)
    model.zero_grad()
    ref = whole_step(model, x, y)
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    out = split_step(model, x, y, cfg.num_patches, TokenOptions(policy="all"), cut=cut)
    assert out.loss == pytest.approx(ref.loss, rel=1e-6, abs=1e-6)
    assert (out.downlink_bits > 0) == (device_trainable and cut > 0)
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if model.is_device_param(n, cut) and not device_trainable:
            assert p.grad is None, n  # a frozen device part gets no gradient at all
        else:
            torch.testing.assert_close(p.grad, ref_grads[n], rtol=1e-5, atol=1e-7, msg=n)


def _block(name):
    return int(name.split(".")[2]) if name.startswith("vit.blocks.") else None


@pytest.mark.parametrize("device_trainable", [False, True])
def test_adapters_are_averaged_over_the_devices_that_trained_them(tiny_model_config, tiny_train, tiny_test,
                                                                  device_trainable):
    learner = _per_device(tiny_model_config, tiny_train, tiny_test, device_trainable)
    start = {k: v.clone() for k, v in learner.global_state.items()}
    cuts = {0: 0, 1: 2, 2: 3}
    reports = learner.train_round(list(cuts), None, cuts=list(cuts.values()))
    assert [r.cut_layer for r in reports] == [0, 2, 3]
    after = {d: s for d, (s, _) in learner.pending.items()}
    sizes = {d: len(learner.partitions[d]) for d in cuts}
    learner.aggregate(list(cuts))
    for key, value in learner.global_state.items():
        j = _block(key)
        # by hand: who trained this parameter (its server copy, or its device copy if devices train)
        held = [d for d, c in cuts.items() if j is None or j >= c or device_trainable]
        for d, c in cuts.items():
            if d not in held:  # a frozen block below the cut is left exactly as it was
                assert torch.equal(after[d][key], start[key]), (d, key)
        if not held:
            assert torch.equal(value, start[key])
            continue
        want = sum(sizes[d] * after[d][key].double() for d in held) / sum(sizes[d] for d in held)
        torch.testing.assert_close(value, want.float(), msg=key)
        assert not torch.equal(value, start[key]) or "lora_A" in key, key
    blocks_changed = {_block(k) for k in learner.global_state if not torch.equal(learner.global_state[k], start[k])}
    assert 0 in blocks_changed  # block 0 trained by device 0's server copy (cut 0) only, when frozen


def test_each_device_sends_its_own_width_and_the_bits_are_counted(tiny_model_config, tiny_train, tiny_test):
    learner = _per_device(tiny_model_config, tiny_train, tiny_test, False)
    widths = [8, 2, 32]
    reports = learner.train_round([0, 2, 3], None, cuts=[1, 0, 3], bits=widths)
    b, d, t = FAST.batch_size, 48, tiny_model_config.num_patches + 1  # all patches + [CLS]
    for rep, width in zip(reports, widths):
        assert rep.bits_per_value == width
        header = 0 if width == 32 else b * t * 64  # a float32 minimum and step per token
        assert rep.cost.uplink_bits == b * t * d * width + header + b * 8  # + uint8 labels
    with pytest.raises(ValueError, match="bits"):
        learner.train_round([0], None, bits=[17])
    with pytest.raises(ValueError, match="cut"):
        learner.train_round([1], None, cuts=[4])


def test_a_cut_other_than_the_configured_one_needs_per_device_cut(tiny_model_config, tiny_train, tiny_test):
    learner = make(tiny_model_config, tiny_train, tiny_test)
    with pytest.raises(ValueError, match="configured"):
        learner.train_round([0], 4, cuts=[2])
    with pytest.raises(ValueError, match="per_device_cut"):
        LearnerConfig(strategy="federated", per_device_cut=True)


def test_label_histograms_count_each_devices_labels(tiny_model_config, tiny_train, tiny_test):
    learner = make(tiny_model_config, tiny_train, tiny_test)
    hist = learner.label_histograms()
    labels = tiny_train.labels.numpy()
    assert hist.shape == (4, 4) and hist.sum() == sum(len(p) for p in learner.partitions)
    assert hist[1].tolist() == [int((labels[learner.partitions[1]] == c).sum()) for c in range(4)]
