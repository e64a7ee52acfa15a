"""The config every scenario shares: its fields, each with a help text and a unit.

``sflsim show SCENARIO`` prints every key with its value, unit and help (field metadata, as
peft's configs carry theirs).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from learning.federated import LearnerConfig
from learning.pretrain import PretrainConfig
from learning.scenes import SceneConfig
from learning.split_vit import SplitViTConfig
from netsim.world import WorldConfig
from scenarios.policies import default_policy, policy_class

DATASET_CLASSES = {"fashion-mnist": 10, "fashion-scenes": 10, "cifar10": 10, "cifar100": 100}
DATASETS = ("fashion-mnist", "fashion-scenes", "cifar10", "cifar100", "imagefolder")
PARTITIONS = ("dirichlet", "iid")

# Nested keys that follow a top-level key (see ScenarioConfig).
DERIVED_KEYS = {
    "world.num_devices": "devices",
    "learner.strategy": "policy",
    "learner.per_device_cut": "policy",
    "model.num_classes": "dataset",
}
#: The field holding the chosen policy's parameters; its keys are ``<policy name>.<param>``.
POLICY_PARAMS = "policy_params"


def _f(default: Any = dataclasses.MISSING, help: str = "", unit: str = "", **kw: Any):
    return field(default=default, metadata={"help": help, "unit": unit}, **kw)


@dataclass(frozen=True)
class PlanningConfig:
    """What the policy is told about the channel and the costs when it plans a round.

    The world times every transfer with the fading of each 10 ms block; the plan is made once,
    at the round start. Planning with the instantaneous gain makes every device whose channel
    happened to be good at that instant promise more than it can deliver, and the min-max
    allocation packs every device right up to the deadline, so the margins matter. Under
    Rayleigh fading at high SNR, E[log2(1 + s|h|^2)] = log2(s) - 0.83 bit, about a 2.5 dB loss:
    the ``large-scale`` plan covers it with ``fading_margin_db``; the ``expected`` plan has it
    inside (the expected capped rate over each device's fading, LOS or NLOS), so its margin is 0.
    """

    channel: str = _f("large-scale", "planned gain: large-scale (path loss + shadowing), expected "
                      "(expected capped rate over the fading) or instantaneous")
    fading_margin_db: float = _f(3.0, "the planned gain is this much below the channel's", "dB")
    deadline_margin: float = _f(0.9, "the plan aims to finish within this fraction of the deadline")
    energy_margin: float = _f(1.0, "the plan spends at most this fraction of the energy a device may transmit with "
                              "(its round budget less its compute energy)")
    passes: int = _f(1, "with channel=expected: decide again with the gain at the decided bandwidth and power",
                     "passes")
    costs: str = _f("two-point", "per-step costs over K: two-point (line through K=1 and K_max) or exact "
                    "(the learner's cost at every K)")
    whole_rbs: bool = _f(False, "round each decided bandwidth to whole resource blocks")
    retention: str = _f("probe", "retention curves f(K) from: probe (a fixed batch per device) or round "
                        "(the batches the device trains on this round)")

    def __post_init__(self) -> None:
        if self.channel not in ("large-scale", "instantaneous", "expected"):
            raise ValueError(f"channel must be 'large-scale', 'expected' or 'instantaneous', got {self.channel!r}")
        if not (math.isfinite(self.fading_margin_db) and self.fading_margin_db >= 0):
            raise ValueError(f"fading_margin_db must be a finite number >= 0, got {self.fading_margin_db!r}")
        if not 0 < self.deadline_margin <= 1:
            raise ValueError(f"deadline_margin must be in (0, 1], got {self.deadline_margin!r}")
        if not self.fading_margin_db <= 60:
            raise ValueError(f"fading_margin_db must be in [0, 60] dB, got {self.fading_margin_db!r}")
        if not 0 < self.energy_margin <= 1:
            raise ValueError(f"energy_margin must be in (0, 1], got {self.energy_margin!r}")
        if isinstance(self.passes, bool) or not isinstance(self.passes, int) or not 1 <= self.passes <= 5:
            raise ValueError(f"passes must be an integer in [1, 5], got {self.passes!r}")
        if self.costs not in ("two-point", "exact"):
            raise ValueError(f"costs must be 'two-point' or 'exact', got {self.costs!r}")
        if self.retention not in ("probe", "round"):
            raise ValueError(f"retention must be 'probe' or 'round', got {self.retention!r}")
        if not isinstance(self.whole_rbs, bool):
            raise ValueError(f"whole_rbs must be true or false, got {self.whole_rbs!r}")


@dataclass(frozen=True)
class ScenarioConfig:
    """Settings shared by every scenario (subclasses change the defaults).

    Some nested values follow a top-level one (:data:`DERIVED_KEYS`): ``world.num_devices``
    follows ``devices``; ``learner.strategy`` (and ``learner.token_policy`` for the policies
    that fix it) follow ``policy``; ``model.num_classes`` follows ``dataset``. Scenarios train
    with SGD (momentum 0.9, lr 0.02), fresh each round: on the default run it reached 0.585
    after 8 rounds where AdamW (lr 3e-3) plateaued at 0.53.
    """

    name: str = _f("custom", "scenario name (recorded in the run)")
    rounds: int = _f(10, "federated rounds after the starting evaluation", "rounds")
    devices: int = _f(10, "devices in the world (N)", "devices")
    policy: str = _f(help="a registered policy (sflsim list --policies) or path/to/file.py:Class",
                     default_factory=default_policy)
    seed: int = _f(0, "the one seed of the run; same seed and config give identical files")
    deadline_s: float = _f(3.0, "per-round deadline from the round start", "s")
    train_samples_per_device: int = _f(500, "cap on each device's local data set", "samples")
    sample_fraction: float = _f(1.0, "fraction of the eligible devices picked each round")
    eval_every: int = _f(1, "evaluate every this many rounds (and at the end)", "rounds")
    keep_ratio: float = _f(0.25, "share of the patch tokens fixed-ratio policies keep")
    token_maps: int = _f(4, "examples of kept-token maps saved in the first and last round", "images")
    dataset: str = _f("fashion-mnist", "fashion-mnist, fashion-scenes (cluttered), cifar10, cifar100 or imagefolder")
    scenes: SceneConfig = _f(help="how fashion-scenes images are made (canvas, clutter, item scale)",
                             default_factory=SceneConfig)
    data_root: Optional[str] = _f(None, "folder of the data set (default: the data set's own search order)")
    partition: str = _f("dirichlet", "label split over devices: dirichlet (label skew) or iid")
    dirichlet_alpha: float = _f(0.5, "concentration of the Dirichlet label split (smaller: more skew)")
    min_samples_per_device: int = _f(16, "each device gets at least this many samples", "samples")
    cache_dir: Optional[str] = _f(None, "backbone cache (default $SFLSIM_CACHE or ~/.cache/sflsim)")
    planning: PlanningConfig = _f(help="what the policy is told about the channel", default_factory=PlanningConfig)
    world: WorldConfig = _f(help="the cell, radio, mobility, devices and server", default_factory=WorldConfig)
    model: SplitViTConfig = _f(help="the ViT, its cut and its LoRA", default_factory=SplitViTConfig)
    learner: LearnerConfig = _f(help="local training, token selection, quantisation, evaluation",
                                default_factory=lambda: LearnerConfig(optimizer="sgd", lr=0.02))
    pretrain: PretrainConfig = _f(help="where the backbone weights come from", default_factory=PretrainConfig)
    policy_params: Any = _f(None, "the chosen policy's parameters (its params_type), set as --set "
                            "<policy name>.<param>=...; None builds its defaults")

    def __post_init__(self) -> None:
        for name in ("rounds", "devices", "train_samples_per_device", "eval_every", "min_samples_per_device"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.token_maps < 0:
            raise ValueError(f"token_maps must be >= 0, got {self.token_maps!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        policy = policy_class(self.policy)  # ValueError naming the valid policies
        self._check_policy_params(policy)
        if not (isinstance(self.deadline_s, (int, float)) and math.isfinite(self.deadline_s) and self.deadline_s > 0):
            raise ValueError(f"deadline_s must be a finite number > 0, got {self.deadline_s!r}")
        if not 0 < self.sample_fraction <= 1:
            raise ValueError(f"sample_fraction must be in (0, 1], got {self.sample_fraction!r}")
        if not 0 < self.keep_ratio <= 1:
            raise ValueError(f"keep_ratio must be in (0, 1], got {self.keep_ratio!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {', '.join(PARTITIONS)}, got {self.partition!r}")
        if not (math.isfinite(self.dirichlet_alpha) and self.dirichlet_alpha > 0):
            raise ValueError(f"dirichlet_alpha must be a finite number > 0, got {self.dirichlet_alpha!r}")
        if self.min_samples_per_device > self.train_samples_per_device:
            raise ValueError(
                f"min_samples_per_device must be <= train_samples_per_device={self.train_samples_per_device}, "
                f"got {self.min_samples_per_device!r}"
            )
        # Plausibility: beyond these a value is a typo (a run that never ends, a seed torch refuses).
        for name, high in (("rounds", 1_000_000), ("devices", 100_000), ("deadline_s", 1e6),
                           ("train_samples_per_device", 10_000_000), ("eval_every", 1_000_000),
                           ("token_maps", 10_000), ("dirichlet_alpha", 1e6), ("seed", 2**63 - 1)):
            if not getattr(self, name) <= high:
                raise ValueError(f"{name} must be <= {high:g}, got {getattr(self, name)!r}")
        if not self.name.strip():
            raise ValueError(f"name must be a non-empty text, got {self.name!r}")
        # Derived values follow their top-level key (checked against user edits in overrides).
        learner = self.learner
        token_policy = policy.token_policy or learner.token_policy
        per_device_cut = bool(policy.chooses_cut)
        if (learner.strategy != policy.strategy or learner.token_policy != token_policy
                or learner.per_device_cut != per_device_cut):
            learner = dataclasses.replace(learner, strategy=policy.strategy, token_policy=token_policy,
                                          per_device_cut=per_device_cut)
        object.__setattr__(self, "learner", learner)
        if self.world.num_devices != self.devices:
            object.__setattr__(self, "world", dataclasses.replace(self.world, num_devices=self.devices))
        classes = DATASET_CLASSES.get(self.dataset)
        if classes is not None and self.model.num_classes != classes:
            object.__setattr__(self, "model", dataclasses.replace(self.model, num_classes=classes))

    def _check_policy_params(self, policy: type) -> None:
        """The chosen policy's parameters: its ``params_type`` (defaults when None), or None."""
        params, kind = self.policy_params, policy.params_type
        if kind is None:
            if params is not None:
                raise ValueError(f"policy {policy.name} takes no parameters, got {params!r}")
            return
        if policy.name in {f.name for f in dataclasses.fields(self)}:
            raise ValueError(f"policy name {policy.name!r} is also a config key; rename the policy")
        if params is None:
            object.__setattr__(self, POLICY_PARAMS, kind())
        elif type(params) is not kind:
            raise ValueError(f"the parameters of policy {policy.name} must be a {kind.__name__}, "
                             f"got {type(params).__name__}")

