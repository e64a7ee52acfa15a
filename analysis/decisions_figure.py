"""The decisions figure of one run: how token budget, bandwidth share and power follow the channel.

Top row: every scheduled device-round as a point against the channel gain the policy planned
with (token budget, share of the band, transmit power), coloured by round. Bottom row: the same
three decisions per device over the rounds, one line per device coloured by its mean planned
gain (bright: strong channel). Device-rounds whose uplink spent at least 95 % of the transmit
energy they were allowed (``uplink_energy_j >= 0.95 energy_budget_j``) are ringed in red: the
energy budget bound them. The dashed line in the power panels is p_max.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import cm, colors
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.figure import new_figure, styled
from analysis.metrics import MissingDataError
from analysis.run_integrity import figure_table
from analysis.style import PAGE_WIDTH_IN

#: Columns the figure needs in ``decisions.parquet``.
NEEDED = ("round", "device", "status", "tokens", "bandwidth_hz", "power_w", "planned_gain_db", "max_power_w",
          "energy_budget_j", "uplink_energy_j")
#: Share of the allowed transmit energy from which a device-round counts as energy-bound.
BOUND_SHARE = 0.95
BOUND_COLOR = "#d62728"


def scheduled_decisions(run_dir: str | Path) -> pd.DataFrame:
    """The scheduled device-rounds of a run, with ``share`` (of the band) and ``bound`` columns.

    Raises:
        MissingDataError: the run has no ``decisions.parquet`` or lacks a needed column.
    """
    path = Path(run_dir) / "decisions.parquet"
    d = figure_table(run_dir, "decisions.parquet", "decisions figure", NEEDED, " (a run made before they existed)")
    d = d[d["status"] == "ok"].copy()
    if d.empty:
        raise MissingDataError("decisions figure", f"{path}: a scheduled device-round (there is none)")
    band = d.groupby("round")["bandwidth_hz"].transform("sum").to_numpy()
    total = float(np.nanmax(band)) if band.size else 1.0
    d["share"] = d["bandwidth_hz"] / total
    d["bound"] = d["uplink_energy_j"] >= BOUND_SHARE * d["energy_budget_j"]
    return d


@styled
def decisions_figure(run_dir: str | Path) -> Figure:
    """The figure (module docstring) of the run in ``run_dir``."""
    d = scheduled_decisions(run_dir)
    fig = new_figure(PAGE_WIDTH_IN, 4.6)
    axes = fig.subplots(2, 3, sharey="col")
    panels = (("tokens", "token budget K"), ("share", "share of the band"), ("power_w", "transmit power (W)"))
    rounds = np.sort(d["round"].unique())
    round_norm = colors.Normalize(rounds.min(), max(rounds.max(), rounds.min() + 1))
    mean_gain = d.groupby("device")["planned_gain_db"].mean()
    gain_norm = colors.Normalize(mean_gain.min(), max(mean_gain.max(), mean_gain.min() + 1e-9))
    bound = d[d["bound"]]
    for col, (name, label) in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        top.scatter(d["planned_gain_db"], d[name], c=d["round"], cmap="cividis", norm=round_norm, s=14, lw=0)
        top.scatter(bound["planned_gain_db"], bound[name], s=46, facecolors="none", edgecolors=BOUND_COLOR, lw=1.0)
        top.set_xlabel("planned channel gain (dB)")
        top.set_ylabel(label)
        for dev, g in d.sort_values("round").groupby("device"):
            colour = cm.viridis(gain_norm(mean_gain[dev]))
            bottom.plot(g["round"], g[name], "-o", color=colour, ms=3, lw=1.0, alpha=0.85)
        bottom.scatter(bound["round"], bound[name], s=46, facecolors="none", edgecolors=BOUND_COLOR, lw=1.0)
        bottom.set_xlabel("round")
        bottom.set_ylabel(label)
        bottom.set_xticks(rounds if rounds.size <= 12 else rounds[:: max(1, rounds.size // 10)])
    pmax = float(np.nanmax(d["max_power_w"]))
    for ax in axes[:, 2]:
        ax.axhline(pmax, ls="--", lw=0.8, color="0.4")
    fig.colorbar(cm.ScalarMappable(round_norm, "cividis"), ax=axes[0, :], label="round", shrink=0.9)
    fig.colorbar(cm.ScalarMappable(gain_norm, "viridis"), ax=axes[1, :], label="device's mean planned gain (dB)",
                 shrink=0.9)
    n_bound = int(d["bound"].sum())
    handles = [Line2D([], [], ls="none", marker="o", mfc="none", mec=BOUND_COLOR, ms=7,
                      label=f"energy-bound ({n_bound} of {len(d)} device-rounds)"),
               Line2D([], [], ls="--", color="0.4", label="p_max")]
    fig.legend(handles=handles, loc="outside upper center", ncols=2, frameon=False)
    return fig
