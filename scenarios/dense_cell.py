"""Dense cell: 100 devices in the static cell's 250 m UMa cell, 20 % sampled each round; shows the bandwidth split at scale.

With 20 devices per round on 20 MHz each gets about 1 MHz: the allocation decides who gets more
of the band, and how many tokens each can afford, under one common deadline.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from netsim.world import WorldConfig
from scenarios import static_cell
from scenarios.base import ScenarioConfig


def _world() -> WorldConfig:
    return dataclasses.replace(static_cell.Config().world, num_devices=100)


@dataclass(frozen=True)
class Config(ScenarioConfig):
    name: str = "dense-cell"
    devices: int = 100
    sample_fraction: float = 0.2
    train_samples_per_device: int = 300
    deadline_s: float = 5.0
    world: WorldConfig = field(default_factory=_world)
