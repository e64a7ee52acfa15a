"""Running a scenario into a run directory: resolve, validate, build, loop, write, resume.

Everything that can be wrong with the user's input is found before the run directory is
created (:func:`prepare`), so bad input never leaves a directory behind. Once running, every
round ends with the trace files and then the checkpoint written atomically; a run killed at any
moment resumes from its last checkpoint and finishes with files identical to an uninterrupted
run (the checkpoint holds the trace, the learner, the world and every RNG state).
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from scenarios import rundir
from scenarios.overrides import ConfigError, apply_overrides, to_dict
from scenarios.registry import Scenario, load
from scenarios.config import ScenarioConfig
from scenarios.policies import policy_class

NOT_RESULT_KEYS = ("cache_dir",)
PACKAGES = ("sflsim", "numpy", "scipy", "simpy", "torch", "timm", "peft", "pandas", "pyarrow")

EVENT_COLUMNS = {
    "round": "int64", "device": "int64", "step": "int64", "phase": "string",
    "start_s": "float64", "end_s": "float64", "bits": "float64", "rate_bps": "float64",
    "power_w": "float64", "bandwidth_hz": "float64", "energy_j": "float64", "flops": "float64",
    "tokens_kept": "int64", "snr_db": "float64", "completed": "bool", "reason": "string",
}
ROUND_COLUMNS = {
    "round": "int64", "time_s": "float64", "accuracy": "float64", "loss": "float64",
    "train_loss": "float64", "uplink_bits": "float64", "downlink_bits": "float64",
    "energy_j": "float64", "latency_s": "float64", "duration_s": "float64",
    "selected": "int64", "dropped": "int64", "ste": "float64", "ste_planned": "float64",
    "tokens_mean": "float64",
}
DECISION_COLUMNS = {
    "round": "int64", "device": "int64", "status": "string", "tokens": "int64",
    "bandwidth_hz": "float64", "power_w": "float64", "latency_s": "float64",
    "energy_j": "float64", "aggregated": "bool", "reason": "string",
}
CHANNEL_COLUMNS = {
    "round": "int64", "time_s": "float64", "device": "int64", "x_m": "float64", "y_m": "float64",
    "speed_mps": "float64", "in_cell": "bool", "pathloss_db": "float64", "gain_db": "float64",
    "snr_db": "float64",
}


@dataclass
class Prepared:
    """A validated, built run that has not written anything yet."""

    scenario: Scenario
    config: ScenarioConfig
    out_dir: Path
    resume: bool
    sweep: dict


def resolve(scenario: Scenario, overrides: Mapping[str, Any] | None = None,
            config_file_values: Mapping[str, Any] | None = None, seed: int | None = None) -> ScenarioConfig:
    """The scenario's default config with the file values, then ``--set`` values, then seed."""
    from scenarios.config import DERIVED_KEYS

    for source in (config_file_values or {}, overrides or {}):
        for key in source:
            if key in DERIVED_KEYS:
                raise ConfigError(f"{key} follows {DERIVED_KEYS[key]}; set {DERIVED_KEYS[key]} instead")
    cfg = scenario.default_config()
    if config_file_values:
        cfg = apply_overrides(cfg, config_file_values)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    if seed is not None:
        cfg = apply_overrides(cfg, {"seed": seed})
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
    """What ``config.json`` holds: the resolved config, where it came from, and versions."""
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
    }
    return json.loads(json.dumps(record))  # normalise tuples to lists, as stored


def prepare(scenario: Scenario, cfg: ScenarioConfig, out_dir: str | os.PathLike | None, resume: bool = False,
            sweep: Mapping[str, Any] | None = None) -> Prepared:
    """Check that the run can start: the directory, the config of a resumed run, the data."""
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    existing = out / rundir.CONFIG
    if existing.exists():
        if not resume:
            raise ConfigError(f"--out {out} holds a run already; pass --resume to continue it or choose another --out")
        stored = json.loads(existing.read_text()).get("config", {})
        now = config_record(scenario, cfg, sweep)["config"]
        # Where the backbone cache lives does not change results (it is keyed by content).
        stored = {k: v for k, v in stored.items() if k not in NOT_RESULT_KEYS}
        now = {k: v for k, v in now.items() if k not in NOT_RESULT_KEYS}
        if stored != now:
            diff = _first_difference(stored, now)
            raise ConfigError(f"--resume: {out} was run with a different config ({diff})")
    elif out.exists() and any(out.iterdir()) and not resume:
        raise ConfigError(f"--out {out} is not empty and is not a run directory")
    return Prepared(scenario=scenario, config=cfg, out_dir=out, resume=resume, sweep=dict(sweep or {}))


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
    cosim = prepared.scenario.build(cfg, status=say)
    out = prepared.out_dir
    checkpoint = out / rundir.CHECKPOINT
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _remove_stale_temp_files(out)
        resumed_from = 0
        if prepared.resume and checkpoint.exists():
            cosim.load_state_dict(rundir.load_checkpoint(checkpoint))
            resumed_from = cosim.round
            say(f"resuming {out} after round {resumed_from} of {cfg.rounds}")
        else:
            rundir.write_json(out / rundir.CONFIG, config_record(prepared.scenario, cfg, prepared.sweep))
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if cosim.round == 0 and not cosim.trace.rounds:
        row = cosim.evaluate_start()
        if on_round:
            on_round(row, cfg.rounds)
        write_outputs(out, cosim)
    while cosim.round < cfg.rounds:
        row = cosim.step()
        write_outputs(out, cosim)
        if on_round:
            on_round(row, cfg.rounds)
    return RunResult(out_dir=out, rounds=frame(cosim.trace.rounds, ROUND_COLUMNS), resumed_from=resumed_from)


def frame(rows: list[dict], columns: Mapping[str, str]) -> pd.DataFrame:
    """Rows as a DataFrame with the documented columns, order and dtypes."""
    data = {name: [row.get(name) for row in rows] for name in columns}
    df = pd.DataFrame(data)
    for name, dtype in columns.items():
        if dtype == "string":
            df[name] = df[name].astype(object).where(df[name].notna(), "").astype(str)
        else:
            df[name] = df[name].astype(dtype)
    return df


def write_outputs(out: Path, cosim) -> None:
    """Write the trace files and then the checkpoint of ``cosim`` into ``out`` (atomically)."""
    trace = cosim.trace
    rundir.write_parquet(out / rundir.EVENTS, frame(trace.events, EVENT_COLUMNS))
    rundir.write_parquet(out / rundir.ROUNDS, frame(trace.rounds, ROUND_COLUMNS))
    rundir.write_parquet(out / rundir.DECISIONS, frame(trace.decisions, DECISION_COLUMNS))
    rundir.write_parquet(out / rundir.CHANNEL, frame(trace.channel, CHANNEL_COLUMNS))
    if trace.token_maps:
        rundir.write_npz(
            out / rundir.TOKEN_MAPS,
            **{key: np.concatenate([m[key] for m in trace.token_maps]) for key in trace.token_maps[0]},
        )
    # The checkpoint goes last: if we die before it, the resumed run redoes this round and
    # rewrites the files above with the same bytes.
    rundir.save_checkpoint(out / rundir.CHECKPOINT, cosim.state_dict())


def _remove_stale_temp_files(out: Path) -> None:
    for tmp in out.glob(".*.tmp"):
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
                 sweep: Mapping[str, Any] | None = None, seed: int | None = None) -> dict:
    """Resolve, prepare and execute one run without any printing; returns its summary.

    This is what a sweep worker (a local process or a Ray task) calls.
    """
    scenario = load(scenario_ref)
    cfg = resolve(scenario, overrides, seed=seed)
    prepared = prepare(scenario, cfg, out_dir, resume=resume, sweep=sweep)
    result = execute(prepared)
    out = summary(result.rounds)
    out["out_dir"] = str(result.out_dir)
    return out
