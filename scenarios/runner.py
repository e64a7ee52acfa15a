"""Running a scenario into a run directory: resolve, validate, build, loop, write, resume.

Everything that can be wrong with the user's input is found before the run directory is
created (:func:`prepare`: the config, the files it names, the output location, and for
``--resume`` the stored config and checkpoint), so bad input never leaves a directory behind.
A folder is recognised as a run directory before anything is written to it
(:mod:`scenarios.runcheck`): a user's folder is refused, with or without ``--resume``, and not
one byte of it changes. One process at a time writes a run directory
(:class:`scenarios.lock.DirectoryLock`); the folder is created with ``mkdir`` (one creator
wins) and locked right after, then checked again under the lock, and a run never removes a
directory. Each
round appends its rows of every table as a new part and then writes the checkpoint (the
learner, the world, every RNG state and a running hash of the parts; not the trace), so a
round costs the same whatever its index; after the last round the parts are joined once into
one file per table, whose SHA-256 ``config.json`` then records (``files``; checked by resume,
``plot`` and ``compare``). A run killed at any moment resumes from its last checkpoint and
finishes with files identical to an uninterrupted run. ``config.json`` also records the torch
thread count, torch build and CPU capability (``machine``); a resume where one differs is
refused (:func:`scenarios.runcheck.check_machine`).
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from scenarios import runcheck, rundir
from scenarios.lock import DirectoryLock, check_lock_path, holder
# The writer and the table format, importable from here as before.
from scenarios.run_writer import (CHANNEL_COLUMNS, DECISION_COLUMNS, EVENT_COLUMNS, ROUND_COLUMNS,  # noqa: F401
                                  TABLES, RunWriter, frame, schema)
from scenarios.overrides import ConfigError, apply_overrides, to_dict
from scenarios.trace import Trace
from scenarios.validate import check_all
from scenarios.registry import Scenario, load
from scenarios.config import ScenarioConfig
from scenarios.policies import names as policy_names, policy_class

NOT_RESULT_KEYS = ("cache_dir",)
PACKAGES = ("sflsim", "numpy", "scipy", "simpy", "torch", "timm", "peft", "pandas", "pyarrow")

@dataclass
class Prepared:
    """A validated, built run that has not written anything yet."""

    scenario: Scenario
    config: ScenarioConfig
    out_dir: Path
    resume: bool
    sweep: dict
    state: dict | None = None  # the checkpoint a resumed run continues from (checked on load)
    seen: tuple = ()  # :func:`scenarios.runcheck.fingerprint` of the folder when it was checked


def resolve(scenario: Scenario, overrides: Mapping[str, Any] | None = None,
            config_file_values: Mapping[str, Any] | None = None, seed: int | None = None) -> ScenarioConfig:
    """The scenario's default config with the file values, then ``--set`` values, then seed."""
    from scenarios.config import DERIVED_KEYS

    for source in (config_file_values or {}, overrides or {}):
        for key in source:
            if key in DERIVED_KEYS:
                raise ConfigError(f"{key} follows {DERIVED_KEYS[key]}; set {DERIVED_KEYS[key]} instead")
    # One application: every value is checked together with the others, in any order.
    values = {**(config_file_values or {}), **(overrides or {})}
    if seed is not None:
        values["seed"] = seed
    cfg = apply_overrides(scenario.default_config(), values)
    runcheck.check_name(cfg.name)  # it names the default run directory: no '/', no '..'
    return cfg


def default_out_dir(cfg: ScenarioConfig, base: str | os.PathLike = "runs") -> Path:
    """``runs/<scenario>-<policy>-s<seed>``, with ``-2``, ``-3``... if that exists already."""
    stem = Path(base) / f"{cfg.name}-{cfg.policy}-s{cfg.seed}"
    candidate, i = stem, 1
    while candidate.exists():
        i += 1
        candidate = stem.with_name(f"{stem.name}-{i}")
    return candidate


def config_record(scenario: Scenario, cfg: ScenarioConfig, sweep: Mapping[str, Any] | None = None) -> dict:
    """What ``config.json`` holds: the resolved config, where it came from, versions, and what
    else changes the bytes (``machine``: torch threads, torch build, CPU capability)."""
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    versions["python"] = platform.python_version()
    record = {
        "scenario": cfg.name,
        "scenario_source": scenario.source,
        "policy": cfg.policy,
        "policy_label": policy_class(cfg.policy).label,
        "seed": cfg.seed,
        "sweep": dict(sweep or {}),
        "config": to_dict(cfg),
        "versions": versions,
        runcheck.MACHINE_KEY: runcheck.machine_record(),
    }
    return json.loads(json.dumps(record))  # normalise tuples to lists, as stored


def prepare(scenario: Scenario, cfg: ScenarioConfig, out_dir: str | os.PathLike | None, resume: bool = False,
            sweep: Mapping[str, Any] | None = None, threads: int | None = None,
            check_machine: bool = True, force: bool = False) -> Prepared:
    """Check that the run can start, writing nothing: the config as a whole, the files it
    names, the output location (absent, empty, or a run of this project: anything else is
    refused, ``--resume`` or not), nobody else writing there, and for ``--resume`` the stored
    config, the machine values (:func:`scenarios.runcheck.check_machine`, with ``threads`` the
    run will use: default torch's now; ``check_machine=False`` leaves it to the worker), the
    checkpoint (loaded and hash-checked here, so a damaged one stops us now) and the finished
    tables' recorded hashes. Only regular files are read. ``force`` skips the bound on the
    work the config asks for (:mod:`scenarios.work`)."""
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    check_all(cfg, out, force=force)
    state = None
    if out.is_dir():
        check_lock_path(out)
        who = holder(out)
        if who is not None:
            raise ConfigError(f"run directory {out} is in use by {who}; wait for it to finish or choose another --out")
        runcheck.refuse_foreign(out, resume)
    if os.path.lexists(out / rundir.CONFIG):
        record = runcheck.read_record(out)
        if not resume:
            raise ConfigError(f"--out {out} holds a run already; pass --resume to continue it or choose another --out")
        now = config_record(scenario, cfg, sweep)["config"]
        # Where the backbone cache lives does not change results (it is keyed by content).
        stored = {k: v for k, v in record["config"].items() if k not in NOT_RESULT_KEYS}
        now = {k: v for k, v in now.items() if k not in NOT_RESULT_KEYS}
        # config.json before one parameter group per chosen policy held every policy's group
        stored = {k: v for k, v in stored.items() if k in now or k not in policy_names()}
        if stored != now:
            diff = _first_difference(stored, now)
            raise ConfigError(f"--resume: {out} was run with a different config ({diff})")
        if check_machine:
            runcheck.check_machine(out, record, threads)
        if (out / rundir.OLD_CHECKPOINT).exists() and not os.path.lexists(out / rundir.CHECKPOINT):
            raise ConfigError(f"--resume: {out / rundir.OLD_CHECKPOINT} is a pickle of an earlier sflsim; "
                              f"it is not loaded (it could run code): delete {out} and run again")
        if os.path.lexists(out / rundir.CHECKPOINT):
            state = rundir.load_checkpoint(out / rundir.CHECKPOINT)
            for table in runcheck.TABLE_FILES:  # the parts written so far are the ones the checkpoint knows
                if not (out / table).is_file():
                    rundir.verified_parts(out, table, int(state["round"]), state["parts"][table])
            runcheck.check_finished_files(out, record)
        else:
            runcheck.check_unstarted(out)
    return Prepared(scenario=scenario, config=cfg, out_dir=out, resume=resume, sweep=dict(sweep or {}),
                    state=state, seen=runcheck.fingerprint(out))


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return f"{path}: stored {a!r}, now {b!r}"


@dataclass
class RunResult:
    out_dir: Path
    rounds: pd.DataFrame
    resumed_from: int


def build(prepared: Prepared, say: Callable[[str], None]):
    """The scenario's co-simulation; anything its build step raises becomes one line."""
    try:
        return prepared.scenario.build(prepared.config, status=say)
    except (ConfigError, KeyboardInterrupt, MemoryError):
        raise
    except (ValueError, FileNotFoundError, ImportError):
        raise
    except Exception as exc:  # a scenario's own build function: report it, do not crash
        why = " ".join(str(exc).split())[:200]
        raise ConfigError(f"scenario {prepared.scenario.name} ({prepared.scenario.source}): build step failed: "
                          f"{type(exc).__name__}: {why}") from exc


def execute(prepared: Prepared, on_round: Callable[[dict, int], None] | None = None,
            on_status: Callable[[str], None] | None = None) -> RunResult:
    """Build the co-simulation and run it to the end, writing the run directory as it goes.

    Args:
        prepared: from :func:`prepare`.
        on_round: called with each finished round's row and the total rounds (progress bars).
        on_status: called with one-line status messages (pretraining, resuming).
    """
    say = on_status or (lambda msg: None)
    cfg = prepared.config
    cosim = build(prepared, say)
    out = prepared.out_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        out.mkdir()  # one creator wins; whoever locks first writes, and nobody removes it
    except FileExistsError:
        pass
    lock = DirectoryLock(out).acquire()
    try:
        if runcheck.fingerprint(out) != prepared.seen:
            raise ConfigError(f"--out {out} changed between the checks and taking its lock (another "
                              f"writer?); nothing was written: run the command again")
        return _run_locked(prepared, cosim, on_round, say)
    finally:
        lock.release()


def _run_locked(prepared: Prepared, cosim, on_round, say) -> RunResult:
    cfg, out = prepared.config, prepared.out_dir
    if not prepared.resume and (out / rundir.CONFIG).exists():  # another writer finished meanwhile
        raise ConfigError(f"--out {out} holds a run already; pass --resume to continue it or choose another --out")
    _remove_stale_temp_files(out)
    resumed_from = 0
    if prepared.state is not None:
        state = dict(prepared.state)
        writer = RunWriter(out, state.pop("parts"), len(state["token_maps"]))
        state["trace"] = Trace(token_maps=list(state.pop("token_maps")))
        cosim.load_state_dict(state)
        resumed_from = cosim.round
        for table, _, _ in TABLES:
            rundir.drop_parts_after(out, table, resumed_from)
        say(f"resuming {out} after round {resumed_from} of {cfg.rounds}")
    else:
        writer = RunWriter(out)
        for table, _, _ in TABLES:
            rundir.drop_parts_after(out, table, -1)
        rundir.write_json(out / rundir.CONFIG, config_record(prepared.scenario, cfg, prepared.sweep))
        row = cosim.evaluate_start()
        writer.write_round(cosim)
        if on_round:
            on_round(row, cfg.rounds)
    while cosim.round < cfg.rounds:
        row = cosim.step()
        writer.write_round(cosim)
        if on_round:
            on_round(row, cfg.rounds)
    writer.finish(cfg.rounds)
    return RunResult(out_dir=out, rounds=pd.read_parquet(out / rundir.ROUNDS), resumed_from=resumed_from)


def _remove_stale_temp_files(out: Path) -> None:
    """Remove the atomic writer's leftovers of this run's own files (no other ``.*.tmp``)."""
    for tmp in out.glob(".*.tmp"):
        if runcheck.temp_of(tmp.name, runcheck.RUN_NAMES) and tmp.is_file():
            tmp.unlink(missing_ok=True)
    for table in runcheck.TABLE_FILES:
        for tmp in rundir.parts_dir(out, table).glob(".part-*.tmp"):
            tmp.unlink(missing_ok=True)


def summary(rounds: pd.DataFrame) -> dict:
    """Headline numbers of a run (printed at the end and gathered by sweeps)."""
    evaluated = rounds.dropna(subset=["accuracy"])
    trained = rounds[rounds["round"] > 0]
    return {
        "rounds": int(trained.shape[0]),
        "start_accuracy": float(evaluated["accuracy"].iloc[0]) if len(evaluated) else math.nan,
        "final_accuracy": float(evaluated["accuracy"].iloc[-1]) if len(evaluated) else math.nan,
        "uplink_bits": float(trained["uplink_bits"].sum()),
        "energy_j": float(trained["energy_j"].sum()),
        "mean_latency_s": float(trained["latency_s"].mean()) if len(trained) else math.nan,
        "sim_time_s": float(rounds["time_s"].iloc[-1]) if len(rounds) else 0.0,
        "dropped": int(trained["dropped"].sum()),
        "selected": int(trained["selected"].sum()),
    }


def run_scenario(scenario_ref: str | None, overrides: Mapping[str, Any] | None = None,
                 out_dir: str | os.PathLike | None = None, resume: bool = False,
                 sweep: Mapping[str, Any] | None = None, seed: int | None = None,
                 force: bool = False) -> dict:
    """Resolve, prepare and execute one run without any printing; returns its summary.

    This is what a sweep worker (a local process or a Ray task) calls.
    """
    scenario = load(scenario_ref)
    cfg = resolve(scenario, overrides, seed=seed)
    prepared = prepare(scenario, cfg, out_dir, resume=resume, sweep=sweep, force=force)
    result = execute(prepared)
    out = summary(result.rounds)
    out["out_dir"] = str(result.out_dir)
    return out
