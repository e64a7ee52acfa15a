"""The config every scenario shares, and the standard wiring of a World and a Learner.

A scenario file subclasses :class:`ScenarioConfig` with its own defaults (the cell, the
mobility, the data) and usually needs nothing else: :func:`build` turns any config into a
ready :class:`scenarios.cosim.CoSimulation`. The top-level keys ``rounds``, ``devices``,
``policy``, ``seed``, ``deadline_s`` and ``train_samples_per_device`` exist in every scenario, so
any of them can be made small from the command line.

Some nested values follow a top-level one and cannot be set on their own:
``world.num_devices`` follows ``devices``; ``learner.strategy`` (and ``learner.token_policy``
for the policies that fix it) follow ``policy``; ``model.num_classes`` follows ``dataset``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from learning.data import ImageDataset, load_dataset
from learning.partition import dirichlet_partition, iid_partition
from learning.federated import Learner
from learning.pretrain import devices_part, pretrained_backbone
from netsim.energy import DeviceConfig
from netsim.world import World
from scenarios.config import ScenarioConfig
from scenarios.cosim import CoSimulation
from scenarios.policies import policy_class

# A phone's CPU cluster: 1-2.4 GHz, 16 FLOPs per cycle (4 cores x 4-wide FMA), 23 dBm.
PHONE = DeviceConfig(cpu_hz_range=(1.0e9, 2.4e9), flops_per_cycle=16.0)
# A vehicle's compute unit: faster and not battery-bound (a large battery, a larger budget).
VEHICLE = DeviceConfig(cpu_hz_range=(2.0e9, 3.0e9), flops_per_cycle=32.0, energy_budget_j=100.0,
                       battery_j_range=(1.0e6, 2.0e6))


def load_data(cfg: ScenarioConfig) -> tuple[ImageDataset, ImageDataset]:
    """The train and test sets of ``cfg.dataset`` (ValueError naming how to get missing data)."""
    return load_dataset(cfg.dataset, cfg.data_root, image_size=cfg.model.img_size, scenes=cfg.scenes)


def backbone(cfg: ScenarioConfig, status: Callable[[str], None] = lambda m: None,
             train: ImageDataset | None = None, test: ImageDataset | None = None):
    """The backbone weights of ``cfg`` (pretrained once and cached for ``source="own"``)."""
    if cfg.pretrain.source == "own" and train is None:
        train, test = load_data(cfg)
    from scenarios.backbone import save_cache_file

    on_step = None
    if cfg.pretrain.source == "own":  # a damaged cache entry is removed and rebuilt, never loaded
        from learning.pretrain import cache_key, default_cache_dir, split_public
        from scenarios.validate import hashing_saver, remove_damaged_cache_file

        folder = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir()
        key = cache_key(cfg.model, cfg.pretrain, split_public(train, cfg.pretrain)[0])
        message = remove_damaged_cache_file(folder / f"backbone-{key}.pt")
        if message:
            status(message)
        save_cache_file = hashing_saver(save_cache_file)
        if not (folder / f"backbone-{key}.pt").is_file():
            on_step = _announce_pretraining(cfg, folder / f"backbone-{key}.pt", status)
    state, info = pretrained_backbone(cfg.model, cfg.pretrain, train, test, cache_dir=cfg.cache_dir,
                                      return_info=True, save=save_cache_file, on_step=on_step)
    if info.get("accuracy") is not None:
        how = "cached" if info.get("cached") else f"pretrained in {info.get('seconds', float('nan')):.0f} s"
        status(f"backbone: {how}, accuracy {info['accuracy']:.3f} on its held-out set ({info.get('path')})")
    return state


#: Pretraining steps timed before the estimate of the whole is announced.
TIMED_STEPS = 3


def _announce_pretraining(cfg: ScenarioConfig, path: Path, status: Callable[[str], None]):
    """Say that (and where) the backbone is pretrained now, and, once the first
    :data:`TIMED_STEPS` steps are timed on this machine, how long the whole will take.

    Returns:
        The ``on_step(step, total, loss)`` callback that times the steps.
    """
    import time

    status(f"backbone: not cached; pretraining it once ({cfg.pretrain.epochs:g} epochs over "
           f"{cfg.pretrain.public_samples} images), cached in {path} for later runs; "
           f"timing the first {TIMED_STEPS} steps (`sflsim pretrain {cfg.name}` does this ahead of a run)")
    start = time.perf_counter()

    def on_step(step: int, total: int, loss: float) -> None:
        if step == min(TIMED_STEPS, total):
            per_step_s = (time.perf_counter() - start) / step
            status(f"backbone: {per_step_s:.2f} s per step measured here: pretraining takes about "
                   f"{per_step_s * total / 60:.1f} min ({total} steps), once")

    return on_step


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
    policy = policy_class(cfg.policy).from_config(cfg)
    world_ss, data_ss, learner_ss, select_ss, alloc_ss = np.random.SeedSequence(cfg.seed).spawn(5)
    train, test = load_data(cfg)
    if cfg.learner.eval_samples > len(test):
        raise ValueError(f"learner.eval_samples={cfg.learner.eval_samples}: must be <= the {len(test)} "
                         f"images of the {cfg.dataset} test set")
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
    cosim = CoSimulation(cfg, policy, world, learner,
                         select_rng=np.random.default_rng(select_ss), alloc_rng=np.random.default_rng(alloc_ss))
    check_deadline(cfg, cosim)
    return cosim


def check_deadline(cfg: ScenarioConfig, cosim: CoSimulation) -> None:
    """Refuse a deadline no device can meet even with one token and no radio at all."""
    state = cosim.world.channel_state()
    steps = cfg.learner.local_steps
    fastest_s = float(np.min(cosim.costs.full_compute_s(np.asarray(state.cpu_hz), np.asarray(state.flops_per_cycle),
                                                        state.server_flops_per_s, k=1)))
    if fastest_s >= cfg.deadline_s:
        raise ValueError(
            f"deadline_s={cfg.deadline_s:g} is impossible: the fastest device needs {fastest_s:.3g} s "
            f"of computation per round ({steps} local steps) before sending anything"
        )


def _seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint32)[0])
