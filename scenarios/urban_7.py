"""Urban 7: seven hexagonal sites (ISD 500 m, wrap-around), reuse 1, 20 phones per cell, the paper-cell radio otherwise.

Every site is a 50 MHz cell at 3.5 GHz (TR 38.901 UMa NLOS, 6 dB shadowing with 0.5
inter-site correlation, Rayleigh fading) with its own edge server; all seven reuse the whole
band, so a cell-edge phone's uplink meets the interference of the phones the neighbouring cells
schedule on the same resource blocks at the same time. Wrap-around (TR 36.814 A.2.1.1) gives
every cell a full ring of neighbours. Phones are static, uniform in their hexagon (at least
10 m from the site), and served by the strongest site. Each cell's policy decides for its own
selected phones over its own band, and plans with the mean interference its site measured in
the last round (``world.cells.planning_interference``). Devices, compute and energy budgets,
the model and the learning are the paper cell's; the planned channel is the expected capped
rate over Rayleigh fading, in one pass (a second pass would drop the interference term).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from learning.federated import LearnerConfig
from learning.pretrain import PretrainConfig
from learning.split_vit import SplitViTConfig
from netsim.cellconfig import CellsConfig
from netsim.channel import ChannelConfig
from netsim.energy import DeviceConfig
from netsim.layout import LayoutConfig
from netsim.mobility import StaticConfig
from netsim.ofdma import OfdmaConfig
from netsim.world import WorldConfig
from scenarios.base import ScenarioConfig
from scenarios.config import PlanningConfig

SITES = 7
PER_CELL = 20
ISD_M = 500.0


def _world() -> WorldConfig:
    return WorldConfig(
        num_devices=SITES * PER_CELL,
        cell_radius_m=ISD_M / 3**0.5,
        coherence_s=0.01,
        ofdma=OfdmaConfig(channel_bandwidth_hz=50e6, subcarrier_spacing_hz=30e3),
        channel=ChannelConfig(pathloss_model="3gpp-uma-nlos", carrier_frequency_hz=3.5e9, fading="rayleigh"),
        mobility=StaticConfig(inner_radius_m=10.0),
        device=DeviceConfig(cpu_hz_range=(1.0e9, 2.4e9), flops_per_cycle=16.0, kappa=1e-28, max_tx_power_dbm=23.0,
                            energy_budget_j_range=(0.067, 0.2)),
        cells=CellsConfig(enabled=True, layout=LayoutConfig(kind="hex", num_sites=SITES, isd_m=ISD_M, wrap_around=True),
                          reuse=1),
    )


@dataclass(frozen=True)
class Config(ScenarioConfig):
    name: str = "urban-7"
    devices: int = SITES * PER_CELL
    sample_fraction: float = 0.5
    deadline_s: float = 2.0
    planning: PlanningConfig = field(default_factory=lambda: PlanningConfig(
        channel="expected", fading_margin_db=0.0, deadline_margin=0.9, energy_margin=0.97, passes=1,
        costs="exact", retention="round"))
    world: WorldConfig = field(default_factory=_world)
    model: SplitViTConfig = field(default_factory=lambda: SplitViTConfig(embed_dim=128, depth=6, num_heads=4, cut=3,
                                                                         stem="conv"))
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(optimizer="sgd", lr=0.02, local_steps=2,
                                                                         batch_size=16, eval_batch_size=100))
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig(source="shipped", keep_head=True))
