"""Sweeps: a grid of runs of one scenario, in parallel on this machine or on a Ray cluster.

Every grid point is an ordinary run directory under the sweep directory, named by the values it
varies (``policy=equal,deadline_s=2``), with those values recorded in its ``config.json`` under
``sweep``. With seeds (``--seeds 0-4``) every grid point is run once per seed, each in its own
directory ``<point>/seed=<n>``, made exactly as the run made alone with ``--seed n``. Runs are
independent, so parallelism is the standard library's process pool locally and Ray tasks on a
cluster; nothing here schedules work itself. A sweep interrupted at any point continues with
``--resume``: finished runs are kept, unfinished ones resume from their checkpoints.

A sweep writes only into a folder that is absent, empty or a sweep's (:func:`check_sweep_dir`:
its grid points' folders, ``sweep.parquet`` and ``sweep.json``), and replaces ``sweep.parquet``
only when it is the one it wrote (its SHA-256 is in ``sweep.json``); a grid value that would
name a folder outside the sweep's is refused.
"""
from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from analysis.files import NotRegularFileError
from analysis.run_integrity import DamagedRunFileError, read_table
from analysis.tables import to_markdown
from scenarios import runcheck, rundir
from scenarios.lock import DirectoryLock
from scenarios.overrides import ConfigError, parse_assignments
from scenarios.progress import SweepProgress
from scenarios.ray_cluster import check_ray_address, ray_init
from scenarios.runner import prepare, resolve, summary
from scenarios.seeds import MAX_RUNS, SEED_KEY, check_seed_options, seed_dir
from scenarios.sweep_dir import SWEEP_TABLE, _write_table, check_sweep_dir



def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["policy=a,b", "deadline_s=1,2"]`` -> ``{"policy": ["a", "b"], "deadline_s": ["1", "2"]}``."""
    grid: dict[str, list[str]] = {}
    keys = [item.partition("=")[0].strip() for item in items]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(f"--grid {key} is given {keys.count(key)} times; give its values once, e.g. {key}=a,b")
    for key, text in parse_assignments(items, option="--grid").items():
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--grid {key}= needs at least one value, e.g. {key}=a,b")
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(f"--grid {key}={text}: {', '.join(repeated)} given twice; each value once")
        grid[key] = values
    return grid


def grid_points(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """The cartesian product of the grid, in a stable order (first key varies slowest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def point_dir(out: Path, point: Mapping[str, str]) -> Path:
    """``out/<k1=v1,k2=v2>`` (characters outside ``[A-Za-z0-9=,.-_]`` become ``_``)."""
    for key, value in point.items():
        runcheck.check_name(str(value), f"--grid {key}")  # names stay inside the sweep folder
    name = ",".join(f"{k}={v}" for k, v in point.items())
    safe = "".join(c if c.isalnum() or c in "=,.-_" else "_" for c in name)
    return out / safe if safe else out


def check_run_count(grid: Mapping[str, Sequence[str]], seeds: Sequence[int] | None) -> None:
    """Refuse a plan of more than :data:`scenarios.seeds.MAX_RUNS` runs (counted, not built)."""
    count = math.prod(len(v) for v in grid.values()) * (len(seeds) if seeds is not None else 1)
    if count > MAX_RUNS:
        shape = " x ".join([f"{len(v)} {k}" for k, v in grid.items()]
                           + ([f"{len(seeds)} seeds"] if seeds is not None else []))
        raise ConfigError(f"the sweep would plan {count} runs ({shape}), more than the {MAX_RUNS} one "
                          f"command may plan; split it into several sweeps")


def check_point_dirs(out: Path, points: Sequence[Mapping[str, str]]) -> None:
    """Every grid point gets its own directory, of a name the file system takes.

    Raises:
        ConfigError: two points whose directory names are equal (or equal but for case, which
            one folder on a case-insensitive file system), or a name too long for a folder.
    """
    limit = _name_max(out)
    seen: dict[str, Mapping[str, str]] = {}
    for point in points:
        name = point_dir(out, point).name
        if len(os.fsencode(name)) > limit:
            raise ConfigError(f"--grid {_point_text(point)}: its directory name is {len(os.fsencode(name))} "
                              f"bytes, more than the {limit} a folder name may have; use shorter values")
        other = seen.get(name.casefold())
        if other is not None:
            raise ConfigError(f"--grid {_point_text(other)} and {_point_text(point)} would share the run "
                              f"directory {out / name}; give values that differ in more than case and "
                              f"punctuation (rename one policy file or class)")
        seen[name.casefold()] = point


def _point_text(point: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items())


def _name_max(out: Path) -> int:
    """Longest folder name (bytes) where ``out`` is or will be (255 where it cannot be asked)."""
    parent = Path(os.path.abspath(out))
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        return int(os.pathconf(parent, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


@dataclass(frozen=True)
class Job:
    """One run of a sweep: its overrides, directory, grid values (and seed) and whether it is
    finished already."""

    overrides: dict
    run_dir: Path
    sweep: dict
    finished: bool

    @property
    def name(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.sweep.items() if k != SEED_KEY) + (
            f"/seed={self.sweep[SEED_KEY]}" if SEED_KEY in self.sweep else "")


def plan(scenario, sets: Mapping[str, str], file_values: Mapping[str, Any] | None,
         seed: int | None, grid: Mapping[str, Sequence[str]], out: str | os.PathLike,
         seeds: Sequence[int] | None = None, resume: bool = False,
         record_sweep: bool = True, threads: int | None = None, force: bool = False) -> list[Job]:
    """Validate every run of the sweep before anything is written.

    Args:
        scenario: the loaded scenario.
        sets, file_values: ``--set`` and ``--config`` values applied to every run.
        seed: ``--seed`` (all runs), or None.
        grid: the swept keys and their values (text).
        out: the sweep directory.
        seeds: run every grid point once per seed, in ``<point>/seed=<n>``.
        resume: continue runs whose directory exists.
        record_sweep: record the grid values (and seed) in each ``config.json``; False makes
            each run's ``config.json`` that of the same run made alone (``sflsim run --seeds``).
        threads: torch threads of each worker, checked against a resumed run's (None: each
            worker checks when it starts).
        force: skip the bound on each run's work (``--force``).

    Raises:
        ConfigError: a bad value anywhere in the grid, conflicting seed options, or a run
            directory that holds another run (without ``resume``).
    """
    check_seed_options(seed, seeds, grid, {**(file_values or {}), **sets})
    out = Path(out)
    check_run_count(grid, seeds)
    points = grid_points(grid)
    check_point_dirs(out, points)
    jobs = []
    for point in points:
        for s in (seeds if seeds is not None else (None,)):
            overrides = {**(file_values or {}), **sets, **point}
            if seed is not None:
                overrides[SEED_KEY] = seed
            run_dir = point_dir(out, point)
            recorded = dict(point)
            if s is not None:
                overrides[SEED_KEY] = s
                run_dir = seed_dir(run_dir, s)
                recorded[SEED_KEY] = str(s)
            cfg = resolve(scenario, overrides)  # raises ConfigError naming the bad key or value
            done = finished(run_dir, cfg.rounds)
            if not done:
                prepare(scenario, cfg, run_dir, resume=resume, sweep=recorded if record_sweep else {},
                        threads=threads, check_machine=threads is not None, force=force)
            jobs.append(Job(overrides, run_dir, recorded, done))
    return jobs


def _worker(scenario_ref: str, overrides: dict, out_dir: str, resume: bool, record: dict,
            threads: int, cwd: str | None = None, force: bool = False) -> dict:
    import torch

    from scenarios.runner import run_scenario

    if cwd is not None and os.path.isdir(cwd):
        os.chdir(cwd)  # a Ray worker starts elsewhere; relative paths are the driver's
    torch.set_num_threads(threads)
    start = time.perf_counter()
    result = run_scenario(scenario_ref, overrides, out_dir, resume=resume, sweep=record, force=force)
    result["wall_s"] = time.perf_counter() - start
    return result


def execute(scenario, jobs: Sequence[Job], workers: int = 1, ray_address: str | None = None,
            resume: bool = False, quiet: bool = False, record_sweep: bool = True,
            desc: str = "sweep", force: bool = False) -> pd.DataFrame:
    """Run the unfinished jobs (process pool or Ray) and return one row per job, in job order.

    Args:
        scenario: the loaded scenario (its name or file is what workers load).
        jobs: from :func:`plan`.
        workers: parallel local processes; with ``ray_address="local"``, the CPUs of the local
            Ray instance.
        ray_address: ``"local"`` starts a local Ray; ``"auto"`` or ``host:port`` joins one.
        resume: continue partial runs from their checkpoints.
        quiet: no progress bar and no per-run lines.
        record_sweep: as in :func:`plan`.
        desc: the progress bar's label.
        force: skip the bound on each run's work (as :func:`plan` was told).
    """
    if workers <= 0:
        raise ConfigError(f"--workers must be > 0, got {workers}")
    ref = scenario.name if scenario.source.startswith("scenarios.") else str(Path(scenario.source).resolve())
    threads = worker_threads(workers)
    cwd = os.getcwd()
    todo = [(i, j) for i, j in enumerate(jobs) if not j.finished]
    results: dict[int, dict] = {i: _summary_of(j.run_dir) for i, j in enumerate(jobs) if j.finished}
    args = {i: (ref, j.overrides, str(j.run_dir), resume or j.run_dir.exists(),
                j.sweep if record_sweep else {}, threads, cwd, force) for i, j in todo}
    with SweepProgress(len(jobs), done=len(results), quiet=quiet, desc=desc) as bar:
        bar.message(f"{desc}: {len(jobs)} runs ({len(results)} already finished)")
        if ray_address is not None and args:
            _run_ray(args, jobs, results, bar, ray_address, workers, threads)
        elif ray_address is not None or workers == 1:
            for i, a in args.items():
                bar.set_running(1)
                results[i] = _worker(*a)
                bar.finished(jobs[i].name, results[i], results[i]["wall_s"])
        else:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                pending = {pool.submit(_worker, *a): i for i, a in args.items()}
                while pending:
                    done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = pending.pop(fut)
                        results[i] = fut.result()
                        bar.finished(jobs[i].name, results[i], results[i]["wall_s"])
                    # The pool marks a call running when it enters its call queue, which holds
                    # one more than the workers: at most ``workers`` of them really run.
                    bar.set_running(min(workers, sum(f.running() for f in pending)))
    rows = []
    for i, job in enumerate(jobs):
        row = {k: v for k, v in results[i].items() if k != "wall_s"}
        row["out_dir"] = str(job.run_dir)
        rows.append({**job.sweep, **row})
    return pd.DataFrame(rows)


def worker_threads(workers: int) -> int:
    """The torch threads of each worker: this process's (``--threads``, default all cores)
    shared by the workers, so a sweep of one worker computes exactly as ``sflsim run``."""
    import torch

    return max(1, torch.get_num_threads() // max(1, workers))


def _run_ray(args: dict, jobs, results: dict, bar: SweepProgress, address: str, workers: int,
             threads: int) -> None:
    started = ray_init(address, workers * threads)
    import ray

    try:
        remote = ray.remote(num_cpus=threads)(_worker)
        pending = {remote.remote(*a): i for i, a in args.items()}
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        while pending:
            bar.set_running(min(slots, len(pending)))
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in done:
                i = pending.pop(ref)
                results[i] = ray.get(ref)
                bar.finished(jobs[i].name, results[i], results[i]["wall_s"])
    finally:
        if started:
            ray.shutdown()


def run_sweep(scenario, base_cfg, sets: Mapping[str, str], file_values: Mapping[str, Any] | None,
              seed: int | None, grid: Mapping[str, Sequence[str]], out: str | os.PathLike,
              workers: int = 1, ray_address: str | None = None, resume: bool = False,
              seeds: Sequence[int] | None = None, quiet: bool = False,
              record_sweep: bool = True, force: bool = False) -> int:
    """Validate every run, then run them all; print the gathered table and save it."""
    if workers <= 0:
        raise ConfigError(f"--workers must be > 0, got {workers}")
    check_ray_address(ray_address)
    out = Path(out)
    check_sweep_dir(out)
    jobs = plan(scenario, sets, file_values, seed, grid, out, seeds=seeds, resume=resume,
                record_sweep=record_sweep, threads=worker_threads(workers), force=force)
    # A cluster is joined before anything is written: one that does not answer leaves nothing.
    joined = ray_address not in (None, "local") and any(not j.finished for j in jobs) \
        and ray_init(ray_address, workers)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with DirectoryLock(out, "sweep directory"):  # one sweep at a time writes a sweep directory
            check_sweep_dir(out)  # again, under the lock
            table = execute(scenario, jobs, workers=workers, ray_address=ray_address, resume=resume,
                            quiet=quiet, record_sweep=record_sweep, force=force)
            _write_table(out, table)
    finally:
        if joined:
            import ray

            ray.shutdown()
    keys = list(grid) + ([SEED_KEY] if seeds is not None else [])
    print(_markdown(table, keys), end="")
    if seeds is not None and len(seeds) > 1 and not quiet:
        print(f"means with 95 % intervals over the seeds: sflsim compare {out}", file=sys.stderr)
    return 0


def _rounds_of(run_dir: Path) -> pd.DataFrame | None:
    """The rounds table of a finished run (hash- and schema-checked), None if it has none."""
    if not (run_dir / rundir.ROUNDS).is_file() or not os.path.lexists(run_dir / rundir.CONFIG):
        return None
    record = runcheck.read_record(run_dir)
    try:
        return read_table(run_dir, rundir.ROUNDS, record)
    except (DamagedRunFileError, NotRegularFileError) as exc:
        raise rundir.DamagedFileError(str(exc)) from None


def finished(run_dir: Path, rounds: int) -> bool:
    """Whether ``run_dir`` holds a run that reached ``rounds`` (its checked rounds table says so)."""
    df = _rounds_of(run_dir)
    return df is not None and bool(len(df)) and int(df["round"].max()) >= rounds


def _summary_of(run_dir: Path) -> dict:
    s = summary(_rounds_of(run_dir))
    s["out_dir"] = str(run_dir)
    return s


def _markdown(table: pd.DataFrame, keys: list[str]) -> str:
    cols = keys + ["final_accuracy", "uplink_bits", "energy_j", "mean_latency_s", "dropped"]
    return to_markdown(table[[c for c in cols if c in table.columns]])


__all__ = ["parse_grid", "grid_points", "point_dir", "check_run_count", "check_point_dirs",
           "plan", "execute", "run_sweep", "finished",
           "SWEEP_TABLE"]
