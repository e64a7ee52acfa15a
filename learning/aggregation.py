"""FedAvg: the sample-weighted average of parameter dictionaries.

Source: McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
Data", AISTATS 2017 (the server update of FederatedAveraging).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def fedavg(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Weighted average of parameter dictionaries (FedAvg).

    Args:
        states: ``M`` dicts with the same keys and shapes.
        weights: ``M`` non-negative weights (e.g. sample counts), not all zero.

    Returns:
        ``sum_m w_m * state_m / sum_m w_m`` per key, accumulated in float64 and returned in
        each tensor's own dtype.
    """
    if len(states) != len(weights) or not states:
        raise ValueError(f"states and weights must be non-empty and of equal length, got {len(states)} and {len(weights)}")
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0, got {list(weights)!r}")
    w = w / w.sum()
    return {
        k: sum(wi * s[k].double() for wi, s in zip(w, states)).to(states[0][k].dtype) for k in states[0]
    }
