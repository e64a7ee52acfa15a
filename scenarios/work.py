"""The work a config asks for, estimated before anything is written, and the bound on it.

A run's cost grows with three counts, each known from the config alone:

* **channel updates**: the world redraws every device's channel once per block
  (``world.coherence_s``), per resource block with ``per_rb_fading``; a round lasts at most
  its ``deadline_s``, so a run simulates at most ``rounds x deadline_s`` seconds;
* **training samples**: ``rounds x devices x local_steps x batch_size`` samples through the
  model (forward and backward), plus the pretraining passes when the backbone is trained here
  (``pretrain.source=own``: ``epochs x public_samples``);
* **evaluation samples**: ``eval_samples`` test images at every evaluation (the start, every
  ``eval_every`` rounds, the end).

:func:`check_work` refuses a config over any bound in one line naming the count, the keys it
comes from and the bound, unless the user says ``--force``. The bounds are far above anything
useful on one machine (the default run is 4e4 channel updates, 1.6e4 training samples, 1.1e4
evaluation samples): they catch typos such as ``coherence_s=1e-9`` or ``rounds=1e9``.
"""
from __future__ import annotations

import math

from scenarios.config import ScenarioConfig
from scenarios.overrides import ConfigError

#: Channel updates (device x block, x resource block with per-RB fading) per run.
MAX_CHANNEL_UPDATES = 1e9
#: Samples through the model in training and pretraining (forward and backward) per run.
MAX_TRAIN_SAMPLES = 1e8
#: Samples through the model in evaluation per run.
MAX_EVAL_SAMPLES = 1e8


LABELS = {"channel_updates": "channel updates", "train_samples": "training samples",
          "eval_samples": "evaluation samples"}


def estimate(cfg: ScenarioConfig) -> dict[str, float]:
    """Upper estimates of the counts of a run of ``cfg`` (see the module docstring)."""
    world = cfg.world
    simulated_s = cfg.rounds * cfg.deadline_s
    per_block = world.num_devices * (world.ofdma.num_rb if world.channel.per_rb_fading else 1)
    evaluations = cfg.rounds // cfg.eval_every + 2
    pretrain = 0.0
    if cfg.pretrain.source == "own":
        pretrain = cfg.pretrain.epochs * cfg.pretrain.public_samples
    return {
        "channel_updates": math.ceil(simulated_s / world.coherence_s) * per_block,
        "train_samples": float(cfg.rounds * world.num_devices * cfg.learner.local_steps
                               * cfg.learner.batch_size + pretrain),
        "eval_samples": float(evaluations * cfg.learner.eval_samples),
    }


def check_work(cfg: ScenarioConfig) -> None:
    """Refuse a config whose work is over a bound (the caller skips this with ``--force``).

    Raises:
        ConfigError: one line naming the count, its value, the keys it comes from and the bound.
    """
    work = estimate(cfg)
    w = cfg.world
    rules = (
        ("channel_updates", MAX_CHANNEL_UPDATES,
         f"rounds={cfg.rounds} x deadline_s={cfg.deadline_s:g} / world.coherence_s={w.coherence_s:g} "
         f"x devices={w.num_devices}" + (f" x {w.ofdma.num_rb} resource blocks (per_rb_fading)"
                                         if w.channel.per_rb_fading else "")),
        ("train_samples", MAX_TRAIN_SAMPLES,
         f"rounds={cfg.rounds} x devices={w.num_devices} x learner.local_steps={cfg.learner.local_steps} "
         f"x learner.batch_size={cfg.learner.batch_size}"
         + (f" + pretrain.epochs={cfg.pretrain.epochs:g} x pretrain.public_samples={cfg.pretrain.public_samples}"
            if cfg.pretrain.source == "own" else "")),
        ("eval_samples", MAX_EVAL_SAMPLES,
         f"{cfg.rounds // cfg.eval_every + 2} evaluations x learner.eval_samples={cfg.learner.eval_samples}"),
    )
    for name, bound, source in rules:
        if work[name] > bound:
            raise ConfigError(f"the run would make {work[name]:.3g} {LABELS[name]} ({source}), "
                              f"more than the bound of {bound:.0e}; check the values, or pass --force")


__all__ = ["MAX_CHANNEL_UPDATES", "MAX_TRAIN_SAMPLES", "MAX_EVAL_SAMPLES", "estimate", "check_work"]
