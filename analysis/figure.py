"""Figure plumbing shared by every figure module: the style context, a new figure, legends,
and saving PNG and PDF atomically (:func:`analysis.files.atomic_writer`)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.files import atomic_writer
from analysis.style import COLUMN_WIDTH_IN, RC_PARAMS
from analysis.traces import Run, load_run


def styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a figure function inside the paper style's rc_context."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(RC_PARAMS):
            return fn(*args, **kwargs)
    return wrapper


def new_figure(width_in: float = COLUMN_WIDTH_IN, height_in: float = 2.5) -> Figure:
    return Figure(figsize=(width_in, height_in), layout="constrained")


def as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def acc_factor(values: pd.Series | np.ndarray) -> float:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return 100.0 if finite.size == 0 or finite.max() <= 1.0 else 1.0


def legend(fig: Figure, ax, n: int) -> None:
    """Legend inside the axes for a few entries; beside them (figure widened) for many."""
    if n > 5:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width + 2.0, height)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper")
    elif n > 0:
        ax.legend(loc="best")


def markevery(n: int) -> int:
    return max(1, n // 10)


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
