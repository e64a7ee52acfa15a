"""analysis.report and analysis.cli: what `sflsim plot` / `sflsim compare` write and say."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import compare_command, plot_command
from analysis.report import MULTI_RUN_FIGURES, SINGLE_RUN_FIGURES, compare_runs, plot_runs
from analysis.traces import NotARunError

ROOT = Path(__file__).resolve().parents[2]


def _copy(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("figures"))
    return dst


def test_one_run_default_out_dir(one_run, tmp_path):
    run = _copy(one_run, tmp_path / "run")
    written, skipped = plot_runs([run])
    assert skipped == []
    names = {p.name for p in written}
    assert names == {f"{n}.{ext}" for n in SINGLE_RUN_FIGURES for ext in ("png", "pdf")} | {
        "summary.md"}
    assert all(p.parent == run / "figures" and p.stat().st_size > 0 for p in written)
    assert (run / "figures" / "summary.md").read_text().startswith("# ST-SFLora")


def test_sweep_writes_comparisons(sweep_dirs, ratio_dirs, tmp_path):
    out = tmp_path / "figs"
    written, skipped = plot_runs(sweep_dirs + ratio_dirs, out)
    assert skipped == []
    names = {p.name for p in written}
    assert {f"{n}.pdf" for n in MULTI_RUN_FIGURES} <= names
    assert {"summary.md", "summary.csv"} <= names
    csv = pd.read_csv(out / "summary.csv")
    assert len(csv) == 12 and "final_accuracy" in csv.columns
    # Nothing of the one-run story for a comparison.
    assert "timeline.png" not in names


def test_figures_that_cannot_be_made_are_skipped_with_reason(sweep_dirs, tmp_path):
    # Same K everywhere (full tokens only) and no reason column: those figures are skipped.
    dirs = [_copy(d, tmp_path / d.name) for d in sweep_dirs if "full" in d.name]
    for d in dirs:
        ev = pd.read_parquet(d / "events.parquet").drop(columns=["reason"])
        ev.to_parquet(d / "events.parquet")
    written, skipped = plot_runs(dirs, tmp_path / "out")
    reasons = dict(skipped)
    assert reasons["deadline_miss_rate"] == "needs events.parquet column reason"
    assert "two different token budgets" in reasons["ste_accuracy_vs_tokens"]
    assert reasons["summary"] == "needs events.parquet column reason"
    assert (tmp_path / "out" / "accuracy_vs_uplink_bits.png").exists()
    assert not (tmp_path / "out" / "deadline_miss_rate.png").exists()


def test_plot_runs_rejects_a_non_run(one_run, tmp_path):
    with pytest.raises(NotARunError, match="missing config.json"):
        plot_runs([one_run, tmp_path])


def test_plot_command_output_and_status(one_run, tmp_path, capsys):
    run = _copy(one_run, tmp_path / "run")
    (run / "token_maps.npz").unlink()
    assert plot_command([str(run)], str(tmp_path / "o")) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "timeline.pdf" in out
    assert "skipped token_map: needs token_maps.npz (the run has none)" in out

    assert plot_command([str(tmp_path / "nothing")], None) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a run directory" in err and "nothing" in err


def test_compare_command(sweep_dirs, tmp_path, capsys):
    assert compare_command([str(d) for d in sweep_dirs[:2]]) == 0
    out = capsys.readouterr().out
    assert out == compare_runs(sweep_dirs[:2])
    assert out.count("\n| ST-SFLora (deadline_s=") == 2
    assert compare_command([str(tmp_path)]) == 2
    assert "missing config.json" in capsys.readouterr().err


def test_python_m_analysis(one_run, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analysis", "compare", str(one_run)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("| run")
    proc = subprocess.run([sys.executable, "-m", "analysis", "plot", str(tmp_path / "x")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_sweep_directory_default_out(sweep_dirs, tmp_path):
    sweep = tmp_path / "sweep"
    for d in sweep_dirs[:3]:
        _copy(d, sweep / d.name)
    (sweep / "sweep.parquet").write_bytes(b"")  # what `sflsim sweep` leaves beside the runs
    written, skipped = plot_runs([sweep])
    assert (sweep / "figures" / "summary.md").exists()
    assert all(p.parent == sweep / "figures" for p in written)
    # Plotting again: figures/ is not mistaken for a run.
    assert plot_runs([sweep])[0] == written
