"""The cells figure of one multi-cell run: uplink SINR and handovers over simulated time.

Top: every uplink transfer's time-averaged SINR against the time it started, coloured by the
cell that served it, with the same transfer's interference-free SNR as a grey tick, so the
distance between the two is what the other cells' transmissions cost. Bottom: each device's
serving cell over time (one row per device, a dot per transfer coloured by its cell) and every
handover as a black cross at the time it happened, labelled with the cell it went to.
Reads ``events.parquet`` only; a single-cell run lacks the columns and is refused in one line.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.figure import new_figure, styled
from analysis.metrics import MissingDataError
from analysis.run_integrity import figure_table
from analysis.style import PAGE_WIDTH_IN

#: Columns the figure needs in ``events.parquet`` (a multi-cell run writes them).
NEEDED = ("round", "device", "phase", "start_s", "end_s", "snr_db", "sinr_db", "cell", "from_cell")
_UPLINKS = ("uplink",)


def cell_events(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(uplink transfers, handovers)`` of the run in ``run_dir``.

    Raises:
        MissingDataError: no ``events.parquet``, or a run without the multi-cell columns.
    """
    path = Path(run_dir) / "events.parquet"
    e = figure_table(run_dir, "events.parquet", "cells figure", NEEDED,
                     ", which only a multi-cell run writes: --kind cells needs a multi-cell run "
                     "(world.cells.enabled=true, e.g. highway-corridor or urban-7)")
    uplinks = e[e["phase"].isin(_UPLINKS) & np.isfinite(e["sinr_db"])]
    handovers = e[e["phase"] == "handover"]
    if uplinks.empty:
        raise MissingDataError("cells figure", f"{path}: an uplink transfer with a SINR (there is none)")
    return uplinks, handovers


@styled
def cells_figure(run_dir: str | Path) -> Figure:
    """The figure (module docstring) of the run in ``run_dir``."""
    uplinks, handovers = cell_events(run_dir)
    cells = np.sort(pd.concat([uplinks["cell"], handovers["cell"], handovers["from_cell"]]).unique())
    palette = {c: f"C{i % 10}" for i, c in enumerate(cells)}
    fig = new_figure(PAGE_WIDTH_IN, 4.8)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.0, 1.2))
    top.scatter(uplinks["start_s"], uplinks["snr_db"], marker="_", s=30, color="0.6", lw=1.0, zorder=1)
    top.scatter(uplinks["start_s"], uplinks["sinr_db"], s=10, lw=0, zorder=2,
                c=[palette[c] for c in uplinks["cell"]])
    top.set_ylabel("uplink SINR (dB)")
    gap = float(np.median(uplinks["snr_db"] - uplinks["sinr_db"]))
    top.set_title(f"{len(uplinks)} uplink transfers; median SNR - SINR {gap:.1f} dB", fontsize="small")
    devices = np.sort(pd.concat([uplinks["device"], handovers["device"]]).unique())
    row = {d: i for i, d in enumerate(devices)}
    bottom.scatter(uplinks["start_s"], [row[d] for d in uplinks["device"]], s=8, lw=0,
                   c=[palette[c] for c in uplinks["cell"]])
    bottom.scatter(handovers["start_s"], [row[d] for d in handovers["device"]], marker="x", s=36, color="k", lw=1.2)
    bottom.set_yticks(range(len(devices)), [f"device {d}" for d in devices])
    bottom.set_ylim(-0.7, len(devices) - 0.3)
    bottom.invert_yaxis()
    bottom.set_xlabel("simulated time (s)")
    bottom.set_title(f"{len(handovers)} handovers (crosses) of {handovers['device'].nunique()} devices; "
                     f"dots: transfers coloured by serving cell", fontsize="small")
    handles = [Line2D([], [], ls="none", marker="o", color=palette[c], ms=5, label=f"cell {c}") for c in cells]
    handles += [Line2D([], [], ls="none", marker="_", color="0.6", ms=8, label="SNR (no interference)"),
                Line2D([], [], ls="none", marker="x", color="k", ms=6, label="handover")]
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    return fig


__all__ = ["NEEDED", "cell_events", "cells_figure"]
