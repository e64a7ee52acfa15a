"""Pedestrians: 10 people walking (random waypoint, 0.5-1.8 m/s) in a 150 m UMi street-canyon cell with time-correlated fading.

Walking speeds at 3.5 GHz give Doppler frequencies of a few to 20 Hz: the fading decorrelates
over tens of milliseconds, so an upload of a second or more sees many channel states and a fade
in the middle of it slows it down.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from netsim.channel import ChannelConfig
from netsim.mobility import RandomWaypointConfig
from netsim.ofdma import OfdmaConfig
from netsim.world import WorldConfig
from scenarios.base import PHONE, ScenarioConfig


def _world() -> WorldConfig:
    return WorldConfig(
        num_devices=10,
        cell_radius_m=150.0,
        coherence_s=0.01,
        ofdma=OfdmaConfig(channel_bandwidth_hz=20e6, subcarrier_spacing_hz=30e3),
        channel=ChannelConfig(pathloss_model="3gpp-umi-nlos", carrier_frequency_hz=3.5e9, fading="rayleigh"),
        mobility=RandomWaypointConfig(speed_range_mps=(0.5, 1.8), pause_s=2.0),
        device=PHONE,
    )


@dataclass(frozen=True)
class Config(ScenarioConfig):
    name: str = "pedestrians"
    devices: int = 10
    deadline_s: float = 4.0
    world: WorldConfig = field(default_factory=_world)
