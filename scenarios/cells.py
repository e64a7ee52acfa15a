"""A round in a multi-cell world: one decision per cell, and what a session carries on handover.

With ``world.cells.enabled`` every cell has its own band and edge server, so the policy decides
for each cell's selected devices apart (its view's band is the cell's reuse sub-band, and a
device that changed cell is decided by its new cell from the next round on). The per-cell
decisions are merged back into the order of the selected devices. With one cell nothing here
runs: :class:`scenarios.cosim.CoSimulation` takes its single-cell path unchanged.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from netsim.interference import planning_factor
from netsim.snapshot import ChannelState
from netsim.world import DevicePlan
from scenarios.planning import whole_rbs
from scenarios.policies import Decision, RoundView

if TYPE_CHECKING:  # pragma: no cover
    from scenarios.cosim import CoSimulation

#: The columns a multi-cell world adds to ``events.parquet`` (:class:`netsim.trace.CellTraceRow`).
CELL_EVENT_COLUMNS = {"cell": "int64", "from_cell": "int64", "sinr_db": "float64", "interference_w": "float64"}

_DECISION_ARRAYS = ("tokens", "bandwidth_hz", "power_w", "status", "cut_layer", "bits_per_value")


def with_interference(state: ChannelState, gain: np.ndarray) -> np.ndarray:
    """The planning gain scaled by ``N0 / (N0 + I_s)`` of each device's serving site (multi-cell)."""
    if state.interference_psd_w_per_hz is None:
        return gain
    return np.asarray(gain, dtype=float) * planning_factor(state.noise_psd_w_per_hz, state.interference_psd_w_per_hz)


def decide_by_cell(cosim: "CoSimulation", idx: np.ndarray, state: ChannelState,
                   gain: np.ndarray) -> tuple[Decision, RoundView | None]:
    """One decision per cell for the selected devices ``idx``, merged in the order of ``idx``.

    Each cell's decision goes through the same whole-RB rounding as the single cell's. The
    merged view holds, for every array over devices, the cells' arrays in the order of ``idx``
    (its scalars are the first cell's: the same in every cell); ``planned_ste`` is the mean of
    the cells' (NaN if none plans one).
    """
    cfg = cosim.config
    radio = cosim.world.config.ofdma
    cell = np.asarray(state.serving_cell)[idx]
    parts: list[tuple[np.ndarray, Decision, RoundView | None]] = []
    curves: dict = {}
    for c in np.unique(cell):
        pos = np.flatnonzero(cell == c)
        decision, view = cosim.decide(idx[pos], state, gain)
        curves.update(cosim._curves)  # each call keeps only its own devices' retention curves
        if view is not None and cfg.planning.whole_rbs and cosim.policy.schedule == "parallel":
            decision = whole_rbs(decision, view, cosim.costs, radio)
        parts.append((pos, decision, view))
    cosim._curves = curves
    if not parts:
        return cosim.decide(idx, state, gain)
    if len(parts) == 1:
        return parts[0][1], parts[0][2]
    return _merge_decisions(idx.size, parts), _merge_views(idx.size, parts)


def _merge_decisions(m: int, parts) -> Decision:
    merged = {}
    for name in _DECISION_ARRAYS:
        values = [getattr(d, name) for _, d, _ in parts]
        if all(v is None for v in values):
            merged[name] = None
            continue
        first = next(np.asarray(v) for v in values if v is not None)
        out = np.empty(m, dtype=first.dtype)
        for (pos, _, _), v in zip(parts, values):
            if v is None:
                raise ValueError(f"Decision.{name} is set for some cells and None for others")
            out[pos] = np.asarray(v)
        merged[name] = out
    stes = [d.planned_ste for _, d, _ in parts if not math.isnan(d.planned_ste)]
    return Decision(planned_ste=float(np.mean(stes)) if stes else math.nan, **merged)


def _merge_views(m: int, parts) -> RoundView | None:
    views = [(pos, v) for pos, _, v in parts if v is not None]
    if not views:
        return None
    first = views[0][1]
    changes = {}
    for f in dataclasses.fields(first):
        value = getattr(first, f.name)
        if not isinstance(value, np.ndarray) or value.ndim == 0 or value.shape[0] != len(views[0][0]):
            continue
        if not all(isinstance(getattr(v, f.name), np.ndarray) and getattr(v, f.name).shape[0] == len(pos)
                   for pos, v in views):
            continue
        out = np.empty((m,) + value.shape[1:], dtype=value.dtype)
        for pos, v in views:
            out[pos] = getattr(v, f.name)
        changes[f.name] = out
    return dataclasses.replace(first, **changes)


def session_bits(cosim: "CoSimulation") -> float:
    """Bits of a device's server-side state in a split session: the trainable weights that live on
    the server (every trainable weight less the device part's), moved on handover."""
    cached = getattr(cosim, "_session_bits", None)
    if cached is None:
        from learning.costs import adapter_bits  # only a split run in a multi-cell world needs it

        model = cosim.learner.model
        cached = float(adapter_bits(model, "all") - adapter_bits(model, "device"))
        cosim._session_bits = cached
    return cached


def with_session_bits(cosim: "CoSimulation", plans: list[DevicePlan]) -> list[DevicePlan]:
    """The plans with the server-side state a handover moves (split strategies only)."""
    if not cosim.learner.strategy.split:
        return plans
    bits = session_bits(cosim)
    return [dataclasses.replace(p, server_state_bits=bits) for p in plans]


def table_columns(world, table: str, columns: dict) -> dict:
    """The columns of trace table ``table`` (``"events"``, ``"rounds"``, ...) for ``world``: the
    multi-cell columns appended to the events of a multi-cell world, else ``columns`` as they are."""
    if table == "events" and getattr(world.config, "cells", None) is not None and world.config.cells.enabled:
        return {**columns, **CELL_EVENT_COLUMNS}
    return columns
