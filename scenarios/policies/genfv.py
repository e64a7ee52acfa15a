"""GenFV's vehicle selection: who stays in coverage long enough and holds representative labels.

Source: GenFV, AIGC-assisted federated learning for vehicular edge intelligence (IEEE TMC
24(11):11896-11909, 2025; arXiv:2503.19676), known secondhand: each round's participants are
chosen by how long they will stay in coverage (speed and position against the round's expected
duration) and by the earth mover's distance of their label distribution from the global one;
bandwidth and power are then allocated to the selected vehicles.

Here (:func:`netsim.allocation.vehicle_selection.select_vehicles`): among the devices the
planner kept (in the cell, charged, able to finish before leaving), a vehicle whose time left
is shorter than its expected round (plus ``genfv.margin_s``) is never chosen; the others are
scored ``dwell_weight x (1 - expected_round / time_left) - emd_weight x EMD`` (EMD with unit
ground distance, the total-variation distance of label histograms) and the best
``ceil(genfv.fraction x m)`` take part. The selected vehicles send every token and get the
exact min-max bandwidth and power split (``full-tokens``), the others are ``not-scheduled``.
The expected round is the planner's estimate at all tokens, full power and an equal share.

Out of scope: GenFV's generative data augmentation (AIGC images made for vehicles with
skewed labels) is not simulated; only the selection and the radio allocation are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from netsim.allocation.vehicle_selection import select_and_allocate, select_vehicles
from scenarios.policies.contract import Decision, Policy, RoundView
from scenarios.policies.registry import register_policy


@dataclass(frozen=True)
class GenfvParams:
    """GenFV's selection rule (``--set genfv.fraction=0.5 --set genfv.emd_weight=1``)."""

    fraction: float = field(default=0.5, metadata={"help": "share of the planned devices selected (rounded up)",
                                                   "unit": ""})
    dwell_weight: float = field(default=1.0, metadata={"help": "weight of the dwell term of the score", "unit": ""})
    emd_weight: float = field(default=1.0, metadata={"help": "weight of the label-EMD term of the score", "unit": ""})
    margin_s: float = field(default=0.0, metadata={"help": "safety margin on the expected round", "unit": "s"})

    def __post_init__(self) -> None:
        if not (isinstance(self.fraction, (int, float)) and 0 < self.fraction <= 1):
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}")
        for name in ("dwell_weight", "emd_weight", "margin_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.margin_s > 1e6:  # plausibility: a margin longer than any deadline is a typo
            raise ValueError(f"margin_s must be <= 1e6 s, got {self.margin_s!r}")


@register_policy
class GenFV(Policy):
    name = "genfv"
    label = "GenFV"
    description = ("vehicle selection by dwell time in coverage and label EMD from the global distribution, "
                   "then min-max bandwidth and power; all tokens (AIGC augmentation not simulated)")
    reference = ("GenFV: AIGC-assisted federated learning for vehicular edge intelligence, IEEE TMC "
                 "24(11):11896-11909, 2025; arXiv:2503.19676")
    token_policy = "all"
    plans_tokens = False
    params_type = GenfvParams

    def __init__(self, params: GenfvParams | None = None) -> None:
        super().__init__(params)
        self.last = None  # the last round's VehicleSelection (for inspection)

    def decide(self, view: RoundView) -> Decision:
        if view.label_hist is None or view.time_left_s is None or view.expected_round_s is None:
            raise ValueError("genfv needs the view's time_left_s, expected_round_s and label histograms")
        p = self.params
        selection = select_vehicles(view.time_left_s, np.maximum(view.expected_round_s, 1e-9), view.label_hist,
                                    view.global_label_hist, fraction=p.fraction, dwell_weight=p.dwell_weight,
                                    emd_weight=p.emd_weight, margin_s=p.margin_s)
        self.last = selection
        return Decision.from_allocation(select_and_allocate(view.problem(), selection))
