"""The configuration of a World: the cell's size and channel block, composed of the parts' configs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.cellconfig import CellsConfig
from netsim.channel import ChannelConfig
from netsim.energy import DeviceConfig, ServerConfig
from netsim.mobility import MobilityConfig, StaticConfig
from netsim.ofdma import OfdmaConfig


#: Shortest channel block, s: one 5G NR slot at numerology 4 (240 kHz subcarrier spacing: 14
#: symbols in 62.5 us; TS 38.211 Table 4.3.2-1). A scheduler sees no channel change within a
#: slot, so a shorter block is a typo (1e-12 would mean 4e14 updates in a 10-round run).
MIN_COHERENCE_S = 62.5e-6


@dataclass(frozen=True)
class WorldConfig:
    """Everything that defines a World (with the seed).

    Attributes:
        num_devices: Number of devices N.
        cell_radius_m: Cell radius in m (BS at the centre).
        coherence_s: Block length of the channel process in s (10 ms: one NR/LTE frame).
        ofdma: Numerology, band and radio parameters.
        channel: Propagation model.
        mobility: :class:`~netsim.mobility.StaticConfig`, ``RandomWaypointConfig`` or
            ``HighwayConfig``.
        device: Device hardware ranges.
        server: Edge server (one per site in a multi-cell world).
        cells: Several base stations (:mod:`netsim.cellworld`); disabled by default.
    """

    num_devices: int = field(default=10, metadata={"help": "number of devices in the cell", "unit": ""})
    cell_radius_m: float = field(default=300.0, metadata={"help": "cell radius, base station at the centre", "unit": "m"})
    coherence_s: float = field(
        default=0.01, metadata={"help": "channel block: one update of every device's channel per block", "unit": "s"}
    )
    ofdma: OfdmaConfig = field(
        default_factory=OfdmaConfig, metadata={"help": "numerology, band and radio parameters", "unit": ""}
    )
    channel: ChannelConfig = field(
        default_factory=ChannelConfig, metadata={"help": "propagation: path loss, shadowing, fading", "unit": ""}
    )
    mobility: MobilityConfig = field(
        default_factory=StaticConfig, metadata={"help": "how devices move (static, random waypoint, highway)", "unit": ""}
    )
    device: DeviceConfig = field(default_factory=DeviceConfig, metadata={"help": "device hardware ranges", "unit": ""})
    server: ServerConfig = field(default_factory=ServerConfig, metadata={"help": "the edge server", "unit": ""})
    cells: CellsConfig = field(
        default_factory=CellsConfig, metadata={"help": "several base stations: interference and handover (off: one cell)", "unit": ""}
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.num_devices, (int, np.integer)) and self.num_devices >= 1):
            raise ValueError(f"num_devices must be an int >= 1, got {self.num_devices!r}")
        if not self.cell_radius_m > 0:
            raise ValueError(f"cell_radius_m must be > 0, got {self.cell_radius_m!r}")
        if not self.coherence_s > 0:
            raise ValueError(f"coherence_s must be > 0, got {self.coherence_s!r}")
        if self.coherence_s < MIN_COHERENCE_S:
            raise ValueError(f"coherence_s must be >= {MIN_COHERENCE_S:g} s (one 5G NR slot at 240 kHz "
                             f"subcarrier spacing, TS 38.211 Table 4.3.2-1; shorter is a typo), "
                             f"got {self.coherence_s!r}")
        # Physical plausibility: a cell of at most 100 km, a channel block of at most 10 s.
        if not (self.cell_radius_m <= 1e5 and self.coherence_s <= 10.0 and self.num_devices <= 100_000):
            raise ValueError(f"cell_radius_m must be <= 1e5 m, coherence_s <= 10 s and num_devices <= 100000, "
                             f"got {self.cell_radius_m!r}, {self.coherence_s!r}, {self.num_devices!r}")
