"""Static cell: 10 devices uniform in a 250 m cell, 3GPP UMa NLOS at 3.5 GHz, 20 MHz, Fashion-MNIST Dirichlet(0.5).

The reference setting of the ST-SFLora comparison: devices do not move, so what changes from
round to round is the small-scale fading, and the question is how the token budget, the
bandwidth split and the transmit power should follow each device's path loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from netsim.channel import ChannelConfig
from netsim.mobility import StaticConfig
from netsim.ofdma import OfdmaConfig
from netsim.world import WorldConfig
from scenarios.base import PHONE, ScenarioConfig


def _world() -> WorldConfig:
    return WorldConfig(
        num_devices=10,
        cell_radius_m=250.0,
        ofdma=OfdmaConfig(channel_bandwidth_hz=20e6, subcarrier_spacing_hz=30e3),
        channel=ChannelConfig(pathloss_model="3gpp-uma-nlos", carrier_frequency_hz=3.5e9, fading="rayleigh"),
        mobility=StaticConfig(inner_radius_m=35.0),
        device=PHONE,
    )


@dataclass(frozen=True)
class Config(ScenarioConfig):
    name: str = "static-cell"
    devices: int = 10
    deadline_s: float = 4.0
    world: WorldConfig = field(default_factory=_world)
