"""Dense cell: 100 devices in a 250 m UMa cell, 20 % sampled each round; shows the bandwidth split at scale.

With 20 devices per round on 20 MHz each gets about 1 MHz: the allocation decides who gets more
of the band, and how many tokens each can afford, under one common deadline.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from netsim.channel import ChannelConfig
from netsim.mobility import StaticConfig
from netsim.ofdma import OfdmaConfig
from netsim.world import WorldConfig
from scenarios.base import ScenarioConfig


def _world() -> WorldConfig:
    return WorldConfig(
        num_devices=100,
        cell_radius_m=250.0,
        ofdma=OfdmaConfig(channel_bandwidth_hz=20e6, subcarrier_spacing_hz=30e3),
        channel=ChannelConfig(pathloss_model="3gpp-uma-nlos", carrier_frequency_hz=3.5e9, fading="rayleigh"),
        mobility=StaticConfig(inner_radius_m=35.0),
    )


@dataclass(frozen=True)
class Config(ScenarioConfig):
    name: str = "dense-cell"
    devices: int = 100
    sample_fraction: float = 0.2
    train_samples_per_device: int = 300
    world: WorldConfig = field(default_factory=_world)
