"""Sweeps over a grid (in parallel worker processes) and plotting real run directories."""
from __future__ import annotations

import json

import pandas as pd

from scenarios import rundir
from scenarios.cli import main
from scenarios.sweep import SWEEP_TABLE, grid_points, parse_grid

from smallrun import small_args


def test_grid_is_a_product_in_stable_order():
    grid = parse_grid(["policy=a,b", "deadline_s=1,2,3"])
    points = grid_points(grid)
    assert len(points) == 6
    assert points[0] == {"policy": "a", "deadline_s": "1"} and points[-1] == {"policy": "b", "deadline_s": "3"}


def test_sweep_runs_every_point_in_parallel_and_gathers_a_table(tmp_path, fmnist_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["sweep", "static-cell", *small_args(fmnist_dir, tmp_path / "cache", rounds=2),
            "--grid", "policy=st-sflora,equal", "--grid", "deadline_s=20,30",
            "--workers", "2", "--out", "sw"]
    assert main(args) == 0
    table = pd.read_parquet(tmp_path / "sw" / SWEEP_TABLE)
    assert table[["policy", "deadline_s"]].values.tolist() == [
        ["st-sflora", "20"], ["st-sflora", "30"], ["equal", "20"], ["equal", "30"]]
    assert table["final_accuracy"].notna().all()
    printed = capsys.readouterr().out
    assert sum(line.startswith("| ") for line in printed.splitlines()) == 5  # header + 4 rows
    for _, row in table.iterrows():
        config = json.loads((tmp_path / row["out_dir"] / rundir.CONFIG).read_text())
        assert config["sweep"] == {"policy": row["policy"], "deadline_s": row["deadline_s"]}
        assert config["config"]["deadline_s"] == float(row["deadline_s"])

    # The same sweep again finds every run finished and only gathers the table.
    before = (tmp_path / "sw" / "policy=equal,deadline_s=30" / rundir.EVENTS).read_bytes()
    assert main(args + ["--resume"]) == 0
    assert "4 runs (4 already finished)" in capsys.readouterr().err
    assert (tmp_path / "sw" / "policy=equal,deadline_s=30" / rundir.EVENTS).read_bytes() == before

    # Figures of the whole sweep, and of one run.
    assert main(["plot", "sw", "--out", "figs"]) == 0
    written = {p.name for p in (tmp_path / "figs").iterdir()}
    assert {"accuracy_vs_uplink_bits.png", "latency_cdf.pdf", "summary.md"} <= written
    one = tmp_path / "sw" / "policy=st-sflora,deadline_s=20"
    assert main(["plot", str(one)]) == 0
    figures = {p.name for p in (one / "figures").iterdir()}
    assert {"timeline.png", "channel.png", "token_map.png"} <= figures
    assert main(["compare", str(one), str(tmp_path / "sw" / "policy=equal,deadline_s=20")]) == 0
    table_md = capsys.readouterr().out
    assert "ST-SFLora" in table_md or "st-sflora" in table_md
