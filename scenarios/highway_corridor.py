"""Highway corridor: 12 vehicles at 60-130 km/h pass six roadside units every 500 m along a 3 km ring road; split sessions are handed over.

Each roadside unit is a cell with its own edge server (UMi LOS at 5.9 GHz, Rician K = 9 dB,
20 MHz each, reuse 1: neighbouring units interfere). The road is a 3 km ring, so a vehicle never
leaves the corridor: at 60-130 km/h it crosses a cell in 14-30 s, a few rounds, and hands over
by the 3GPP A3 event (offset 3 dB, hysteresis 1 dB, time to trigger 160 ms). A vehicle that
changes cell in the middle of a round has its server-side state (its server adapters and the
activations in flight) moved to the new unit over a 1 Gbit/s, 5 ms backhaul before its server
phase and downlink go on (``--set world.cells.handover.policy=drop`` drops it from the round
instead). Every handover of a round is a ``handover`` row of ``events.parquet`` with its bits
and backhaul seconds; transfers carry ``sinr_db``, ``interference_w`` and ``cell``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from netsim.cellconfig import CellsConfig
from netsim.channel import ChannelConfig
from netsim.handover import HandoverConfig
from netsim.layout import LayoutConfig
from netsim.mobility import HighwayConfig
from netsim.ofdma import OfdmaConfig
from netsim.world import WorldConfig
from scenarios.base import VEHICLE, ScenarioConfig

UNITS = 6
SPACING_M = 500.0


def _world() -> WorldConfig:
    return WorldConfig(
        num_devices=12,
        cell_radius_m=SPACING_M / 2,
        coherence_s=0.005,
        ofdma=OfdmaConfig(channel_bandwidth_hz=20e6, subcarrier_spacing_hz=30e3),
        channel=ChannelConfig(pathloss_model="3gpp-umi-los", carrier_frequency_hz=5.9e9,
                              fading="rician", rician_k_db=9.0),
        # Lanes 10-20.5 m from the line of units; the ring road is as long as the corridor.
        mobility=HighwayConfig(lanes=4, offset_m=10.0, speed_range_kmh=(60.0, 130.0), start_in_cell=False),
        device=VEHICLE,
        cells=CellsConfig(
            enabled=True,
            layout=LayoutConfig(kind="line", num_sites=UNITS, isd_m=SPACING_M, wrap_around=True),
            reuse=1,
            handover=HandoverConfig(offset_db=3.0, hysteresis_db=1.0, time_to_trigger_s=0.16, policy="migrate",
                                    backhaul_bps=1e9, backhaul_latency_s=0.005),
        ),
    )


@dataclass(frozen=True)
class Config(ScenarioConfig):
    name: str = "highway-corridor"
    devices: int = 12
    deadline_s: float = 3.0
    world: WorldConfig = field(default_factory=_world)
