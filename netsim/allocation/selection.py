"""Mobility-aware selection: skip devices that would leave the cell before their round ends."""

from __future__ import annotations

import numpy as np

from netsim.reasons import Reason



def select_by_dwell(
    time_left_s: np.ndarray,
    estimated_round_s: np.ndarray | float,
    margin_s: float = 0.0,
    in_cell: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Select the devices whose round can finish before they leave the cell.

    A device moving out of coverage mid-round loses its upload (and its gradient never
    returns), so selecting it only wastes bandwidth: it is selected only if its remaining
    dwell time covers the estimated round duration plus a safety margin.

    Args:
        time_left_s: ``[N]`` time until each device leaves the cell, s (``inf`` if it stays;
            0 for devices already outside).
        estimated_round_s: scalar or ``[N]`` estimated round duration, s, >= 0 (e.g. the
            previous round's latency, or the deadline).
        margin_s: safety margin added to the estimate, s, >= 0.
        in_cell: optional ``[N]`` bool, devices currently inside the cell.

    Returns:
        ``(selected [N] bool, reasons [N])`` with reasons ``"ok"`` or ``"left-cell"``; feed
        both to an allocation rule (:func:`netsim.allocation.max_ste`, ...) as ``selected=`` and
        ``reasons=``.

    Raises:
        ValueError: on negative or NaN times, or mismatched shapes.
    """
    time_left_s = np.asarray(time_left_s, dtype=float)
    if time_left_s.ndim != 1:
        raise ValueError(f"time_left_s must be 1-D, got shape {time_left_s.shape}")
    n = time_left_s.size
    if np.any(np.isnan(time_left_s)) or np.any(time_left_s < 0):
        raise ValueError(f"time_left_s must be >= 0 and not NaN, got {time_left_s!r}")
    est = np.broadcast_to(np.asarray(estimated_round_s, dtype=float), (n,))
    if not np.all(np.isfinite(est)) or np.any(est < 0):
        raise ValueError(f"estimated_round_s must be finite and >= 0, got {estimated_round_s!r}")
    if not (np.isfinite(margin_s) and margin_s >= 0):
        raise ValueError(f"margin_s must be finite and >= 0, got {margin_s!r}")
    selected = time_left_s >= est + margin_s
    if in_cell is not None:
        in_cell = np.asarray(in_cell, dtype=bool)
        if in_cell.shape != (n,):
            raise ValueError(f"in_cell must have shape ({n},), got {in_cell.shape}")
        selected &= in_cell
    reasons = tuple(Reason.ALLOCATED if s else Reason.LEFT_CELL for s in selected)
    return selected, reasons
