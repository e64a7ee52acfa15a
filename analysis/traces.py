"""Run directories to tidy DataFrames.

A run directory (docs/interfaces.md) holds ``config.json``, ``events.parquet``,
``rounds.parquet`` and optionally ``channel.parquet`` and ``token_maps.npz``; while a run is
going (or after it was killed) a table is a folder of per-round parts
(``rounds.parquet.parts/``), read as the one table it stands for. :func:`load_run`
reads one, :func:`load_runs` reads several and concatenates their frames with the columns that
tell the runs apart: ``run`` (index in the order given), ``label`` (a short human name, unique
among the runs loaded together), ``scenario``, ``policy`` and one column per key a sweep varied
(from the ``sweep`` dict of ``config.json``).

Only pandas, pyarrow, numpy and the standard library are used: analysis never imports the
simulator, so it reads runs made by any version of it.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.files import NotRegularFileError, read_regular_bytes
from analysis.run_integrity import PARTS_SUFFIX, DamagedRunFileError, read_checked, read_table, table_exists  # noqa: F401

REQUIRED_FILES = ("config.json", "events.parquet", "rounds.parquet")
OPTIONAL_FILES = ("channel.parquet", "token_maps.npz")

# Top-level config keys that differ between runs without describing them.
_NOISY_CONFIG_KEYS = {"versions", "sweep", "out", "out_dir", "run_dir", "path", "created",
                      "created_at", "hostname", "git", "command"}


class NotARunError(ValueError):
    """The path is not a run directory: it is missing, not a directory, or lacks a run file."""


def policy_label(config: Mapping) -> str:
    """The policy's display label as the run recorded it (``policy_label`` in ``config.json``),
    else its name."""
    label = config.get("policy_label")
    return str(label) if label else str(config_value(config, "policy", "?"))


def format_value(value: Any) -> str:
    """A sweep value as it appears in a label: floats in short form, others via ``str``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def coerce(value: Any) -> Any:
    """A swept value as a number or bool when it is written as one (sweeps store strings)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return value


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_value(config: Mapping, key: str, default: Any = None) -> Any:
    """Look ``key`` up in a ``config.json`` dict.

    The scenarios layer writes ``scenario, policy, seed, sweep, versions`` at the top and the
    resolved scenario config under ``config`` (nested dataclasses as nested dicts). ``key`` may
    be top-level, a field of ``config`` (``deadline_s``) or a dotted path into it
    (``world.bandwidth_hz``); a plain name also matches a unique nested leaf of that name.
    """
    if key in config and not isinstance(config[key], Mapping):
        return config[key]
    inner = config.get("config")
    if isinstance(inner, Mapping):
        flat = _flatten(inner)
        if key in flat:
            return flat[key]
        leaves = [v for k, v in flat.items() if k.rsplit(".", 1)[-1] == key]
        if len(leaves) == 1:
            return leaves[0]
    return default


def settings(config: Mapping) -> dict[str, Any]:
    """Every scalar setting of a ``config.json`` dict by the name :func:`config_value` takes."""
    out = {k: v for k, v in config.items() if k not in _NOISY_CONFIG_KEYS
           and k != "config" and _is_scalar(v)}
    inner = config.get("config")
    if isinstance(inner, Mapping):
        out.update({k: v for k, v in _flatten(inner).items() if _is_scalar(v)})
    return out


@dataclass
class Run:
    """One run directory, loaded.

    Attributes:
        path: the run directory.
        config: ``config.json`` as a dict.
        events: ``events.parquet``, one row per device per phase.
        rounds: ``rounds.parquet``, one row per round, sorted by round.
        channel: ``channel.parquet`` or None when the run has none.
        token_maps: the arrays of ``token_maps.npz`` or None when the run has none.
    """

    path: Path
    config: dict
    events: pd.DataFrame
    rounds: pd.DataFrame
    channel: pd.DataFrame | None = None
    token_maps: dict[str, np.ndarray] | None = None

    @property
    def scenario(self) -> str:
        return str(self.config.get("scenario", ""))

    @property
    def policy(self) -> str:
        return str(self.config.get("policy", ""))

    @property
    def sweep(self) -> dict:
        sweep = self.config.get("sweep") or {}
        return dict(sweep) if isinstance(sweep, Mapping) else {}

    def value(self, key: str, default: Any = None) -> Any:
        """A setting of the run: the swept value, else the config's (see :func:`config_value`)."""
        if key in self.sweep:
            return coerce(self.sweep[key])
        return config_value(self.config, key, default)

    @property
    def label(self) -> str:
        """Policy and every swept value but the policy, e.g. ``ST-SFLora (deadline_s=2)``."""
        return make_labels([self.config])[0]


@dataclass
class Runs:
    """Several runs, with their frames concatenated and labelled.

    Attributes:
        runs: the runs, in the order given.
        labels: one unique label per run.
        meta: one row per run: ``run, label, scenario, policy, seed, path`` and one column per
            sweep key (NaN where a run's sweep lacks it).
        events, rounds: concatenated frames with ``run, label, scenario, policy`` prepended and
            the sweep columns appended (a sweep key that clashes with a trace column is left
            out of that frame; it is always in ``meta``).
        channel: as ``events`` for the runs that have ``channel.parquet``; None if none has.
        sweep_keys: the sweep keys, in order of first appearance.
    """

    runs: list[Run]
    labels: list[str]
    meta: pd.DataFrame
    events: pd.DataFrame
    rounds: pd.DataFrame
    channel: pd.DataFrame | None
    sweep_keys: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self):
        return iter(self.runs)

    def varying_keys(self) -> list[str]:
        """Sweep keys whose value is not the same in every run."""
        return [k for k in self.sweep_keys if self.meta[k].astype(str).nunique(dropna=False) > 1]


def _read_parquet(path: Path, run_dir: Path, config: Mapping | None = None) -> pd.DataFrame:
    """Table ``path.name``, hash- and schema-checked (:func:`analysis.run_integrity.read_table`)."""
    try:
        return read_table(run_dir, path.name, config or {})
    except (DamagedRunFileError, NotRegularFileError, OSError) as exc:
        raise NotARunError(str(exc) if isinstance(exc, ValueError) else f"{run_dir}: cannot read {path.name} "
                           f"({exc.strerror or exc})") from None


def load_run(path: str | Path) -> Run:
    """Load one run directory.

    Args:
        path: the run directory.

    Returns:
        The :class:`Run`; ``rounds`` and ``events`` sorted by round (and start time).

    Raises:
        NotARunError: ``path`` does not exist, is not a directory, lacks one of
            ``config.json``, ``events.parquet``, ``rounds.parquet``, or one of them is unreadable.
    """
    run_dir = Path(path)
    if not run_dir.exists():
        raise NotARunError(f"{run_dir} is not a run directory: it does not exist")
    if not run_dir.is_dir():
        raise NotARunError(f"{run_dir} is not a run directory: it is a file")
    missing = [name for name in REQUIRED_FILES if not table_exists(run_dir, name)]
    if missing:
        raise NotARunError(f"{run_dir} is not a run directory: missing {', '.join(missing)}")
    try:
        config = json.loads(read_regular_bytes(run_dir / "config.json"))
    except NotRegularFileError as exc:
        raise NotARunError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise NotARunError(f"{run_dir}: config.json is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise NotARunError(f"{run_dir}: config.json must hold a JSON object, "
                           f"got {type(config).__name__}")
    events = _read_parquet(run_dir / "events.parquet", run_dir, config)
    rounds = _read_parquet(run_dir / "rounds.parquet", run_dir, config)
    if "round" in rounds.columns:
        rounds = rounds.sort_values("round", kind="stable").reset_index(drop=True)
    if {"round", "start_s"} <= set(events.columns):
        events = events.sort_values(["round", "start_s"], kind="stable").reset_index(drop=True)
    channel = None
    if table_exists(run_dir, "channel.parquet"):
        channel = _read_parquet(run_dir / "channel.parquet", run_dir, config)
    token_maps = None
    if (run_dir / "token_maps.npz").is_file():
        try:
            data = read_checked(run_dir, "token_maps.npz", config)
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                token_maps = {key: npz[key] for key in npz.files}
        except Exception as exc:
            raise NotARunError(f"{run_dir}: cannot read token_maps.npz: {exc}") from exc
    return Run(run_dir, config, events, rounds, channel, token_maps)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def make_labels(configs: Sequence[Mapping], exclude: Iterable[str] = (),
                disambiguate: bool = True) -> list[str]:
    """Short labels telling runs apart, unique when the configs differ.

    The label is the policy's display name, prefixed by the scenario when the runs span several
    scenarios, followed by the sweep values that vary among the runs (every sweep value when
    there is one run), e.g. ``"ST-SFLora (deadline_s=2)"``. If two labels still coincide, the
    top-level config values that differ are added; the caller resolves any remaining clash.

    Args:
        configs: the runs' ``config.json`` dicts.
        exclude: sweep / config keys never to show (e.g. the x axis of a sweep plot).
        disambiguate: add differing config values when labels coincide; False when equal
            labels are wanted, to group runs (e.g. one line per policy across a sweep).
    """
    exclude = set(exclude) | {"policy", "scenario"}
    sweeps = [c.get("sweep") if isinstance(c.get("sweep"), Mapping) else {} for c in configs]
    keys: list[str] = []
    for sweep in sweeps:
        keys += [k for k in sweep if k not in keys and k not in exclude]
    if len(configs) > 1:
        keys = [k for k in keys if len({repr(coerce(s.get(k))) for s in sweeps}) > 1]
    scenarios = {str(c.get("scenario", "")) for c in configs}

    def base(c: Mapping) -> str:
        name = policy_label(c)
        return f"{c.get('scenario')} / {name}" if len(scenarios) > 1 else name

    def with_keys(c: Mapping, sweep: Mapping, extra: Sequence[str]) -> str:
        parts = [f"{k}={format_value(coerce(sweep[k]))}" for k in keys if k in sweep]
        parts += [f"{k}={format_value(c.get(k))}" for k in extra]
        return base(c) + (f" ({', '.join(parts)})" if parts else "")

    labels = [with_keys(c, s, ()) for c, s in zip(configs, sweeps)]
    if disambiguate and len(set(labels)) < len(labels):
        flat = [settings(c) for c in configs]
        differing = [
            k for k in flat[0]
            if k not in exclude and k not in keys and k != "seed"
            and len({repr(f.get(k)) for f in flat}) > 1
        ][:3]
        if not differing and len({repr(f.get("seed")) for f in flat}) > 1:
            differing = ["seed"]
        labels = [with_keys(f, s, differing) for f, s in zip(flat, sweeps)]
    return labels


def _unique(labels: list[str], runs: Sequence[Run]) -> list[str]:
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [f"{label} [{run.path.name}]" if seen[label] > 1 else label
            for label, run in zip(labels, runs)]


def _tag(frame: pd.DataFrame, meta_row: Mapping, sweep_keys: Sequence[str]) -> pd.DataFrame:
    frame = frame.copy()
    for pos, key in enumerate(("run", "label", "scenario", "policy")):
        if key in frame.columns:
            frame = frame.drop(columns=key)
        frame.insert(pos, key, meta_row[key])
    for key in sweep_keys:
        if key not in frame.columns:
            frame[key] = meta_row[key]
    return frame


def combine_runs(runs: Sequence[Run]) -> Runs:
    """Label loaded runs and concatenate their frames (see :class:`Runs`).

    Raises:
        ValueError: ``runs`` is empty.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("no runs given: need at least one run directory")
    labels = _unique(make_labels([r.config for r in runs]), runs)
    sweep_keys: list[str] = []
    for run in runs:
        sweep_keys += [k for k in run.sweep if k not in sweep_keys]
    rows = []
    for i, (run, label) in enumerate(zip(runs, labels)):
        row = {"run": i, "label": label, "scenario": run.scenario, "policy": run.policy,
               "seed": run.config.get("seed"), "path": str(run.path)}
        for key in sweep_keys:
            value = coerce(run.sweep.get(key, np.nan))
            row[key] = value if _is_scalar(value) else repr(value)
        rows.append(row)
    meta = pd.DataFrame(rows)
    events = pd.concat([_tag(r.events, row, sweep_keys) for r, row in zip(runs, rows)],
                       ignore_index=True)
    rounds = pd.concat([_tag(r.rounds, row, sweep_keys) for r, row in zip(runs, rows)],
                       ignore_index=True)
    channels = [_tag(r.channel, row, sweep_keys) for r, row in zip(runs, rows)
                if r.channel is not None]
    channel = pd.concat(channels, ignore_index=True) if channels else None
    return Runs(runs, labels, meta, events, rounds, channel, sweep_keys)


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding the three required run files."""
    path = Path(path)
    return path.is_dir() and all(table_exists(path, name) for name in REQUIRED_FILES)


def expand_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories named by ``paths``: a run stays itself; a directory that is not a run
    but holds runs (a sweep directory, or a seeded sweep that nests ``<point>/seed=<n>``)
    stands for every run below it at any depth, sorted by path; anything else is kept so that
    :func:`load_run` says what is wrong with it."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir() and not is_run_dir(path) and not (path / "config.json").exists():
            children = sorted(p.parent for p in path.rglob("config.json") if is_run_dir(p.parent))
            if children:
                out += children
                continue
        out.append(path)
    return out


def load_runs(paths: Iterable[str | Path]) -> Runs:
    """Load several run directories into labelled, concatenated frames.

    Args:
        paths: run directories (at least one); a sweep directory stands for the runs in it.

    Raises:
        NotARunError: a path is not a run (the first such path, as :func:`load_run` says).
        ValueError: ``paths`` is empty.
    """
    return combine_runs([load_run(p) for p in expand_run_dirs(paths)])


def as_runs(runs: "Runs | Run | Sequence[Run | str | Path] | str | Path") -> Runs:
    """Whatever names runs (a :class:`Runs`, one :class:`Run`, paths) as a :class:`Runs`."""
    if isinstance(runs, Runs):
        return runs
    if isinstance(runs, (Run, str, Path)):
        runs = [runs]
    return combine_runs([r if isinstance(r, Run) else load_run(r) for r in runs])
