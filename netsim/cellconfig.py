"""The configuration of a multi-cell world: sites, reuse, shadowing correlation, handover.

Disabled by default: a World built with ``CellsConfig()`` is today's single cell, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.handover import HandoverConfig
from netsim.interference import REUSE_FACTORS
from netsim.layout import LayoutConfig
from netsim.sitegain import INTER_SITE_CORRELATION_3GPP

PLANNING_INTERFERENCE = ("none", "last-round")


@dataclass(frozen=True)
class CellsConfig:
    """Several base stations in one world (:mod:`netsim.cellworld`).

    Attributes:
        enabled: Build a multi-cell world; False keeps the single cell of
            :class:`netsim.world.World` (every trace as before).
        layout: The sites.
        reuse: Frequency reuse factor: 1 (every cell the whole band) or 3 (a third each).
        inter_site_correlation: Shadowing correlation between two sites seen from one device
            (0.5: TR 36.942 §4.5; 0: independent links).
        handover: A3 parameters and the cost of moving a session.
        planning_interference: What the allocation sees of interference: ``"none"`` (its SNR),
            or ``"last-round"`` (the mean uplink interference PSD its serving site measured in
            the last round, folded into its gain).
    """

    enabled: bool = field(default=False, metadata={"help": "several base stations with co-channel interference and handover", "unit": ""})
    layout: LayoutConfig = field(default_factory=LayoutConfig, metadata={"help": "the sites", "unit": ""})
    reuse: int = field(default=1, metadata={"help": "frequency reuse factor, 1 or 3", "unit": ""})
    inter_site_correlation: float = field(
        default=INTER_SITE_CORRELATION_3GPP, metadata={"help": "shadowing correlation between sites (TR 36.942: 0.5)", "unit": ""}
    )
    handover: HandoverConfig = field(default_factory=HandoverConfig, metadata={"help": "A3 handover and session migration", "unit": ""})
    planning_interference: str = field(
        default="last-round", metadata={"help": "interference the allocation sees: none or last-round", "unit": ""}
    )

    def __post_init__(self) -> None:
        if self.reuse not in REUSE_FACTORS:
            raise ValueError(f"reuse must be one of {REUSE_FACTORS}, got {self.reuse!r}")
        if not (np.isfinite(self.inter_site_correlation) and 0.0 <= self.inter_site_correlation <= 1.0):
            raise ValueError(f"inter_site_correlation must be in [0, 1], got {self.inter_site_correlation!r}")
        if self.planning_interference not in PLANNING_INTERFERENCE:
            raise ValueError(f"planning_interference must be one of {PLANNING_INTERFERENCE}, got {self.planning_interference!r}")
