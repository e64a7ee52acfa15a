"""Sweeps on Ray: the run directories equal the process pool's byte for byte, and an
interrupted sweep resumes under Ray. Ray is part of the test extra; these tests run in CI."""
from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.overrides import parse_assignments
from scenarios.registry import load
from scenarios.runner import execute, prepare, resolve

from smallrun import run_files, small_args


class _Stop(Exception):
    pass


def _interrupted_run(run_dir: Path, sets: list[str], sweep: dict, after_round: int) -> None:
    """A real run of the sweep's point stopped once ``after_round`` is written to disk."""
    import torch

    torch.set_num_threads(1)  # as each of the two workers runs
    scenario = load("static-cell")
    values = parse_assignments(sets[1::2])
    cfg = resolve(scenario, {**values, **sweep})
    prepared = prepare(scenario, cfg, run_dir, sweep=sweep)

    def stop(row: dict, total: int) -> None:
        if row["round"] >= after_round:
            raise _Stop

    with pytest.raises(_Stop):
        execute(prepared, on_round=stop)


def test_ray_sweep_equals_pool_sweep_and_resumes(tmp_path, fmnist_dir, capsys):
    import ray  # noqa: F401  (required, never skipped: the test extra installs it)

    small = small_args(fmnist_dir, tmp_path / "cache", rounds=2)
    grid = ["--grid", "policy=st-sflora,equal"]
    assert main(["sweep", "static-cell", *small, *grid, "--workers", "2",
                 "--out", str(tmp_path / "pool"), "-q"]) == 0

    # The Ray sweep finds one run stopped after round 1 and resumes it; the other starts fresh.
    _interrupted_run(tmp_path / "ray" / "policy=equal", small, {"policy": "equal"}, after_round=1)
    partial = run_files(tmp_path / "ray" / "policy=equal")
    capsys.readouterr()
    assert main(["sweep", "static-cell", *small, *grid, "--workers", "2", "--ray-address", "local",
                 "--out", str(tmp_path / "ray"), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "2 runs (0 already finished)" in err
    assert "done policy=equal" in err and "done policy=st-sflora" in err
    assert run_files(tmp_path / "ray" / "policy=equal") != partial
    for point in ("policy=st-sflora", "policy=equal"):
        ours, pool = run_files(tmp_path / "ray" / point), run_files(tmp_path / "pool" / point)
        assert sorted(ours) == sorted(pool) and "events.parquet" in ours
        for name in pool:
            assert ours[name] == pool[name], (point, name)

    # Once finished, the Ray sweep only gathers the table.
    assert main(["sweep", "static-cell", *small, *grid, "--ray-address", "local",
                 "--out", str(tmp_path / "ray"), "--resume"]) == 0
    assert "2 runs (2 already finished)" in capsys.readouterr().err
