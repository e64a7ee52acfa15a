"""Figures of one run: the timeline of a round, the channel traces, the kept-token map.

Each function takes a :class:`~analysis.traces.Run` or a run directory and returns a
:class:`matplotlib.figure.Figure` (see :mod:`analysis.plots` for the conventions).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis import metrics
from analysis.metrics import MissingDataError, require
from analysis.figure import as_run as _as_run
from analysis.figure import new_figure as _figure
from analysis.figure import styled as _styled
from analysis.style import COLUMN_WIDTH_IN, MISS_COLOR, OTHER_PHASE_COLOR, PAGE_WIDTH_IN, PHASE_COLORS, PHASE_GROUPS, si_scale


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

    Needs ``events.parquet`` columns ``round, device, phase, start_s, end_s, completed, reason``.
    """
    run = _as_run(run)
    ev = run.events
    require(ev, ("round", "device", "phase", "start_s", "end_s", "completed", "reason"), "timeline",
            "events.parquet")
    if ev.empty:
        raise MissingDataError("timeline", "events.parquet rows (the run has no events)")
    if round_index is None:
        missed = ev.loc[~ev["completed"].astype(bool), "round"]
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
        ok = part["completed"].astype(bool).to_numpy()
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
    if (~ev["completed"].astype(bool)).any():
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
