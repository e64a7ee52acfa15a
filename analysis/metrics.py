"""The numbers figures and tables show, computed from one run's frames.

Definitions (the same in every figure and table):

- *trained rounds*: rounds with ``round >= 1`` (round 0 evaluates the starting model).
- *final accuracy*: the accuracy of the last round that was evaluated (non-NaN).
- *total uplink bits*: the sum of ``rounds.uplink_bits``.
- *device energy*: the sum of ``events.energy_j``, split into compute (phases
  ``device_forward``, ``device_backward``), transmit (``uplink``, ``adapter_uplink``) and other
  (any other phase, e.g. receive energy on the downlink; usually 0).
- *energy per device*: device energy divided by the number of distinct devices with at least
  one event (the devices that took part).
- *round latency*: ``rounds.latency_s`` over the trained rounds; the 95th percentile uses
  linear interpolation between order statistics (``numpy.percentile``'s default).
- *deadline miss*: a (round, device) pair with at least one event whose ``reason`` is
  ``deadline``; the miss rate divides by the (round, device) pairs with events. (A device
  stopped by its energy budget or by leaving the cell did not miss its deadline.)
- *STE mean*: mean of ``rounds.ste`` over the trained rounds, NaN ignored.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

COMPUTE_PHASES = ("device_forward", "device_backward")
TRANSMIT_PHASES = ("uplink", "adapter_uplink")


class MissingDataError(ValueError):
    """A figure or table needs a column or file the run does not have.

    Attributes:
        figure: the figure (or table) that cannot be made.
        missing: what is missing, e.g. ``"rounds.parquet: ste"``.
    """

    def __init__(self, figure: str, missing: str):
        self.figure = figure
        self.missing = missing
        super().__init__(f"{figure}: needs {missing}")


def require(frame: pd.DataFrame | None, columns: Iterable[str], figure: str, source: str) -> None:
    """Raise :class:`MissingDataError` unless ``frame`` has every column in ``columns``.

    Args:
        frame: the frame (None means the file is absent).
        columns: column names needed.
        figure: name of the figure or table, for the message.
        source: the file the frame comes from, e.g. ``"events.parquet"``.
    """
    if frame is None:
        raise MissingDataError(figure, f"{source} (the run has none)")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingDataError(figure, f"{source} column{'s' if len(missing) > 1 else ''} "
                                       f"{', '.join(missing)}")


def trained_rounds(rounds: pd.DataFrame) -> pd.DataFrame:
    """The rows of rounds with ``round >= 1``, sorted by round."""
    return rounds[rounds["round"] >= 1].sort_values("round", kind="stable")


def final_accuracy(rounds: pd.DataFrame) -> float:
    """Accuracy of the last evaluated round (NaN if none was evaluated)."""
    acc = rounds.sort_values("round", kind="stable")["accuracy"].dropna()
    return float(acc.iloc[-1]) if len(acc) else float("nan")


def cumulative_uplink_bits(rounds: pd.DataFrame) -> pd.Series:
    """Uplink bits sent up to and including each round, aligned with ``rounds`` sorted by round."""
    ordered = rounds.sort_values("round", kind="stable")
    return ordered["uplink_bits"].fillna(0.0).cumsum()


def energy_split_j(events: pd.DataFrame) -> dict[str, float]:
    """Device energy of a run, split into ``compute``, ``transmit`` and ``other`` [J]."""
    phase = events["phase"].astype(str)
    energy = events["energy_j"].fillna(0.0)
    compute = float(energy[phase.isin(COMPUTE_PHASES)].sum())
    transmit = float(energy[phase.isin(TRANSMIT_PHASES)].sum())
    other = float(energy[~phase.isin(COMPUTE_PHASES + TRANSMIT_PHASES)].sum())
    return {"compute": compute, "transmit": transmit, "other": other}


def num_devices(events: pd.DataFrame) -> int:
    """Distinct devices with at least one event."""
    return int(events["device"].nunique())


def energy_per_device_j(events: pd.DataFrame) -> float:
    """Total device energy divided by the devices that took part (NaN without events)."""
    n = num_devices(events)
    return float(events["energy_j"].fillna(0.0).sum()) / n if n else float("nan")


def device_rounds(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (round, device) with events: ``round, device, missed, reason, end_s``.

    ``missed`` is True when an event of that device in that round was stopped by the deadline
    (``reason == "deadline"``); ``reason`` is the first non-empty reason of its events ("" if
    none).
    """
    if events.empty:
        return pd.DataFrame({"round": [], "device": [], "missed": [], "reason": [], "end_s": []})
    ev = events.assign(_reason=events["reason"].fillna("").astype(str))
    ev["_miss"] = ev["_reason"] == "deadline"
    grouped = ev.groupby(["round", "device"], sort=True)
    out = pd.DataFrame({
        "missed": grouped["_miss"].any(),
        "reason": grouped["_reason"].agg(lambda s: next((x for x in s if x), "")),
        "end_s": grouped["end_s"].max(),
    }).reset_index()
    return out


def deadline_misses(events: pd.DataFrame) -> tuple[int, float]:
    """(number of missed (round, device) pairs, miss rate in [0, 1]; NaN without events)."""
    dr = device_rounds(events)
    if dr.empty:
        return 0, float("nan")
    return int(dr["missed"].sum()), float(dr["missed"].mean())


def latency_stats_s(rounds: pd.DataFrame) -> tuple[float, float]:
    """(mean, 95th percentile) of the round latency over the trained rounds [s]."""
    lat = trained_rounds(rounds)["latency_s"].dropna().to_numpy(dtype=float)
    if lat.size == 0:
        return float("nan"), float("nan")
    return float(lat.mean()), float(np.percentile(lat, 95))


def mean_trained(rounds: pd.DataFrame, column: str) -> float:
    """Mean of ``column`` over the trained rounds, NaN ignored (NaN if all are NaN)."""
    values = trained_rounds(rounds)[column].dropna()
    return float(values.mean()) if len(values) else float("nan")
