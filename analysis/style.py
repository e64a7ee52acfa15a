"""The look of every figure: policy colours and markers, phase colours, sizes, SI prefixes.

Colours are the Okabe-Ito palette (readable by colour-blind readers and in greyscale thanks to
the markers). A policy keeps its colour and marker in every figure of the same runs; runs of one policy that
differ in a swept value share the colour and differ in line style. Style is applied with
``matplotlib.rc_context`` around figure creation and saving, so importing analysis never
changes the user's matplotlib settings.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

# Single-column figure of a two-column paper (IEEE: 3.5 in), and the double-column width.
COLUMN_WIDTH_IN = 3.5
PAGE_WIDTH_IN = 7.16

RC_PARAMS: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "legend.frameon": False,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    # TrueType fonts in PDF, as publishers ask.
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}

# Policy colours and markers, assigned in this order to the policies of a figure sorted by
# name (Okabe-Ito first, then Paul Tol's muted palette), so that the same set of runs always
# gets the same colours and no policy name is spelled here.
PALETTE = ("#D55E00", "#0072B2", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#7F7F7F",
           "#332288", "#117733", "#44AA99", "#88CCEE", "#DDCC77", "#AA4499", "#882255")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "*", "h", "p", "d", "8", "H")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))

# Phases of events.parquet grouped as the timeline and the energy split show them.
PHASE_GROUPS: dict[str, tuple[str, ...]] = {
    "device compute": ("device_forward", "device_backward"),
    "uplink": ("uplink", "adapter_uplink"),
    "server": ("server",),
    "downlink": ("downlink", "adapter_downlink"),
}
PHASE_COLORS = {
    "device compute": "#0072B2",
    "uplink": "#D55E00",
    "server": "#009E73",
    "downlink": "#E69F00",
}
MISS_COLOR = "#C00000"
OTHER_PHASE_COLOR = "#BBBBBB"


def policy_styles(policies: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) of each distinct policy: the i-th name in sorted order gets the i-th
    entry of :data:`PALETTE` and :data:`MARKERS` (cycling beyond their length)."""
    names = sorted({str(p) for p in policies})
    return {name: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i, name in enumerate(names)}


_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
             (1e-3, "m"), (1e-6, "\u00b5"), (1e-9, "n"))


def si_scale(values: Any) -> tuple[float, str]:
    """The SI factor and prefix that put the largest magnitude of ``values`` in [1, 1000).

    Returns:
        (factor, prefix): divide the values by ``factor`` and put ``prefix`` before the unit,
        e.g. ``(1e6, "M")`` for bits up to a few hundred million. (1, "") when all are 0/NaN.
    """
    arr = np.abs(np.asarray(values, dtype=float))
    arr = arr[np.isfinite(arr) & (arr > 0)]
    if arr.size == 0:
        return 1.0, ""
    peak = float(arr.max())
    for factor, prefix in _PREFIXES:
        if peak >= factor:
            return factor, prefix
    return _PREFIXES[-1]
