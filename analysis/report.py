"""Write the figures that apply to some runs, and their summary.

One run gets its own story: accuracy over rounds, time and uplink bits, its energy split and
latency CDF, the timeline of a round, the channel its decisions reacted to and the tokens it
kept. Several runs get the comparisons: trade-off curves, energy, latency CDF, misses, and, when
the runs sweep them, energy vs deadline and STE / accuracy vs token budget. A figure that cannot
be made (a column or file missing, nothing swept) is skipped with the reason, never silently.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from analysis import metrics, plots, tables
from analysis.files import atomic_write_text
from analysis.metrics import MissingDataError
from analysis.traces import Runs, is_run_dir, load_runs

SINGLE_RUN_FIGURES = ("accuracy_vs_rounds", "accuracy_vs_time", "accuracy_vs_uplink_bits",
                      "energy_split", "latency_cdf", "timeline", "channel", "token_map")
MULTI_RUN_FIGURES = ("accuracy_vs_uplink_bits", "accuracy_vs_rounds", "accuracy_vs_time",
                     "energy_split", "latency_cdf", "deadline_miss_rate", "energy_vs_deadline",
                     "ste_accuracy_vs_tokens")
DEFAULT_MULTI_OUT = Path("figures")


def default_out_dir(run_dirs: Sequence[str | Path], runs: Runs) -> Path:
    """``<run>/figures`` for one run, ``<sweep>/figures`` for one sweep directory, else
    ``./figures``."""
    if len(runs) == 1:
        return runs.runs[0].path / "figures"
    if len(run_dirs) == 1 and not is_run_dir(run_dirs[0]):
        return Path(run_dirs[0]) / "figures"
    return DEFAULT_MULTI_OUT


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def _tokens_vary(runs: Runs) -> None:
    for run in runs:
        metrics.require(run.rounds, ("round", "tokens_mean"), "ste_accuracy_vs_tokens",
                        "rounds.parquet")
    k = np.array([metrics.mean_trained(r.rounds, "tokens_mean") for r in runs])
    k = k[np.isfinite(k)]
    if np.unique(np.round(k, 6)).size < 2:
        raise MissingDataError("ste_accuracy_vs_tokens",
                               "runs with at least two different token budgets (tokens_mean)")


def _figure_jobs(runs: Runs) -> list[tuple[str, Callable[[], object]]]:
    if len(runs) == 1:
        run = runs.runs[0]
        single = {"timeline": lambda: plots.timeline(run),
                  "channel": lambda: plots.channel_traces(run),
                  "token_map": lambda: plots.token_map(run)}
        return [(name, single.get(name, lambda fn=plots.FIGURES[name]: fn(runs)))
                for name in SINGLE_RUN_FIGURES]
    jobs = []
    for name in MULTI_RUN_FIGURES:
        fn = plots.FIGURES[name]
        if name == "ste_accuracy_vs_tokens":
            jobs.append((name, lambda fn=fn: (_tokens_vary(runs), fn(runs))[1]))
        else:
            jobs.append((name, lambda fn=fn: fn(runs)))
    return jobs


def plot_runs(run_dirs: Sequence[str | Path] | Iterable[str | Path],
              out_dir: str | Path | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Write the figures (PNG and PDF) that apply to the runs, and ``summary.md``.

    Args:
        run_dirs: one or more run directories, or a sweep directory (its runs).
        out_dir: where to write; default ``<run>/figures`` for one run, ``<sweep>/figures``
            for a sweep directory, ``./figures`` for several runs.

    Returns:
        (written, skipped): the files written, and ``(figure, reason)`` for each figure that
        could not be made.

    Raises:
        NotARunError: a directory is not a run.
        ValueError: no directory given.
    """
    run_dirs = list(run_dirs)
    runs = load_runs(run_dirs)
    out = Path(out_dir) if out_dir is not None else default_out_dir(run_dirs, runs)
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for name, make in _figure_jobs(runs):
        try:
            fig = make()
        except MissingDataError as exc:
            skipped.append((name, f"needs {exc.missing}"))
            continue
        written += plots.save_figure(fig, out, name)
    try:
        if len(runs) == 1:
            text = tables.summary_markdown(runs.runs[0])
        else:
            text = compare_text(runs)
            written.append(_write_text(out / "summary.csv",
                                       tables.comparison_table(runs).to_csv(index=False)))
        written.append(_write_text(out / "summary.md", text))
    except MissingDataError as exc:
        skipped.append(("summary", f"needs {exc.missing}"))
    return written, skipped


def compare_text(runs: Runs) -> str:
    """Markdown comparison of loaded runs, with the run directories listed below."""
    paths = "\n".join(f"- {label}: `{run.path}`" for label, run in zip(runs.labels, runs))
    return f"# Comparison of {len(runs)} runs\n\n{tables.compare_markdown(runs)}\nRuns:\n\n{paths}\n"


def compare_runs(run_dirs: Sequence[str | Path] | Iterable[str | Path]) -> str:
    """The comparison table of the runs as Markdown (see :func:`analysis.tables.compare_markdown`).

    Raises:
        NotARunError: a directory is not a run.
        MissingDataError: a run lacks a column the table needs.
    """
    return tables.compare_markdown(load_runs(run_dirs))
