"""Highway: 12 vehicles at 60-130 km/h passing a roadside unit (UMi LOS, Rician K=9 dB); vehicles enter and leave the 400 m cell.

At 130 km/h a vehicle crosses the cell in about 20 s, a handful of rounds: devices whose round
cannot finish before they leave are not selected (the reason is recorded), and those that leave
mid-round are dropped from aggregation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from netsim.channel import ChannelConfig
from netsim.mobility import HighwayConfig
from netsim.ofdma import OfdmaConfig
from netsim.world import WorldConfig
from scenarios.base import VEHICLE, ScenarioConfig


def _world() -> WorldConfig:
    return WorldConfig(
        num_devices=12,
        cell_radius_m=400.0,
        coherence_s=0.005,
        ofdma=OfdmaConfig(channel_bandwidth_hz=20e6, subcarrier_spacing_hz=30e3),
        channel=ChannelConfig(pathloss_model="3gpp-umi-los", carrier_frequency_hz=5.9e9,
                              fading="rician", rician_k_db=9.0),
        mobility=HighwayConfig(lanes=4, offset_m=30.0, speed_range_kmh=(60.0, 130.0), start_in_cell=False),
        device=VEHICLE,
    )


@dataclass(frozen=True)
class Config(ScenarioConfig):
    name: str = "highway"
    devices: int = 12
    deadline_s: float = 3.0
    world: WorldConfig = field(default_factory=_world)
