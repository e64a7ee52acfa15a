"""The `sflsim plot` and `sflsim compare` commands, as plain functions.

scenarios/cli.py owns the argument parser and calls these; ``python -m analysis`` offers the
same two commands without the simulator. They print to stdout what they did, errors as one
line on stderr, and return the exit status: 0 done, 1 nothing could be written, 2 bad input
(a directory that is not a run, no directory).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from analysis.figure import save_figure
from analysis.metrics import MissingDataError
from analysis.report import compare_runs, plot_runs
from analysis.traces import NotARunError


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def plot_command(run_dirs: Sequence[str], out: str | None = None) -> int:
    """`sflsim plot RUN_DIR [RUN_DIR ...] [--out DIR]`: write figures and summary.md.

    Prints each file written and each figure skipped with its reason.

    Returns:
        0 when something was written, 1 when every figure was skipped, 2 for bad input.
    """
    if not run_dirs:
        print("sflsim plot: error: give at least one run directory", file=sys.stderr)
        return 2
    try:
        written, skipped = plot_runs(run_dirs, out)
    except (NotARunError, ValueError) as exc:
        print(f"sflsim plot: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote   {_display(path)}")
    for figure, reason in skipped:
        print(f"skipped {figure}: {reason}")
    return 0 if written else 1


def _write_figure(target: Path, filename: str, make: Callable[[Path], Path]) -> int:
    """Make one figure at ``target`` (a directory stands for ``target/filename``): print the
    file written and return 0, or print the error on one line and return 2."""
    if target.suffix not in (".png", ".pdf"):
        target = target / filename
    try:
        path = make(target)
    except (NotARunError, MissingDataError, ValueError) as exc:
        print(f"sflsim plot: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote   {_display(path)}")
    return 0


def _one_run(run_dirs: Sequence[str], kind: str) -> bool:
    """Whether ``run_dirs`` is one directory (else say so on stderr)."""
    if len(run_dirs) != 1:
        print(f"sflsim plot: error: --kind {kind} takes one run directory, got {len(run_dirs)}",
              file=sys.stderr)
    return len(run_dirs) == 1


def token_curve_command(files: Sequence[str], out: str | None = None) -> int:
    """`sflsim plot --kind token-curve FILE.json [...] [--out FILE.png]`: accuracy vs K.

    Returns:
        0 when the figure was written, 2 for bad input.
    """
    from analysis.token_curve import plot_token_curves

    target = Path(out) if out else Path(files[0]).with_suffix(".png")
    return _write_figure(target, "token_curve.png", lambda t: plot_token_curves(files, t))


def token_maps_command(run_dirs: Sequence[str], out: str | None = None) -> int:
    """`sflsim plot --kind token-maps RUN_DIR [--out FILE.png]`: kept tokens over the images.

    Returns:
        0 when the figure was written, 2 for bad input (no run, no token maps in it).
    """
    from analysis.token_maps import plot_token_maps

    if not _one_run(run_dirs, "token-maps"):
        return 2
    target = Path(out) if out else Path(run_dirs[0]) / "figures" / "token_maps.png"
    return _write_figure(target, "token_maps.png", lambda t: plot_token_maps(run_dirs[0], t))


def decisions_command(run_dirs: Sequence[str], out: str | None = None) -> int:
    """`sflsim plot --kind decisions RUN_DIR [--out FILE.png]`: tokens, band share and power vs gain.

    Returns:
        0 when the figure was written, 2 for bad input (not one run, no decision columns).
    """
    from analysis.decisions_figure import decisions_figure

    if not _one_run(run_dirs, "decisions"):
        return 2
    target = Path(out) if out else Path(run_dirs[0]) / "figures" / "decisions.png"
    return _write_figure(target, "decisions.png", lambda t: save_figure(
        decisions_figure(run_dirs[0]), t.parent, t.stem, formats=(t.suffix[1:],))[0])


def cells_command(run_dirs: Sequence[str], out: str | None = None) -> int:
    """`sflsim plot --kind cells RUN_DIR [--out FILE.png]`: uplink SINR and handovers over time.

    Returns:
        0 when the figure was written, 2 for bad input (not one run, not a multi-cell run).
    """
    from analysis.cells_figure import cells_figure

    if not _one_run(run_dirs, "cells"):
        return 2
    target = Path(out) if out else Path(run_dirs[0]) / "figures" / "cells.png"
    return _write_figure(target, "cells.png", lambda t: save_figure(
        cells_figure(run_dirs[0]), t.parent, t.stem, formats=(t.suffix[1:],))[0])


def compare_command(run_dirs: Sequence[str]) -> int:
    """`sflsim compare RUN_DIR ...`: print the comparison table (Markdown) to stdout.

    Returns:
        0 on success, 2 for bad input (not a run, or a run missing a needed column).
    """
    if not run_dirs:
        print("sflsim compare: error: give at least one run directory", file=sys.stderr)
        return 2
    try:
        text = compare_runs(run_dirs)
    except (NotARunError, MissingDataError, ValueError) as exc:
        print(f"sflsim compare: error: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis plot|compare ...`` (the same as the sflsim subcommands)."""
    parser = argparse.ArgumentParser(prog="python -m analysis",
                                     description="Figures and tables from sflsim run directories.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_plot = sub.add_parser("plot", help="write the figures that apply and summary.md")
    p_plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p_plot.add_argument("--out", default=None,
                        help="output directory (default: RUN_DIR/figures for one run, "
                             "./figures for several)")
    p_cmp = sub.add_parser("compare", help="print the comparison table")
    p_cmp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    args = parser.parse_args(argv)
    if args.command == "plot":
        return plot_command(args.run_dirs, args.out)
    return compare_command(args.run_dirs)
