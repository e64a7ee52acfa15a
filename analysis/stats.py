"""Means over seeds with Student-t confidence intervals, and paired differences to a baseline.

A *configuration* is everything about a run except its seed. Runs of one configuration at
several seeds are independent replicates; their mean is reported with the two-sided Student-t
interval

    mean +- t_{1 - alpha/2, n - 1} * s / sqrt(n),      s the sample standard deviation,

which is exact for normal replicates and the usual choice for a handful of seeds. Two
configurations run at the same seeds share their data partition, device placement and channel
draws seed by seed, so their difference is best estimated *paired*: the t interval of the
per-seed differences, which removes the variation common to both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean and the half-width of its confidence interval.

    Attributes:
        mean: sample mean (NaN without finite values).
        half_width: half-width of the ``confidence`` t interval; NaN when ``n < 2``.
        n: number of finite values used.
        confidence: two-sided confidence level.
    """

    mean: float
    half_width: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (a significant difference)."""
        return self.n >= 2 and math.isfinite(self.half_width) and (self.low > 0 or self.high < 0)


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean and Student-t interval of ``values`` (NaN and inf ignored).

    Args:
        values: replicate values, one per seed.
        confidence: two-sided level in (0, 1).

    Returns:
        The :class:`Interval`; with one value its half-width is NaN (no interval from one seed).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(list(values), dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, 0, confidence)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, n, confidence)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem, n, confidence)


def paired_interval(a: pd.Series, b: pd.Series, confidence: float = CONFIDENCE) -> Interval:
    """Interval of the mean of ``a - b`` over the seeds both have (indexes are seeds)."""
    common = a.index.intersection(b.index)
    return t_interval((a.loc[common].astype(float) - b.loc[common].astype(float)).to_numpy(), confidence)


def config_key(table: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """One string per row naming its configuration (the ``keys`` columns, seed excluded)."""
    keys = [k for k in keys if k != "seed"]
    if not keys:
        return pd.Series(["all"] * len(table), index=table.index)
    return table[keys].astype(str).agg(", ".join, axis=1) if len(keys) > 1 else table[keys[0]].astype(str)


def seed_summary(
    table: pd.DataFrame,
    group_keys: Sequence[str],
    metrics: Sequence[str],
    baseline: str | None = None,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Per configuration: mean and interval of each metric over seeds, and paired differences.

    Args:
        table: one row per run, with a ``seed`` column, the ``group_keys`` and the ``metrics``.
        group_keys: columns that name a configuration (seed excluded).
        metrics: numeric columns to summarise.
        baseline: a configuration name (as :func:`config_key` spells it, or the value of the
            single group key) to which each configuration's paired difference is computed.
        confidence: two-sided level.

    Returns:
        A frame with ``config``, ``seeds`` (count) and, per metric ``m``: ``m`` (mean),
        ``m_ci`` (half-width), and with a baseline ``m_diff``, ``m_diff_ci``.

    Raises:
        ValueError: ``baseline`` names no configuration, or a configuration has one seed twice.
    """
    frame = table.copy()
    frame["config"] = config_key(frame, group_keys)
    dup = frame.duplicated(["config", "seed"])
    if dup.any():
        row = frame[dup].iloc[0]
        raise ValueError(f"two runs of configuration {row['config']!r} have seed {row['seed']!r}")
    names = list(dict.fromkeys(frame["config"]))
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline must be one of {names}, got {baseline!r}")
    by = {name: frame[frame["config"] == name].set_index("seed") for name in names}
    rows = []
    for name in names:
        part = by[name]
        row: dict = {"config": name, "seeds": int(len(part))}
        for m in metrics:
            iv = t_interval(part[m].to_numpy(dtype=float), confidence)
            row[m], row[f"{m}_ci"] = iv.mean, iv.half_width
            if baseline is not None:
                d = paired_interval(part[m], by[baseline][m], confidence)
                row[f"{m}_diff"], row[f"{m}_diff_ci"] = d.mean, d.half_width
        rows.append(row)
    return pd.DataFrame(rows)


def format_interval(mean: float, half_width: float, scale: float = 1.0, digits: int = 3) -> str:
    """``"mean ± hw"`` in ``scale`` units (``"mean (1 seed)"`` without an interval)."""
    if not math.isfinite(mean):
        return "–"
    m = mean * scale
    if not math.isfinite(half_width):
        return f"{m:.{digits}g} (1 seed)"
    return f"{m:.{digits}g} ± {half_width * scale:.2g}"
