"""Running a scenario into a run directory: resolve, validate, build, loop, write, resume.

Everything that can be wrong with the user's input is found before the run directory is
created (:func:`prepare`: the config, the files it names, the output location, and for
``--resume`` the stored config and checkpoint), so bad input never leaves a directory behind.
One process at a time writes a run directory (:class:`scenarios.lock.DirectoryLock`). Each
round appends its rows of every table as a new part and then writes the checkpoint (the
learner, the world, every RNG state and a running hash of the parts; not the trace), so a
round costs the same whatever its index; after the last round the parts are joined once into
one file per table. A run killed at any moment resumes from its last checkpoint and finishes
with files identical to an uninterrupted run.
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
import pyarrow as pa

from scenarios import rundir
from scenarios.lock import LOCK_FILE as LOCK_NAME, DirectoryLock, holder
from scenarios.overrides import ConfigError, apply_overrides, to_dict
from scenarios.trace import Trace
from scenarios.validate import check_all
from scenarios.registry import Scenario, load
from scenarios.cells import table_columns
from scenarios.config import ScenarioConfig
from scenarios.policies import policy_class

NOT_RESULT_KEYS = ("cache_dir",)
_ARROW = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "bool": pa.bool_()}
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
    "bandwidth_hz": "float64", "power_w": "float64", "cut_layer": "int64", "bits_per_value": "int64", "latency_s": "float64",
    "energy_j": "float64", "aggregated": "bool", "reason": "string",
    "planned_gain_db": "float64", "max_power_w": "float64", "energy_budget_j": "float64",
    "uplink_energy_j": "float64", "planned_uplink_s": "float64", "uplink_s": "float64",
}
CHANNEL_COLUMNS = {
    "round": "int64", "time_s": "float64", "device": "int64", "x_m": "float64", "y_m": "float64",
    "speed_mps": "float64", "in_cell": "bool", "pathloss_db": "float64", "gain_db": "float64",
    "snr_db": "float64", "los": "bool",
}


@dataclass
class Prepared:
    """A validated, built run that has not written anything yet."""

    scenario: Scenario
    config: ScenarioConfig
    out_dir: Path
    resume: bool
    sweep: dict
    state: dict | None = None  # the checkpoint a resumed run continues from (checked on load)


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
    return apply_overrides(scenario.default_config(), values)


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
    """Check that the run can start, writing nothing: the config as a whole, the files it
    names, the output location, nobody else writing there, and for ``--resume`` the stored
    config and the checkpoint (loaded and hash-checked here, so a damaged one stops us now)."""
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    check_all(cfg, out)
    state = None
    if out.is_dir():
        who = holder(out)
        if who is not None:
            raise ConfigError(f"run directory {out} is in use by {who}; wait for it to finish or choose another --out")
    existing = out / rundir.CONFIG
    if existing.exists():
        if not resume:
            raise ConfigError(f"--out {out} holds a run already; pass --resume to continue it or choose another --out")
        try:
            stored = json.loads(existing.read_text()).get("config", {})
        except (OSError, ValueError, AttributeError) as exc:
            raise rundir.DamagedFileError(f"{existing} is damaged ({' '.join(str(exc).split())[:100]}); "
                                          f"the run cannot be resumed: delete {out} and run again") from None
        now = config_record(scenario, cfg, sweep)["config"]
        # Where the backbone cache lives does not change results (it is keyed by content).
        stored = {k: v for k, v in stored.items() if k not in NOT_RESULT_KEYS}
        now = {k: v for k, v in now.items() if k not in NOT_RESULT_KEYS}
        if stored != now:
            diff = _first_difference(stored, now)
            raise ConfigError(f"--resume: {out} was run with a different config ({diff})")
        if (out / rundir.OLD_CHECKPOINT).exists() and not (out / rundir.CHECKPOINT).exists():
            raise ConfigError(f"--resume: {out / rundir.OLD_CHECKPOINT} is a pickle of an earlier sflsim; "
                              f"it is not loaded (it could run code): delete {out} and run again")
        if (out / rundir.CHECKPOINT).exists():
            state = rundir.load_checkpoint(out / rundir.CHECKPOINT)
            for table, _, _ in TABLES:  # the parts written so far are the ones the checkpoint knows
                if not (out / table).is_file():
                    rundir.verified_parts(out, table, int(state["round"]), state["parts"][table])
    elif out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()) and not resume:
        raise ConfigError(f"--out {out} is not empty and is not a run directory")
    return Prepared(scenario=scenario, config=cfg, out_dir=out, resume=resume, sweep=dict(sweep or {}), state=state)


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


TABLES = ((rundir.EVENTS, "events", EVENT_COLUMNS), (rundir.ROUNDS, "rounds", ROUND_COLUMNS),
          (rundir.DECISIONS, "decisions", DECISION_COLUMNS), (rundir.CHANNEL, "channel", CHANNEL_COLUMNS))


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
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        lock = DirectoryLock(out).acquire()
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    try:
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


def schema(columns: Mapping[str, str]) -> pa.Schema:
    """The Arrow schema of a table with the documented columns (typed even with no rows)."""
    return pa.schema([(name, _ARROW[dtype]) for name, dtype in columns.items()])


class RunWriter:
    """Writes a run directory round by round: one new part per table, then the checkpoint.

    Args:
        out: the run directory (exists; the caller holds its lock).
        hashes: each table's running hash of its parts so far (from the checkpoint on resume).
        token_maps: token-map examples already written (from the checkpoint on resume).
    """

    def __init__(self, out: Path, hashes: Mapping[str, str] | None = None, token_maps: int = 0) -> None:
        self.out = Path(out)
        self.hashes = {table: "" for table, _, _ in TABLES}
        self.hashes.update(hashes or {})
        self.token_maps = token_maps

    def write_round(self, cosim) -> None:
        """Append round ``cosim.round``'s rows of every table as new parts, then the checkpoint.

        The rows are taken out of ``cosim.trace`` (it holds one round at a time), so memory and
        time per round do not grow with the round index. The checkpoint goes last: if we die
        before it, the resumed run redoes this round and rewrites its parts with the same bytes.
        """
        out, trace, r = self.out, cosim.trace, cosim.round
        for table, attr, columns in TABLES:
            columns = table_columns(cosim.world, attr, columns)  # a multi-cell world adds its columns
            rows = getattr(trace, attr)
            sha = rundir.write_part(out, table, r, frame(rows, columns), schema(columns))
            self.hashes[table] = rundir.chain(self.hashes[table], sha)
            rows.clear()
        if len(trace.token_maps) != self.token_maps:
            self.token_maps = len(trace.token_maps)
            rundir.write_npz(
                out / rundir.TOKEN_MAPS,
                **{key: np.concatenate([m[key] for m in trace.token_maps]) for key in trace.token_maps[0]},
            )
        state = cosim.state_dict()
        state.pop("trace", None)
        state["token_maps"] = list(trace.token_maps)
        state["parts"] = dict(self.hashes)
        rundir.save_checkpoint(out / rundir.CHECKPOINT, state)

    def finish(self, rounds: int) -> None:
        """Join each table's parts (hash-checked against the checkpoint) into its one file."""
        for table, _, _ in TABLES:
            if (self.out / table).is_file():  # joined already (a run killed while removing parts)
                rundir.remove_parts(self.out, table)
                continue
            rundir.join_parts(self.out, table, rundir.verified_parts(self.out, table, rounds, self.hashes[table]))


def _remove_stale_temp_files(out: Path) -> None:
    for tmp in [*out.glob(".*.tmp"), *out.glob(f"*{rundir.PARTS_SUFFIX}/.*.tmp")]:
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
