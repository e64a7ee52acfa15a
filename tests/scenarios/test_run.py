"""End-to-end runs through the CLI: run directory, reproducibility, policies, deadlines."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scenarios import rundir
from scenarios.cli import main
from scenarios.runner import CHANNEL_COLUMNS, DECISION_COLUMNS, EVENT_COLUMNS, ROUND_COLUMNS

from smallrun import small_args

TRACE_FILES = (rundir.EVENTS, rundir.ROUNDS, rundir.DECISIONS, rundir.CHANNEL)


def run(tmp_path, fmnist_dir, out_name="run", scenario="static-cell", **extra):
    out = tmp_path / out_name
    argv = ["run", scenario, *small_args(fmnist_dir, tmp_path / "cache", **extra), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def test_run_writes_the_documented_run_directory(tmp_path, fmnist_dir, capsys):
    out = run(tmp_path, fmnist_dir)
    printed = capsys.readouterr().out
    assert "run directory:" in printed and "accuracy start -> final" in printed
    for name in (rundir.CONFIG, *TRACE_FILES, rundir.CHECKPOINT, rundir.TOKEN_MAPS):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))

    config = json.loads((out / rundir.CONFIG).read_text())
    assert config["seed"] == 0 and config["policy"] == "st-sflora" and config["scenario"] == "static-cell"
    assert config["config"]["rounds"] == 3 and config["config"]["world"]["num_devices"] == 3
    assert config["versions"]["torch"] and config["versions"]["simpy"]

    for name, columns in ((rundir.EVENTS, EVENT_COLUMNS), (rundir.ROUNDS, ROUND_COLUMNS),
                          (rundir.DECISIONS, DECISION_COLUMNS), (rundir.CHANNEL, CHANNEL_COLUMNS)):
        df = pd.read_parquet(out / name)
        assert list(df.columns) == list(columns), name

    rounds = pd.read_parquet(out / rundir.ROUNDS)
    assert rounds["round"].tolist() == [0, 1, 2, 3]
    assert rounds["time_s"].is_monotonic_increasing
    assert rounds["accuracy"].notna().all()

    events = pd.read_parquet(out / rundir.EVENTS)
    # A split step is device forward, uplink, server, downlink, in that order, per device.
    one = events[(events["round"] == 1) & (events["device"] == events["device"].min())]
    assert one["phase"].tolist()[:4] == ["device_forward", "uplink", "server", "downlink"]
    assert (one["end_s"].to_numpy()[:-1] <= one["start_s"].to_numpy()[1:] + 1e-12).all()
    # Round totals in rounds.parquet are the sums of the events of that round.
    for r in (1, 2, 3):
        ev = events[events["round"] == r]
        row = rounds[rounds["round"] == r].iloc[0]
        assert row["uplink_bits"] == pytest.approx(ev.loc[ev["phase"] == "uplink", "bits"].sum())
        assert row["energy_j"] == pytest.approx(ev["energy_j"].sum())
    # Uplink payloads follow the token budget the allocation chose for that device.
    decisions = pd.read_parquet(out / rundir.DECISIONS)
    merged = events[events["phase"] == "uplink"].merge(decisions, on=["round", "device"])
    assert (merged["tokens_kept"] == merged["tokens"]).all()

    maps = np.load(out / rundir.TOKEN_MAPS)
    assert maps["images"].ndim == 4 and maps["images"].shape[-1] == 3
    assert maps["kept"].shape[0] == maps["images"].shape[0]
    assert (maps["kept"].reshape(len(maps["kept"]), -1).sum(axis=1) == maps["tokens"]).all()


def test_same_seed_gives_byte_identical_traces(tmp_path, fmnist_dir):
    a = run(tmp_path, fmnist_dir, "a")
    b = run(tmp_path, fmnist_dir, "b")
    for name in TRACE_FILES + (rundir.TOKEN_MAPS,):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_another_seed_gives_another_trace(tmp_path, fmnist_dir):
    a = run(tmp_path, fmnist_dir, "a", rounds=1)
    b = run(tmp_path, fmnist_dir, "b", rounds=1, seed=1)
    assert (a / rundir.CHANNEL).read_bytes() != (b / rundir.CHANNEL).read_bytes()


@pytest.mark.parametrize(
    "policy", ["st-sflora", "st-sflora-full", "sflora", "split-lora", "fed-lora", "local-lora",
               "random-tokens", "equal"],
)
def test_every_policy_runs_end_to_end(tmp_path, fmnist_dir, policy):
    out = run(tmp_path, fmnist_dir, policy=policy, rounds=1)
    events = pd.read_parquet(out / rundir.EVENTS)
    rounds = pd.read_parquet(out / rundir.ROUNDS)
    phases = set(events["phase"])
    assert rounds["accuracy"].notna().all()
    if policy == "local-lora":
        assert phases == {"device_forward", "device_backward"}
        assert rounds["uplink_bits"].sum() == 0
    elif policy == "fed-lora":
        assert "uplink" not in phases and "adapter_uplink" in phases
    else:
        assert {"device_forward", "uplink", "server", "downlink"} <= phases
    if policy in ("st-sflora-full", "sflora", "split-lora"):
        assert (events.loc[events["phase"] == "uplink", "tokens_kept"] == 16).all()
    if policy == "split-lora":
        # Devices take turns: no two devices' phases overlap in time.
        spans = events.groupby("device").agg(start=("start_s", "min"), end=("end_s", "max")).sort_values("start")
        assert (spans["end"].to_numpy()[:-1] <= spans["start"].to_numpy()[1:] + 1e-12).all()


def test_deadline_misses_are_dropped_from_aggregation(tmp_path, fmnist_dir):
    # Split learning: devices take turns, so with a deadline between the first and the last
    # device's finish, the later devices miss it in the middle of a phase.
    free = run(tmp_path, fmnist_dir, "free", policy="split-lora", rounds=1)
    ends = pd.read_parquet(free / rundir.EVENTS).groupby("device")["end_s"].max().sort_values()
    start = pd.read_parquet(free / rundir.ROUNDS)["time_s"].iloc[0]
    deadline = float((ends.iloc[0] + ends.iloc[1]) / 2 - start)
    out = run(tmp_path, fmnist_dir, "tight", policy="split-lora", rounds=1, deadline_s=deadline)
    events = pd.read_parquet(out / rundir.EVENTS)
    decisions = pd.read_parquet(out / rundir.DECISIONS)
    rounds = pd.read_parquet(out / rundir.ROUNDS)
    missed = events[~events["completed"]]
    assert set(missed["reason"]) == {"deadline"}
    assert set(missed["device"]) == set(ends.index[1:])
    assert missed["end_s"].max() == pytest.approx(start + deadline)
    dropped = decisions[~decisions["aggregated"]]
    assert set(dropped["device"]) == set(ends.index[1:])
    assert set(dropped["reason"]) == {"deadline"}
    assert int(rounds["dropped"].iloc[1]) == 2
    assert rounds["latency_s"].iloc[1] == pytest.approx(deadline)


def test_scenario_file_by_path(tmp_path, fmnist_dir):
    path = tmp_path / "my_cell.py"
    path.write_text(
        '"""My cell: a user scenario file."""\n'
        "from dataclasses import dataclass\n"
        "from scenarios.base import ScenarioConfig\n\n"
        "@dataclass(frozen=True)\n"
        "class Config(ScenarioConfig):\n"
        "    name: str = 'my-cell'\n"
        "    deadline_s: float = 25.0\n"
    )
    out = run(tmp_path, fmnist_dir, scenario=str(path), rounds=1)
    config = json.loads((out / rundir.CONFIG).read_text())
    assert config["scenario"] == "my-cell" and config["scenario_source"] == str(path)


def test_list_and_show(capsys):
    assert main(["list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == ["static-cell", "pedestrians", "highway", "dense-cell", "paper-cell",
                                                      "paper-cell-100", "highway-corridor", "urban-7", "scenes-cell",
                                                      "scenes-cell-64"]
    assert main(["show", "highway", "--set", "devices=5"]) == 0
    shown = capsys.readouterr().out
    assert "devices = 5" in shown and "world.num_devices = 5" in shown
    assert "world.mobility.speed_range_kmh = (60.0, 130.0)" in shown


@pytest.mark.parametrize("scenario", ["static-cell", "pedestrians", "highway", "dense-cell"])
def test_every_scenario_runs_small(tmp_path, fmnist_dir, scenario):
    devices = 12 if scenario == "dense-cell" else 4
    out = run(tmp_path, fmnist_dir, scenario=scenario, rounds=2, devices=devices, deadline_s=3.0)
    channel = pd.read_parquet(out / rundir.CHANNEL)
    decisions = pd.read_parquet(out / rundir.DECISIONS)
    assert channel["device"].nunique() == devices
    if scenario in ("pedestrians", "highway"):
        assert (channel["speed_mps"] > 0).all()
    if scenario == "highway":
        assert channel["speed_mps"].between(60 / 3.6, 130 / 3.6).all()
    if scenario == "dense-cell":
        # 20 % of the devices are sampled each round; the rest are recorded as not sampled.
        per_round = decisions[decisions["status"] != "not-scheduled"].groupby("round").size()
        assert (per_round == 3).all()
        assert (decisions.loc[decisions["status"] == "not-scheduled", "reason"] == "not-sampled").all()
