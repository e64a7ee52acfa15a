"""Retention curves of the round's own batches: the batches training then uses, stream untouched."""
import numpy as np
import torch

from learning.federated import Learner, LearnerConfig
from learning.round_retention import round_retention
from learning.tokens import patch_importance, retention_curve


def _learner(cfg, train, test, steps=3):
    parts = [np.arange(0, 100), np.arange(100, 230)]
    return Learner(cfg, LearnerConfig(local_steps=steps, batch_size=16, probe_samples=8, eval_samples=32), train, test,
                   parts, seed=5)


def test_round_retention_scores_the_batches_training_uses(tiny_model_config, tiny_train, tiny_test):
    learner = _learner(tiny_model_config, tiny_train, tiny_test)
    curves = round_retention(learner, [1, 0])
    assert curves.shape == (2, learner.num_patches + 1)
    assert np.all(curves[:, 0] == 0) and np.all(curves[:, -1] == 1) and np.all(np.diff(curves, axis=1) >= 0)
    # the same batches, drawn independently: a copy of the learner's stream from the same seed
    twin = _learner(tiny_model_config, tiny_train, tiny_test)
    expect = []
    twin.model.eval()
    with torch.no_grad():
        for _ in range(3):
            x, _ = tiny_train.batch(twin._streams[1].next(16))
            tokens, attn = twin.model.device_forward(x)
            expect.append(retention_curve(patch_importance(attn, twin.model.num_prefix_tokens), "semantic", "batch",
                                          tokens))
    np.testing.assert_allclose(curves[0], np.mean(expect, axis=0), rtol=1e-12)
    # not the probe batch's curve
    assert not np.allclose(curves, learner.retention([1, 0]))
    # training after it is training without it (the stream was restored)
    plain = _learner(tiny_model_config, tiny_train, tiny_test)
    a = learner.train_round([0, 1], 5)
    b = plain.train_round([0, 1], 5)
    assert [r.loss for r in a] == [r.loss for r in b]
