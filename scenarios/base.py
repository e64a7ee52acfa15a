"""The config every scenario shares, and the standard wiring of a World and a Learner.

A scenario file subclasses :class:`ScenarioConfig` with its own defaults (the cell, the
mobility, the data) and usually needs nothing else: :func:`build` turns any config into a
ready :class:`scenarios.cosim.CoSimulation`. The top-level keys ``rounds``, ``devices``,
``policy``, ``seed``, ``deadline_s`` and ``train_samples_per_device`` exist in every scenario, so
any of them can be made small from the command line.

Some nested values follow a top-level one and cannot be set on their own:
``world.num_devices`` follows ``devices``; ``learner.variant`` (and ``learner.token_policy``
for the policies that fix it) follow ``policy``; ``model.num_classes`` follows ``dataset``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from learning.data import ImageDataset, dirichlet_partition, iid_partition, load_dataset
from learning.federated import Learner, LearnerConfig
from learning.pretrain import PretrainConfig, devices_part, pretrained_backbone
from learning.split_vit import SplitViTConfig
from netsim.energy import DeviceConfig
from netsim.world import World, WorldConfig
from scenarios.cosim import CoSimulation
from scenarios.policies import POLICIES, policy_spec

DATASET_CLASSES = {"fashion-mnist": 10, "cifar10": 10, "cifar100": 100}
DATASETS = ("fashion-mnist", "cifar10", "cifar100", "imagefolder")
PARTITIONS = ("dirichlet", "iid")

# A phone's CPU cluster: 1-2.4 GHz, 16 FLOPs per cycle (4 cores x 4-wide FMA), 23 dBm.
PHONE = DeviceConfig(cpu_hz_range=(1.0e9, 2.4e9), flops_per_cycle=16.0)
# A vehicle's compute unit: faster and not battery-bound (a large battery, a larger budget).
VEHICLE = DeviceConfig(cpu_hz_range=(2.0e9, 3.0e9), flops_per_cycle=32.0, energy_budget_j=100.0,
                       battery_j_range=(1.0e6, 2.0e6))

# Nested keys that follow a top-level key (see the module docstring).
DERIVED_KEYS = {
    "world.num_devices": "devices",
    "learner.variant": "policy",
    "model.num_classes": "dataset",
}


@dataclass(frozen=True)
class PlanningConfig:
    """What the allocation policy is told about the channel when it plans a round.

    The world times every transfer with the fading of each 10 ms block; the plan is made once,
    at the round start. Planning with the instantaneous gain makes every device whose channel
    happened to be good at that instant promise more than it can deliver, and the min-max
    allocation packs every device right up to the deadline, so the margins matter.

    Attributes:
        channel: ``large-scale`` (path loss and shadowing; fading averaged out) or
            ``instantaneous`` (the gain at the round start, fading included).
        fading_margin_db: the planned gain is this much below ``channel``'s. Under Rayleigh
            fading at high SNR, E[log2(1 + s|h|^2)] = log2(s) - 0.83 bit, about a 2.5 dB loss.
        deadline_margin: the plan aims to finish within this fraction of the deadline.
    """

    channel: str = "large-scale"
    fading_margin_db: float = 3.0
    deadline_margin: float = 0.9

    def __post_init__(self) -> None:
        if self.channel not in ("large-scale", "instantaneous"):
            raise ValueError(f"channel must be 'large-scale' or 'instantaneous', got {self.channel!r}")
        if not (math.isfinite(self.fading_margin_db) and self.fading_margin_db >= 0):
            raise ValueError(f"fading_margin_db must be a finite number >= 0, got {self.fading_margin_db!r}")
        if not 0 < self.deadline_margin <= 1:
            raise ValueError(f"deadline_margin must be in (0, 1], got {self.deadline_margin!r}")


@dataclass(frozen=True)
class ScenarioConfig:
    """Settings shared by every scenario (subclasses change the defaults).

    Attributes:
        name: scenario name (recorded in the run).
        rounds: federated rounds after the starting evaluation.
        devices: devices in the world (N).
        policy: one of :data:`scenarios.policies.POLICIES`.
        seed: the one seed of the run; the same seed and config give identical files.
        deadline_s: per-round deadline in simulated seconds, from the round start.
        train_samples_per_device: cap on each device's local data set (its Dirichlet share).
        sample_fraction: fraction of the eligible devices picked each round (client sampling).
        eval_every: evaluate the aggregated model every this many rounds (and at the end).
        keep_ratio: share of tokens the ``equal`` policy keeps.
        token_maps: examples of kept-token maps saved in the first and the last round.
        dataset: ``fashion-mnist``, ``cifar10``, ``cifar100`` or ``imagefolder``.
        data_root: folder of the data set (default: the data set's own search order).
        partition: ``dirichlet`` (label skew) or ``iid``.
        dirichlet_alpha: concentration of the Dirichlet label split (smaller: more skew).
        min_samples_per_device: each device gets at least this many samples.
        cache_dir: pretrained backbone cache (default ``$SFLSIM_CACHE`` or ``~/.cache/sflsim``).
        planning: what the allocation is told about the channel (margins).
        world: the cell, radio, mobility, devices and server.
        model: the ViT, its cut and its LoRA.
        learner: local training, token selection, quantisation, evaluation. Scenarios train
            with SGD (momentum 0.9, lr 0.02), fresh each round: on the default run it reached
            0.585 after 8 rounds where AdamW (lr 3e-3) plateaued at 0.53.
        pretrain: where the backbone weights come from.
    """

    name: str = "custom"
    rounds: int = 10
    devices: int = 10
    policy: str = "st-sflora"
    seed: int = 0
    deadline_s: float = 3.0
    train_samples_per_device: int = 500
    sample_fraction: float = 1.0
    eval_every: int = 1
    keep_ratio: float = 0.25
    token_maps: int = 4
    dataset: str = "fashion-mnist"
    data_root: Optional[str] = None
    partition: str = "dirichlet"
    dirichlet_alpha: float = 0.5
    min_samples_per_device: int = 16
    cache_dir: Optional[str] = None
    planning: PlanningConfig = field(default_factory=PlanningConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    model: SplitViTConfig = field(default_factory=SplitViTConfig)
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(optimizer="sgd", lr=0.02))
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        for name in ("rounds", "devices", "train_samples_per_device", "eval_every", "min_samples_per_device"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.token_maps < 0:
            raise ValueError(f"token_maps must be >= 0, got {self.token_maps!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
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
        # Derived values follow their top-level key (checked against user edits in overrides).
        spec = policy_spec(self.policy)
        learner = self.learner
        token_policy = learner.token_policy if spec.token_policy == "semantic" else spec.token_policy
        if learner.variant != spec.learner_variant or learner.token_policy != token_policy:
            learner = dataclasses.replace(learner, variant=spec.learner_variant, token_policy=token_policy)
        object.__setattr__(self, "learner", learner)
        if self.world.num_devices != self.devices:
            object.__setattr__(self, "world", dataclasses.replace(self.world, num_devices=self.devices))
        classes = DATASET_CLASSES.get(self.dataset)
        if classes is not None and self.model.num_classes != classes:
            object.__setattr__(self, "model", dataclasses.replace(self.model, num_classes=classes))


def load_data(cfg: ScenarioConfig) -> tuple[ImageDataset, ImageDataset]:
    """The train and test sets of ``cfg.dataset`` (ValueError naming how to get missing data)."""
    return load_dataset(cfg.dataset, cfg.data_root, image_size=cfg.model.img_size)


def backbone(cfg: ScenarioConfig, status: Callable[[str], None] = lambda m: None,
             train: ImageDataset | None = None, test: ImageDataset | None = None):
    """The backbone weights of ``cfg`` (pretrained once and cached for ``source="own"``)."""
    if cfg.pretrain.source == "own" and train is None:
        train, test = load_data(cfg)
    if cfg.pretrain.source == "own":
        status("backbone: loading the pretrained backbone (pretraining it first if it is not cached; ~1 min on 2 cores)")
    from scenarios.backbone import save_cache_file

    state, info = pretrained_backbone(cfg.model, cfg.pretrain, train, test, cache_dir=cfg.cache_dir,
                                      return_info=True, save=save_cache_file)
    if info.get("accuracy") is not None:
        how = "cached" if info.get("cached") else f"pretrained in {info.get('seconds', float('nan')):.0f} s"
        status(f"backbone: {how}, accuracy {info['accuracy']:.3f} on its held-out set ({info.get('path')})")
    return state


def partitions(cfg: ScenarioConfig, labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Each device's indices into the private training set, capped at ``train_samples_per_device``."""
    n = cfg.devices
    if cfg.min_samples_per_device * n > len(labels):
        raise ValueError(
            f"devices={n} x min_samples_per_device={cfg.min_samples_per_device} exceeds the "
            f"{len(labels)} private training samples"
        )
    if cfg.partition == "iid":
        parts = iid_partition(len(labels), n, rng)
    else:
        parts = dirichlet_partition(labels, n, cfg.dirichlet_alpha, rng, min_samples=cfg.min_samples_per_device)
    capped = []
    for p in parts:
        p = np.asarray(p, dtype=np.int64)
        if len(p) > cfg.train_samples_per_device:
            p = np.sort(rng.choice(p, cfg.train_samples_per_device, replace=False))
        capped.append(p)
    return capped


def build(cfg: ScenarioConfig, status: Callable[[str], None] = lambda m: None) -> CoSimulation:
    """Wire the World and the Learner of ``cfg`` into a :class:`CoSimulation`.

    Streams of randomness: ``SeedSequence(cfg.seed)`` spawns one child each for the world, the
    data split, the learner, client selection and allocation draws, so changing one concern's
    model leaves the others' draws alone.
    """
    spec = policy_spec(cfg.policy)
    world_ss, data_ss, learner_ss, select_ss, alloc_ss = np.random.SeedSequence(cfg.seed).spawn(5)
    train, test = load_data(cfg)
    if cfg.dataset == "imagefolder" and train.num_classes != cfg.model.num_classes:
        raise ValueError(
            f"model.num_classes must equal the {train.num_classes} class folders of data_root, "
            f"got {cfg.model.num_classes}: --set model.num_classes={train.num_classes}"
        )
    state = backbone(cfg, status, train, test)
    private = devices_part(train, cfg.pretrain)
    parts = partitions(cfg, private.labels.numpy(), np.random.default_rng(data_ss))
    learner = Learner(cfg.model, cfg.learner, private, test, parts, seed=_seed(learner_ss), backbone_state=state)
    world = World(cfg.world, seed=_seed(world_ss))
    cosim = CoSimulation(cfg, spec, world, learner,
                         select_rng=np.random.default_rng(select_ss), alloc_rng=np.random.default_rng(alloc_ss))
    check_deadline(cfg, cosim)
    return cosim


def check_deadline(cfg: ScenarioConfig, cosim: CoSimulation) -> None:
    """Refuse a deadline no device can meet even with one token and no radio at all."""
    state = cosim.world.channel_state()
    speed = np.asarray(state.cpu_hz) * np.asarray(state.flops_per_cycle)
    steps = cfg.learner.local_steps
    fastest_s = float(np.min(steps * (cosim.device(1) / speed + cosim.server(1) / state.server_flops_per_s)))
    if fastest_s >= cfg.deadline_s:
        raise ValueError(
            f"deadline_s={cfg.deadline_s:g} is impossible: the fastest device needs {fastest_s:.3g} s "
            f"of computation per round ({steps} local steps) before sending anything"
        )


def _seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint32)[0])
