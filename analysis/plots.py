"""One function per figure; each returns a :class:`matplotlib.figure.Figure`.

Figures are built on ``Figure`` objects directly (no pyplot, no global backend), styled by
:mod:`analysis.style` inside ``rc_context`` so the caller's matplotlib settings are untouched.
Functions taking ``runs`` accept a :class:`~analysis.traces.Runs`, a :class:`~analysis.traces.Run`,
a run directory or a list of these; functions about one run take a ``Run`` or a directory.
A figure whose data is absent raises :class:`~analysis.metrics.MissingDataError` naming the
figure and the missing column or file. :func:`save_figure` writes PNG and PDF atomically.

Quantities follow :mod:`analysis.metrics`. Accuracy is shown in percent (values in [0, 1] are
taken as fractions, larger ones as percent already).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import metrics
from analysis.figure import save_figure  # noqa: F401  (re-exported)
from analysis.figure import acc_factor as _acc_factor
from analysis.figure import legend as _legend
from analysis.figure import markevery as _markevery
from analysis.figure import new_figure as _figure
from analysis.figure import styled as _styled
from analysis.interval_plots import accuracy_band
from analysis.metrics import MissingDataError, require
from analysis.style import COLUMN_WIDTH_IN, LINESTYLES, PAGE_WIDTH_IN, PHASE_COLORS, policy_styles, si_scale
from analysis.run_figures import channel_traces, timeline, token_map
from analysis.traces import Run, Runs, as_runs, make_labels

__all__ = [
    "FIGURES", "save_figure", "accuracy_vs_uplink_bits", "accuracy_vs_rounds", "accuracy_vs_time",
    "energy_split", "energy_vs_deadline", "latency_cdf", "deadline_miss_rate", "timeline",
    "ste_accuracy_vs_tokens", "channel_traces", "token_map",
]

_ROUND_COLS = ("round", "accuracy")


def _run_styles(runs: Runs) -> list[dict]:
    """Line kwargs per run: colour and marker by policy, line style by rank within the policy."""
    seen: dict[str, int] = {}
    styles = []
    palette = policy_styles(r.policy for r in runs)
    for run in runs:
        color, marker = palette[run.policy]
        rank = seen.get(run.policy, 0)
        seen[run.policy] = rank + 1
        styles.append({"color": color, "marker": marker,
                       "linestyle": LINESTYLES[rank % len(LINESTYLES)]})
    return styles




# --------------------------------------------------------------------------------------------
# Accuracy


def _accuracy_lines(runs: Runs, figure: str, x_of: Callable[[Run, pd.DataFrame], pd.Series],
                    xlabel: str, x_factor: float = 1.0) -> Figure:
    acc_all = pd.concat([r.rounds["accuracy"] for r in runs])
    if not acc_all.notna().any():
        raise MissingDataError(figure, "rounds.parquet accuracy values (no round was evaluated)")
    fig = _figure()
    ax = fig.add_subplot()
    acc_factor = _acc_factor(acc_all)
    for run, label, style in zip(runs, runs.labels, _run_styles(runs)):
        rounds = run.rounds.sort_values("round", kind="stable")
        x = x_of(run, rounds).to_numpy(dtype=float) / x_factor
        y = rounds["accuracy"].to_numpy(dtype=float) * acc_factor
        keep = np.isfinite(y) & np.isfinite(x)
        ax.plot(x[keep], y[keep], label=label, markevery=_markevery(int(keep.sum())), **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Test accuracy [%]" if acc_factor == 100.0 else "Test accuracy")
    _legend(fig, ax, len(runs))
    return fig


def _seed_table(runs: Runs) -> pd.DataFrame | None:
    """``config`` and ``policy`` of each run when some configuration was run at several seeds
    (its figures then draw means with 95 % interval bands), else None."""
    from analysis.tables import config_labels

    if len(runs) < 2:
        return None
    table = pd.DataFrame({"config": config_labels(runs), "policy": [r.policy for r in runs]})
    return table if table["config"].duplicated().any() else None


@_styled
def accuracy_vs_uplink_bits(runs) -> Figure:
    """Accuracy against the cumulative uplink bits, one curve per run (the communication cost);
    runs of one configuration at several seeds become their mean with a 95 % interval band.

    Needs ``rounds.parquet`` columns ``round, accuracy, uplink_bits``.
    """
    runs = as_runs(runs)
    for run in runs:
        require(run.rounds, (*_ROUND_COLS, "uplink_bits"), "accuracy_vs_uplink_bits",
                "rounds.parquet")
    seeds = _seed_table(runs)
    if seeds is not None:
        return accuracy_band(runs, seeds, "uplink_bits")
    total = [metrics.cumulative_uplink_bits(r.rounds).max() for r in runs]
    factor, prefix = si_scale(total)
    return _accuracy_lines(
        runs, "accuracy_vs_uplink_bits",
        lambda run, rounds: metrics.cumulative_uplink_bits(rounds),
        f"Cumulative uplink [{prefix}bit]", factor)


@_styled
def accuracy_vs_rounds(runs) -> Figure:
    """Accuracy against the round index (rounds that were evaluated); runs of one
    configuration at several seeds become their mean with a 95 % interval band.

    Needs ``rounds.parquet`` columns ``round, accuracy``.
    """
    runs = as_runs(runs)
    for run in runs:
        require(run.rounds, _ROUND_COLS, "accuracy_vs_rounds", "rounds.parquet")
    seeds = _seed_table(runs)
    if seeds is not None:
        return accuracy_band(runs, seeds, "round")
    fig = _accuracy_lines(runs, "accuracy_vs_rounds", lambda run, rounds: rounds["round"],
                          "Round")
    fig.axes[0].xaxis.get_major_locator().set_params(integer=True)
    return fig


@_styled
def accuracy_vs_time(runs) -> Figure:
    """Accuracy against the simulated time at the end of each round.

    Needs ``rounds.parquet`` columns ``round, accuracy, time_s``.
    """
    runs = as_runs(runs)
    for run in runs:
        require(run.rounds, (*_ROUND_COLS, "time_s"), "accuracy_vs_time", "rounds.parquet")
    return _accuracy_lines(runs, "accuracy_vs_time", lambda run, rounds: rounds["time_s"],
                           "Simulated time [s]")


# --------------------------------------------------------------------------------------------
# Energy, latency, misses


@_styled
def energy_split(runs) -> Figure:
    """Device energy per device, compute vs transmit (vs other when non-zero), one bar per run.

    Needs ``events.parquet`` columns ``device, phase, energy_j``.
    """
    runs = as_runs(runs)
    splits, per_dev = [], []
    for run in runs:
        require(run.events, ("device", "phase", "energy_j"), "energy_split", "events.parquet")
        n = metrics.num_devices(run.events)
        split = metrics.energy_split_j(run.events)
        splits.append({k: (v / n if n else 0.0) for k, v in split.items()})
    parts = ["compute", "transmit"] + (["other"] if any(abs(s["other"]) > 0 for s in splits)
                                       else [])
    totals = [sum(s[p] for p in parts) for s in splits]
    factor, prefix = si_scale(totals)
    fig = _figure(COLUMN_WIDTH_IN, max(1.6, 0.8 + 0.28 * len(runs)))
    ax = fig.add_subplot()
    y = np.arange(len(runs))
    colors = {"compute": PHASE_COLORS["device compute"], "transmit": PHASE_COLORS["uplink"],
              "other": "#BBBBBB"}
    names = {"compute": "Compute", "transmit": "Transmit", "other": "Other (receive)"}
    left = np.zeros(len(runs))
    for part in parts:
        width = np.array([s[part] for s in splits]) / factor
        ax.barh(y, width, left=left, color=colors[part], label=names[part], height=0.6)
        left += width
    ax.set_yticks(y, runs.labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"Energy per device [{prefix}J]")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncols=len(parts))
    return fig


def _x_of(runs: Runs, key: str) -> np.ndarray:
    """The value of ``key`` per run: the sweep's value, else the config's top-level value."""
    out = []
    for run in runs:
        value = run.value(key)
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.array(out)


def _groups(runs: Runs, exclude: Sequence[str]) -> dict[str, list[int]]:
    labels = make_labels([r.config for r in runs], exclude=exclude, disambiguate=False)
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return groups


def _sweep_lines(fig: Figure, ax, runs: Runs, x: np.ndarray, y: np.ndarray, key: str) -> None:
    groups = _groups(runs, [key])
    for rank_label, (label, idx) in enumerate(groups.items()):
        idx = sorted(idx, key=lambda i: x[i])
        color, marker = policy_styles(r.policy for r in runs)[runs.runs[idx[0]].policy]
        same_policy = [l for l, ids in groups.items()
                       if runs.runs[ids[0]].policy == runs.runs[idx[0]].policy]
        ls = LINESTYLES[same_policy.index(label) % len(LINESTYLES)]
        ax.plot(x[idx], y[idx], color=color, marker=marker, linestyle=ls, label=label)
    _legend(fig, ax, len(groups))


def _need_sweep(runs: Runs, key: str, figure: str) -> np.ndarray:
    x = _x_of(runs, key)
    if np.unique(x[np.isfinite(x)]).size < 2:
        raise MissingDataError(figure, f"runs with at least two values of {key} "
                                       f"(config.json sweep or top-level key)")
    return x


@_styled
def energy_vs_deadline(runs, key: str = "deadline_s") -> Figure:
    """Energy per device against the deadline across a sweep, one line per policy (and per
    value of any other swept key).

    Needs at least two values of ``key`` among the runs and ``events.parquet`` columns
    ``device, energy_j``.
    """
    runs = as_runs(runs)
    x = _need_sweep(runs, key, "energy_vs_deadline")
    y = []
    for run in runs:
        require(run.events, ("device", "energy_j"), "energy_vs_deadline", "events.parquet")
        y.append(metrics.energy_per_device_j(run.events))
    factor, prefix = si_scale(y)
    fig = _figure()
    ax = fig.add_subplot()
    _sweep_lines(fig, ax, runs, x, np.array(y) / factor, key)
    ax.set_xlabel("Deadline [s]" if key == "deadline_s" else key)
    ax.set_ylabel(f"Energy per device [{prefix}J]")
    return fig


@_styled
def latency_cdf(runs) -> Figure:
    """Empirical CDF of the round latency over the trained rounds, one step curve per run.
    The deadline is drawn when all runs share one.

    Needs ``rounds.parquet`` columns ``round, latency_s``.
    """
    runs = as_runs(runs)
    fig = _figure()
    ax = fig.add_subplot()
    for run, label, style in zip(runs, runs.labels, _run_styles(runs)):
        require(run.rounds, ("round", "latency_s"), "latency_cdf", "rounds.parquet")
        lat = np.sort(metrics.trained_rounds(run.rounds)["latency_s"].dropna().to_numpy(float))
        if lat.size == 0:
            continue
        x = np.concatenate([[lat[0]], lat])
        y = np.concatenate([[0.0], np.arange(1, lat.size + 1) / lat.size])
        style = dict(style, marker=None)
        ax.plot(x, y, drawstyle="steps-post", label=label, **style)
    deadlines = {run.value("deadline_s") for run in runs}
    if len(deadlines) == 1 and isinstance(next(iter(deadlines)), (int, float)):
        ax.axvline(float(next(iter(deadlines))), color="0.4", linewidth=0.8, linestyle="--",
                   label="_deadline")
        ax.annotate("deadline", (float(next(iter(deadlines))), 0.02), rotation=90,
                    ha="right", va="bottom", fontsize=6, color="0.4")
    ax.set_xlabel("Round latency [s]")
    ax.set_ylabel("CDF")
    ax.set_ylim(0, 1.02)
    _legend(fig, ax, len(runs))
    return fig


@_styled
def deadline_miss_rate(runs, key: str = "deadline_s") -> Figure:
    """Share of (round, device) pairs that missed the deadline: against ``key`` when the runs
    sweep it (one line per policy), else one bar per run.

    Needs ``events.parquet`` columns ``round, device, reason, end_s``.
    """
    runs = as_runs(runs)
    rates = []
    for run in runs:
        require(run.events, ("round", "device", "reason", "end_s"), "deadline_miss_rate",
                "events.parquet")
        rates.append(metrics.deadline_misses(run.events)[1] * 100.0)
    rates = np.array(rates)
    x = _x_of(runs, key)
    fig = _figure()
    ax = fig.add_subplot()
    if np.unique(x[np.isfinite(x)]).size >= 2:
        _sweep_lines(fig, ax, runs, x, rates, key)
        ax.set_xlabel("Deadline [s]" if key == "deadline_s" else key)
        ax.set_ylabel("Deadline misses [% of device rounds]")
    else:
        fig.set_size_inches(COLUMN_WIDTH_IN, max(1.6, 0.8 + 0.28 * len(runs)))
        y = np.arange(len(runs))
        ax.barh(y, rates, color=[policy_styles(q.policy for q in runs)[r.policy][0] for r in runs], height=0.6)
        ax.set_yticks(y, runs.labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("Deadline misses [% of device rounds]")
    return fig


# --------------------------------------------------------------------------------------------
# Tokens: STE and accuracy vs K


@_styled
def ste_accuracy_vs_tokens(runs, exclude: Sequence[str] | None = None) -> Figure:
    """Semantic transmission efficiency and final accuracy against the token budget K, one
    point per run (K = mean of ``tokens_mean`` over the trained rounds), joined per group.

    Args:
        runs: the runs (e.g. a fixed-ratio sweep).
        exclude: swept keys not used to group runs into lines; default every swept key that
            varies, so one line per policy.

    Needs ``rounds.parquet`` columns ``round, accuracy, ste, tokens_mean``.
    """
    runs = as_runs(runs)
    for run in runs:
        require(run.rounds, ("round", "accuracy", "ste", "tokens_mean"), "ste_accuracy_vs_tokens",
                "rounds.parquet")
    k = np.array([metrics.mean_trained(r.rounds, "tokens_mean") for r in runs])
    ste = np.array([metrics.mean_trained(r.rounds, "ste") for r in runs])
    acc = np.array([metrics.final_accuracy(r.rounds) for r in runs])
    acc = acc * _acc_factor(acc)
    exclude = runs.varying_keys() if exclude is None else list(exclude)
    groups = _groups(runs, exclude)
    fig = _figure(PAGE_WIDTH_IN / 1.4, 2.4)
    ax_ste, ax_acc = fig.subplots(1, 2)
    for label, idx in groups.items():
        idx = sorted(idx, key=lambda i: k[i])
        color, marker = policy_styles(r.policy for r in runs)[runs.runs[idx[0]].policy]
        ax_ste.plot(k[idx], ste[idx], color=color, marker=marker, label=label)
        ax_acc.plot(k[idx], acc[idx], color=color, marker=marker, label=label)
    ax_ste.set_xlabel("Tokens kept K (mean per device)")
    ax_acc.set_xlabel("Tokens kept K (mean per device)")
    ax_ste.set_ylabel("STE, mean over rounds [1/s]")
    ax_acc.set_ylabel("Final test accuracy [%]")
    ax_acc.legend(loc="best")
    return fig


# Figure file name -> function, for report.plot_runs and for users iterating over figures.
FIGURES: dict[str, Callable[..., Figure]] = {
    "accuracy_vs_uplink_bits": accuracy_vs_uplink_bits,
    "accuracy_vs_rounds": accuracy_vs_rounds,
    "accuracy_vs_time": accuracy_vs_time,
    "energy_split": energy_split,
    "energy_vs_deadline": energy_vs_deadline,
    "latency_cdf": latency_cdf,
    "deadline_miss_rate": deadline_miss_rate,
    "timeline": timeline,
    "ste_accuracy_vs_tokens": ste_accuracy_vs_tokens,
    "channel": channel_traces,
    "token_map": token_map,
}
