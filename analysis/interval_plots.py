"""Figures of configurations run at several seeds: means with their 95 % Student-t intervals.

A *configuration* is a run's settings without its seed (:func:`analysis.tables.seed_runs_table`
names them). Curves over rounds draw the mean over seeds with the interval as a shaded band;
bar charts and sweep curves draw it as error bars. With one seed a configuration has no
interval and is drawn as its single run. The interval is :func:`analysis.stats.t_interval`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from analysis.figure import legend, new_figure, styled
from analysis.stats import t_interval
from analysis.style import COLUMN_WIDTH_IN, policy_styles, si_scale
from analysis.traces import Runs, as_runs


def _by_config(runs: Runs, table: pd.DataFrame) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(table["config"]):
        groups.setdefault(name, []).append(i)
    return groups


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width per column of ``values`` [seeds, points] (NaN half-width: 1 seed)."""
    ivs = [t_interval(values[:, j]) for j in range(values.shape[1])]
    return np.array([iv.mean for iv in ivs]), np.array([iv.half_width for iv in ivs])


@styled
def accuracy_band(runs, table: pd.DataFrame, x: str = "round") -> Figure:
    """Test accuracy against rounds (``x="round"``) or cumulative uplink bits
    (``x="uplink_bits"``): per configuration the mean over seeds, the 95 % interval shaded.

    Args:
        runs: the runs, in the order of ``table``'s rows.
        table: :func:`analysis.tables.seed_runs_table` of the runs (``config``, ``policy``).
        x: ``round`` or ``uplink_bits``.

    The uplink axis is the mean over seeds of the cumulative uplink at each round. The band is
    clipped to 0-100 % for display.
    """
    runs = as_runs(runs)
    fig = new_figure()
    ax = fig.add_subplot()
    palette = policy_styles(table["policy"])
    groups = _by_config(runs, table)
    curves = {}
    for name, idx in groups.items():
        frames = [runs.runs[i].rounds.sort_values("round", kind="stable") for i in idx]
        rounds = sorted(set.intersection(*(set(f["round"]) for f in frames)))
        acc = np.array([f.set_index("round").loc[rounds, "accuracy"].to_numpy(float) for f in frames])
        up = np.array([f.set_index("round")["uplink_bits"].fillna(0).cumsum().loc[rounds]
                       .to_numpy(float) for f in frames])
        curves[name] = (np.array(rounds, float), up.mean(axis=0), *_band(acc * 100.0))
    factor, prefix = si_scale([c[1].max() for c in curves.values()] if curves else [0])
    for name, (rounds, up, mean, hw) in curves.items():
        color, marker = palette[table.loc[groups[name][0], "policy"]]
        xs = rounds if x == "round" else up / factor
        ax.plot(xs, mean, color=color, marker=marker, label=name, markevery=max(1, len(xs) // 10))
        if np.isfinite(hw).any():
            # Drawn within 0-100 %: with few seeds the t interval can pass the bounds (the tables
            # keep it as computed).
            ax.fill_between(xs, np.clip(mean - hw, 0, 100), np.clip(mean + hw, 0, 100), color=color,
                            alpha=0.18, linewidth=0)
    if x == "round":
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("Round" if x == "round" else f"Cumulative uplink [{prefix}bit]")
    ax.set_ylabel("Test accuracy [%] (mean, 95 % CI)")
    legend(fig, ax, len(curves))
    return fig


@styled
def metric_bars(summary: pd.DataFrame, metric: str, xlabel: str, scale: float = 1.0,
                policies: Sequence[str] | None = None) -> Figure:
    """One horizontal bar per configuration: the mean of ``metric`` over seeds, the 95 %
    interval as an error bar.

    Args:
        summary: :func:`analysis.stats.seed_summary` output (``config``, ``metric``,
            ``metric_ci``).
        metric: the column.
        xlabel: axis label (with its unit).
        scale: divide values by this.
        policies: the policy of each row, for its colour (default: one neutral colour).
    """
    fig = new_figure(COLUMN_WIDTH_IN, max(1.6, 0.8 + 0.3 * len(summary)))
    ax = fig.add_subplot()
    y = np.arange(len(summary))
    mean = summary[metric].to_numpy(float) / scale
    hw = summary[f"{metric}_ci"].to_numpy(float) / scale
    colors = ([policy_styles(policies)[p][0] for p in policies] if policies is not None
              else ["#4477AA"] * len(summary))
    ax.barh(y, np.nan_to_num(mean), color=colors, height=0.6,
            xerr=np.where(np.isfinite(hw), hw, 0.0), error_kw={"capsize": 2, "linewidth": 0.8})
    ax.set_yticks(y, summary["config"])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(xlabel)
    return fig


@styled
def sweep_errorbars(table: pd.DataFrame, x: str, panels: Sequence[tuple[str, str, float]]) -> Figure:
    """Panels of a quantity against a swept key, mean over seeds with 95 % error bars.

    The x axis is logarithmic (base 2) when the swept values span a factor of 8 or more.

    Args:
        table: one row per run with the column ``x`` (numeric) and each panel's column.
        x: the swept key (e.g. ``deadline_s``).
        panels: ``(column, y label, scale)`` per panel.
    """
    fig = new_figure(COLUMN_WIDTH_IN * len(panels) * 0.8, 2.3)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    xs = sorted(table[x].astype(float).unique())
    for ax, (col, ylabel, scale) in zip(axes, panels):
        ivs = [t_interval(table.loc[table[x].astype(float) == v, col].to_numpy(float) / scale)
               for v in xs]
        mean = np.array([iv.mean for iv in ivs])
        hw = np.array([iv.half_width for iv in ivs])
        ax.errorbar(xs, mean, yerr=np.where(np.isfinite(hw), hw, 0.0), marker="o", capsize=2,
                    color="#4477AA")
        if xs and xs[0] > 0 and xs[-1] / xs[0] >= 8:  # a span of octaves: even spacing per factor
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("Deadline [s]" if x == "deadline_s" else x)
        ax.set_ylabel(ylabel)
    return fig


__all__ = ["accuracy_band", "metric_bars", "sweep_errorbars"]
