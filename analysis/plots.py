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

import functools
from pathlib import Path
from typing import Callable, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis import metrics
from analysis.files import atomic_writer
from analysis.metrics import MissingDataError, require
from analysis.style import (COLUMN_WIDTH_IN, LINESTYLES, MISS_COLOR, OTHER_PHASE_COLOR,
                            PAGE_WIDTH_IN, PHASE_COLORS, PHASE_GROUPS, RC_PARAMS, policy_styles, si_scale)
from analysis.traces import Run, Runs, as_runs, load_run, make_labels

__all__ = [
    "FIGURES", "save_figure", "accuracy_vs_uplink_bits", "accuracy_vs_rounds", "accuracy_vs_time",
    "energy_split", "energy_vs_deadline", "latency_cdf", "deadline_miss_rate", "timeline",
    "ste_accuracy_vs_tokens", "channel_traces", "token_map",
]

_ROUND_COLS = ("round", "accuracy")


def _styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a figure function inside the paper style's rc_context."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(RC_PARAMS):
            return fn(*args, **kwargs)
    return wrapper


def _figure(width_in: float = COLUMN_WIDTH_IN, height_in: float = 2.5) -> Figure:
    return Figure(figsize=(width_in, height_in), layout="constrained")


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def _acc_factor(values: pd.Series | np.ndarray) -> float:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return 100.0 if finite.size == 0 or finite.max() <= 1.0 else 1.0


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


def _legend(fig: Figure, ax, n: int) -> None:
    """Legend inside the axes for a few entries; beside them (figure widened) for many."""
    if n > 5:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width + 2.0, height)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper")
    elif n > 0:
        ax.legend(loc="best")


def _markevery(n: int) -> int:
    return max(1, n // 10)


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


@_styled
def accuracy_vs_uplink_bits(runs) -> Figure:
    """Accuracy against the cumulative uplink bits, one curve per run (the communication cost).

    Needs ``rounds.parquet`` columns ``round, accuracy, uplink_bits``.
    """
    runs = as_runs(runs)
    for run in runs:
        require(run.rounds, (*_ROUND_COLS, "uplink_bits"), "accuracy_vs_uplink_bits",
                "rounds.parquet")
    total = [metrics.cumulative_uplink_bits(r.rounds).max() for r in runs]
    factor, prefix = si_scale(total)
    return _accuracy_lines(
        runs, "accuracy_vs_uplink_bits",
        lambda run, rounds: metrics.cumulative_uplink_bits(rounds),
        f"Cumulative uplink [{prefix}bit]", factor)


@_styled
def accuracy_vs_rounds(runs) -> Figure:
    """Accuracy against the round index (rounds that were evaluated).

    Needs ``rounds.parquet`` columns ``round, accuracy``.
    """
    runs = as_runs(runs)
    for run in runs:
        require(run.rounds, _ROUND_COLS, "accuracy_vs_rounds", "rounds.parquet")
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

    Needs ``events.parquet`` columns ``round, device, deadline_met, end_s``.
    """
    runs = as_runs(runs)
    rates = []
    for run in runs:
        require(run.events, ("round", "device", "deadline_met", "end_s"), "deadline_miss_rate",
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
# One run: timeline, channel, tokens


def _phase_group(phase: str) -> str:
    for group, phases in PHASE_GROUPS.items():
        if phase in phases:
            return group
    return "other"


@_styled
def timeline(run, round_index: int | None = None) -> Figure:
    """Gantt chart of one round: a row per device, a bar per phase, coloured by kind (device
    compute, uplink, server, downlink). Phases cut by a miss are hatched and the device's end is
    marked with a cross and the reason; the deadline is a dashed line.

    Args:
        run: the run.
        round_index: the round to show; default the first round with a miss, else round 1
            (the first round with events).

    Needs ``events.parquet`` columns ``round, device, phase, start_s, end_s, deadline_met``.
    """
    run = _as_run(run)
    ev = run.events
    require(ev, ("round", "device", "phase", "start_s", "end_s", "deadline_met"), "timeline",
            "events.parquet")
    if ev.empty:
        raise MissingDataError("timeline", "events.parquet rows (the run has no events)")
    if round_index is None:
        missed = ev.loc[~ev["deadline_met"].astype(bool), "round"]
        round_index = int(missed.min()) if len(missed) else int(ev["round"].min())
    ev = ev[ev["round"] == round_index]
    if ev.empty:
        raise ValueError(f"timeline: round {round_index} has no events; rounds with events are "
                         f"{sorted(run.events['round'].unique().tolist())}")
    t0 = float(ev["start_s"].min())
    devices = sorted(ev["device"].unique().tolist())
    fig = _figure(PAGE_WIDTH_IN / 1.4, 0.9 + 0.3 * len(devices))
    ax = fig.add_subplot()
    row = {d: i for i, d in enumerate(devices)}
    for (device, group), part in ev.assign(
            _group=ev["phase"].astype(str).map(_phase_group)).groupby(["device", "_group"]):
        ok = part["deadline_met"].astype(bool).to_numpy()
        spans = list(zip(part["start_s"] - t0, part["end_s"] - part["start_s"]))
        y = (row[device] - 0.3, 0.6)
        color = PHASE_COLORS.get(group, OTHER_PHASE_COLOR)
        if ok.any():
            ax.broken_barh([s for s, k in zip(spans, ok) if k], y, facecolors=color,
                           edgecolor="white", linewidth=0.3)
        if (~ok).any():
            ax.broken_barh([s for s, k in zip(spans, ok) if not k], y, facecolors=color,
                           edgecolor=MISS_COLOR, hatch="////", linewidth=0.8)
    for dr in metrics.device_rounds(ev).itertuples():
        if dr.missed:
            x_end = dr.end_s - t0
            ax.plot(x_end, row[dr.device], marker="x", color=MISS_COLOR, markersize=6,
                    markeredgewidth=1.5, linestyle="none")
            ax.annotate(f" {dr.reason or 'miss'}", (x_end, row[dr.device]), color=MISS_COLOR,
                        fontsize=6, va="center", ha="left")
    deadline = run.value("deadline_s")
    if isinstance(deadline, (int, float)):
        ax.axvline(float(deadline), color="0.3", linestyle="--", linewidth=0.8)
        ax.annotate("deadline", (float(deadline), -0.5), fontsize=6, color="0.3",
                    ha="right", va="top", rotation=90)
    ax.set_yticks(range(len(devices)), [f"device {d}" for d in devices])
    ax.set_ylim(len(devices) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"Time since round start [s] (round {round_index}, starts at {t0:.3g} s)")
    handles = [Patch(facecolor=c, label=g) for g, c in PHASE_COLORS.items()]
    if ev["phase"].astype(str).map(_phase_group).eq("other").any():
        handles.append(Patch(facecolor=OTHER_PHASE_COLOR, label="other"))
    if (~ev["deadline_met"].astype(bool)).any():
        handles.append(Patch(facecolor="white", edgecolor=MISS_COLOR, hatch="////",
                             label="cut by miss"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    return fig


def _pick_devices(snr: pd.DataFrame, max_devices: int) -> list:
    """Up to ``max_devices`` devices spread over the range of mean SNR (worst to best)."""
    mean = snr.groupby("device")["snr_db"].mean().sort_values()
    if len(mean) <= max_devices:
        return mean.index.tolist()
    pos = np.unique(np.round(np.linspace(0, len(mean) - 1, max_devices)).astype(int))
    return mean.index[pos].tolist()


@_styled
def channel_traces(run, devices: Sequence[int] | None = None, max_devices: int = 4) -> Figure:
    """SNR and uplink rate over simulated time for a few devices.

    The SNR comes from ``channel.parquet`` (SNR at max power over the whole band, per round
    start) when the run has it, else from the uplink rows of ``events.parquet`` (mean SNR
    during each upload). The rate is the mean rate of each uplink phase, at its midpoint.

    Args:
        run: the run.
        devices: devices to show; default up to ``max_devices`` spread from the worst to the
            best mean SNR.

    Needs ``events.parquet`` columns ``device, phase, start_s, end_s, rate_bps, snr_db``
    (``snr_db`` only without ``channel.parquet``, which then needs ``time_s, device, snr_db``).
    """
    run = _as_run(run)
    require(run.events, ("device", "phase", "start_s", "end_s", "rate_bps"), "channel_traces",
            "events.parquet")
    up = run.events[run.events["phase"].astype(str) == "uplink"]
    if run.channel is not None:
        require(run.channel, ("time_s", "device", "snr_db"), "channel_traces", "channel.parquet")
        snr = run.channel.rename(columns={"time_s": "_t"})
        snr_label = "SNR at max. power [dB]"
    else:
        require(run.events, ("snr_db",), "channel_traces", "events.parquet")
        snr = up.assign(_t=(up["start_s"] + up["end_s"]) / 2)
        snr_label = "Uplink SNR [dB]"
    if snr.empty and up.empty:
        raise MissingDataError("channel_traces", "channel.parquet or uplink rows in events.parquet")
    if devices is None:
        devices = _pick_devices(snr if not snr.empty else up.assign(snr_db=up["rate_bps"]),
                                max_devices)
    rate_factor, rate_prefix = si_scale(up["rate_bps"])
    fig = _figure(COLUMN_WIDTH_IN, 3.4)
    ax_snr, ax_rate = fig.subplots(2, 1, sharex=True)
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
    for i, device in enumerate(devices):
        color = palette[i % len(palette)]
        s = snr[snr["device"] == device].sort_values("_t")
        ax_snr.plot(s["_t"], s["snr_db"], color=color, marker=".", label=f"device {device}",
                    drawstyle="steps-post" if run.channel is not None else "default")
        u = up[up["device"] == device]
        mid = ((u["start_s"] + u["end_s"]) / 2).to_numpy()
        order = np.argsort(mid)
        ax_rate.plot(mid[order], u["rate_bps"].to_numpy()[order] / rate_factor, color=color,
                     marker=".", linewidth=0.8, label=f"device {device}")
    ax_snr.set_ylabel(snr_label)
    ax_rate.set_ylabel(f"Uplink rate [{rate_prefix}bit/s]")
    ax_rate.set_xlabel("Simulated time [s]")
    fig.legend(*ax_snr.get_legend_handles_labels(), loc="outside upper center",
               ncols=min(4, len(devices)))
    return fig


@_styled
def token_map(run, examples: Sequence[int] | None = None, max_examples: int = 4) -> Figure:
    """The patches a device sent, over its input image: dropped patches darkened.

    Args:
        run: the run (needs ``token_maps.npz`` with ``images`` [M, H, W, 3] uint8 and
            ``kept`` bool [M, gh, gw]; ``round``, ``device``, ``tokens`` label the panels).
        examples: indices of the examples to show; default the first ``max_examples``.
    """
    run = _as_run(run)
    if run.token_maps is None:
        raise MissingDataError("token_map", "token_maps.npz (the run has none)")
    missing = [k for k in ("images", "kept") if k not in run.token_maps]
    if missing:
        raise MissingDataError("token_map", f"token_maps.npz arrays {', '.join(missing)}")
    images, kept = run.token_maps["images"], run.token_maps["kept"].astype(bool)
    if images.shape[0] == 0:
        raise MissingDataError("token_map", "token_maps.npz examples (it holds none)")
    if examples is None:
        examples = list(range(min(max_examples, images.shape[0])))
    n = len(examples)
    fig = _figure(min(PAGE_WIDTH_IN, 1.6 * n), 1.9)
    axes = np.atleast_1d(fig.subplots(1, n))
    for ax, i in zip(axes, examples):
        img = images[i]
        h, w = img.shape[:2]
        gh, gw = kept[i].shape
        ax.imshow(img, extent=(0, w, h, 0), interpolation="nearest",
                  cmap="gray" if img.ndim == 2 else None)
        # [gh, gw, 4] RGBA: black at 65 % over dropped patches, transparent over kept ones.
        overlay = np.zeros((gh, gw, 4))
        overlay[..., 3] = np.where(kept[i], 0.0, 0.65)
        ax.imshow(overlay, extent=(0, w, h, 0), interpolation="nearest")
        for gx in np.linspace(0, w, gw + 1)[1:-1]:
            ax.axvline(gx, color="white", linewidth=0.3, alpha=0.5)
        for gy in np.linspace(0, h, gh + 1)[1:-1]:
            ax.axhline(gy, color="white", linewidth=0.3, alpha=0.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        parts = []
        for key, fmt in (("round", "round {}"), ("device", "device {}")):
            if key in run.token_maps:
                parts.append(fmt.format(int(run.token_maps[key][i])))
        tokens = int(run.token_maps["tokens"][i]) if "tokens" in run.token_maps \
            else int(kept[i].sum())
        parts.append(f"K = {tokens}/{gh * gw}")
        ax.set_title("\n".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1
                     else parts[0], fontsize=7)
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


# --------------------------------------------------------------------------------------------
# Saving


def save_figure(fig: Figure, out_dir: str | Path, name: str,
                formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.png`` and ``out_dir/name.pdf``, each atomically.

    Each file is written by :func:`analysis.files.atomic_writer`, so a reader never sees a
    half-written figure.

    Returns:
        The paths written, in the order of ``formats``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with mpl.rc_context(RC_PARAMS):
        for fmt in formats:
            target = out / f"{name}.{fmt}"
            with atomic_writer(target) as fh:
                fig.savefig(fh, format=fmt, metadata=_metadata(fmt))
            written.append(target)
    return written


def _metadata(fmt: str) -> dict | None:
    # A fixed (empty) creation date keeps PDFs byte-identical between runs of the same data.
    if fmt == "pdf":
        return {"CreationDate": None, "Creator": "sflsim"}
    if fmt == "png":
        return {"Software": "sflsim"}
    return None


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
