"""Sweeps: a grid of runs of one scenario, in parallel on this machine or on a Ray cluster.

Every grid point is an ordinary run directory under the sweep directory, named by the values it
varies (``policy=equal,deadline_s=2``), with those values recorded in its ``config.json`` under
``sweep``. Runs are independent, so parallelism is the standard library's process pool locally
and Ray tasks on a cluster; nothing here schedules work itself. A sweep interrupted at any point
continues with ``--resume``: finished runs are kept, unfinished ones resume from their
checkpoints.
"""
from __future__ import annotations

import itertools
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Mapping, Sequence

import multiprocessing as mp

import pandas as pd

from analysis.tables import to_markdown
from scenarios import rundir
from scenarios.overrides import ConfigError, parse_assignments
from scenarios.runner import prepare, resolve, summary

SWEEP_TABLE = "sweep.parquet"


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["policy=a,b", "deadline_s=1,2"]`` -> ``{"policy": ["a", "b"], "deadline_s": ["1", "2"]}``."""
    grid: dict[str, list[str]] = {}
    for key, text in parse_assignments(items, option="--grid").items():
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--grid {key}= needs at least one value, e.g. {key}=a,b")
        grid[key] = values
    return grid


def grid_points(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """The cartesian product of the grid, in a stable order (first key varies slowest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def point_dir(out: Path, point: Mapping[str, str]) -> Path:
    name = ",".join(f"{k}={v}" for k, v in point.items())
    safe = "".join(c if c.isalnum() or c in "=,.-_" else "_" for c in name)
    return out / safe


def _worker(scenario_ref: str, overrides: dict, out_dir: str, resume: bool, sweep: dict,
            threads: int) -> dict:
    import torch

    from scenarios.runner import run_scenario

    torch.set_num_threads(threads)
    result = run_scenario(scenario_ref, overrides, out_dir, resume=resume, sweep=sweep)
    return {**sweep, **result}


def run_sweep(scenario, base_cfg, sets: Mapping[str, str], file_values: Mapping[str, Any] | None,
              seed: int | None, grid: Mapping[str, Sequence[str]], out: str | os.PathLike,
              workers: int = 1, ray_address: str | None = None, resume: bool = False) -> int:
    """Validate every grid point, then run them all; print and save the gathered table."""
    if workers <= 0:
        raise ConfigError(f"--workers must be > 0, got {workers}")
    out = Path(out)
    points = grid_points(grid)
    jobs = []
    for point in points:
        overrides = {**(file_values or {}), **sets, **point}
        if seed is not None:
            overrides["seed"] = seed
        cfg = resolve(scenario, overrides)  # raises ConfigError naming the bad key or value
        run_dir = point_dir(out, point)
        done = _finished(run_dir, cfg.rounds)
        if not done:
            prepare(scenario, cfg, run_dir, resume=resume, sweep=point)
        jobs.append((overrides, run_dir, point, done))
    ref = scenario.name if scenario.source.startswith("scenarios.") else scenario.source
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    todo = [(ov, str(d), resume or d.exists(), pt) for ov, d, pt, done in jobs if not done]
    results: list[dict] = [_summary_of(d, pt) for ov, d, pt, done in jobs if done]
    print(f"sweep: {len(points)} runs ({len(points) - len(todo)} already finished) -> {out}", file=sys.stderr)

    if ray_address is not None:
        results += _run_ray(ref, todo, ray_address, threads)
    elif workers == 1:
        for ov, d, res, pt in todo:
            print(f"sweep: running {Path(d).name}", file=sys.stderr)
            results.append(_worker(ref, ov, d, res, pt, threads))
    else:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_worker, ref, ov, d, res, pt, threads): d for ov, d, res, pt in todo}
            for fut in as_completed(futures):
                results.append(fut.result())
                print(f"sweep: finished {Path(futures[fut]).name}", file=sys.stderr)

    table = pd.DataFrame(results)
    order = {tuple(p.items()): i for i, p in enumerate(points)}
    table["_order"] = [order[tuple((k, str(r[k])) for k in grid)] for r in results]
    table = table.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    rundir.write_parquet(out / SWEEP_TABLE, table)
    print(_markdown(table, list(grid)), end="")
    return 0


def _run_ray(ref: str, todo: list, address: str, threads: int) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray-address needs Ray: pip install 'sflsim[ray]'") from None
    ray.init(address=None if address == "local" else address, ignore_reinit_error=True)
    remote = ray.remote(num_cpus=threads)(_worker)
    refs = [remote.remote(ref, ov, d, res, pt, threads) for ov, d, res, pt in todo]
    return list(ray.get(refs))


def _finished(run_dir: Path, rounds: int) -> bool:
    path = run_dir / rundir.ROUNDS
    if not path.exists():
        return False
    df = pd.read_parquet(path)
    return bool(len(df)) and int(df["round"].max()) >= rounds


def _summary_of(run_dir: Path, point: Mapping[str, str]) -> dict:
    s = summary(pd.read_parquet(run_dir / rundir.ROUNDS))
    s["out_dir"] = str(run_dir)
    return {**point, **s}


def _markdown(table: pd.DataFrame, keys: list[str]) -> str:
    cols = keys + ["final_accuracy", "uplink_bits", "energy_j", "mean_latency_s", "dropped"]
    return to_markdown(table[[c for c in cols if c in table.columns]])


__all__ = ["parse_grid", "grid_points", "run_sweep"]
