"""The token curve: accuracy against the number K of patch tokens a device sends.

Reads the JSON line that ``bench/token_curve.py`` prints (saved to a file), draws one line per
selection (accuracy vs K, K on a log2 axis) and, in a second panel, the paired difference
semantic - random at each K with its 95 % interval, so a reader sees both how much accuracy
the budget costs and whether choosing tokens by [CLS] attention beats choosing them at random.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from analysis.files import atomic_writer
from analysis.style import COLUMN_WIDTH_IN, PAGE_WIDTH_IN, RC_PARAMS

#: label, colour (Okabe-Ito), marker, line style of each selection
SELECTION_STYLE = {
    "semantic": ("semantic ([CLS] attention, fused)", "#D55E00", "o", "-"),
    "semantic_nofuse": ("semantic, no fused token", "#E69F00", "s", "--"),
    "random": ("random (fused)", "#000000", "X", "-"),
    "norm": ("activation norm (fused)", "#0072B2", "^", ":"),
}


def _model_of(obj: dict) -> str:
    """What the curve evaluated: a run's fine-tuned model, or a backbone file with its own head."""
    if obj.get("run"):
        return "fine-tuned run"
    weights = str(obj.get("weights") or "backbone")
    return f"backbone {weights.rsplit('/', 1)[-1].removesuffix('.safetensors')}"


def read_token_curve(path: str | Path) -> dict:
    """The benchmark's JSON object: a file holding it alone, or the benchmark's whole output.

    Raises:
        ValueError: no JSON object with ``cut`` and ``curve`` in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"token curve file not found: {str(path)!r}")
    for line in reversed(path.read_text().strip().splitlines()):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "curve" in obj and "cut" in obj:
            return obj
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and "curve" in obj and "cut" in obj:
        return obj
    raise ValueError(f"{str(path)!r} holds no token curve (a JSON object with 'cut' and 'curve')")


def token_curve_figure(curves: Sequence[dict]) -> Figure:
    """Accuracy vs K for each selection (top) and semantic - random with its 95 % band (bottom).

    Args:
        curves: objects from :func:`read_token_curve`, one column of panels each (e.g. cuts 2-4).

    Returns:
        The figure (not saved).
    """
    if not curves:
        raise ValueError("curves must hold at least one token curve, got none")
    with mpl.rc_context(RC_PARAMS):
        n = len(curves)
        fig = Figure(figsize=(min(PAGE_WIDTH_IN, COLUMN_WIDTH_IN * (0.65 + 0.55 * n)), 3.9), layout="constrained")
        axes = np.asarray(fig.subplots(2, n, sharex=True, sharey="row", height_ratios=(2.2, 1), squeeze=False))
        for j, obj in enumerate(curves):
            top, bottom = axes[0, j], axes[1, j]
            ks = sorted({int(k) for sel in obj["curve"].values() for k in sel})
            for name, per_k in obj["curve"].items():
                label, color, marker, ls = SELECTION_STYLE.get(name, (name, "#7F7F7F", "d", "-."))
                xs = [k for k in ks if str(k) in per_k]
                top.plot(xs, [100 * per_k[str(k)] for k in xs], color=color, marker=marker, linestyle=ls,
                         label=label)
            top.set_title(f"{_model_of(obj)}, cut {obj['cut']}\n({obj.get('samples', '?')} test images)")
            top.set_xscale("log", base=2)
            top.set_xticks(ks, [str(k) for k in ks])
            top.minorticks_off()
            if j == 0:
                top.set_ylabel("test accuracy (%)")
            diff = obj.get("semantic_minus_random") or {}
            xs = [k for k in ks if str(k) in diff]
            if xs:
                mid = np.array([100 * diff[str(k)]["diff"] for k in xs])
                lo = np.array([100 * diff[str(k)]["lo"] for k in xs])
                hi = np.array([100 * diff[str(k)]["hi"] for k in xs])
                bottom.axhline(0.0, color="#7F7F7F", linewidth=0.8)
                bottom.fill_between(xs, lo, hi, color="#D55E00", alpha=0.2, linewidth=0)
                bottom.plot(xs, mid, color="#D55E00", marker="o")
            bottom.set_xlabel("patch tokens sent, K")
            if j == 0:
                bottom.set_ylabel("semantic - random\n(points, 95 % CI)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig


def plot_token_curves(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Read the token-curve files, draw :func:`token_curve_figure`, save it as ``out`` (PNG or PDF).

    Returns:
        The path written.
    """
    curves = sorted((read_token_curve(p) for p in paths), key=lambda o: int(o["cut"]))
    fig = token_curve_figure(curves)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with mpl.rc_context(RC_PARAMS):
        with atomic_writer(out) as fh:
            fig.savefig(fh, format=out.suffix.lstrip(".") or "png")
    return out
