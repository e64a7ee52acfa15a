"""tsflora, sflam, asfl, genfv: a tiny real run each, checked from the traces it wrote.

Each run is a real co-simulation (SimPy world, the policy's allocation, torch training of a
random 3-block ViT). What the policy claims is not trusted: the band, the power limit, the
energy budget and the deadline are checked from ``decisions.parquet`` and ``events.parquet``,
and the bits on the air against a payload formula worked by hand.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from netsim.ofdma import OfdmaConfig
from netsim.units import dbm_to_w
from scenarios.cli import main
from scenarios.registry import available as scenarios_available

from smallrun import small_args

TRACES = ("config.json", "events.parquet", "rounds.parquet", "decisions.parquet", "channel.parquet")
DIM, PATCHES, BATCH = 32, 16, 8  # model.embed_dim, (32 / 8)**2 patch tokens, learner.batch_size


def run(tmp_path: Path, fmnist_dir: Path, scenario: str, policy: str, **extra) -> Path:
    out = tmp_path / f"{scenario}-{policy}"
    args = small_args(fmnist_dir, tmp_path / "cache", **{"policy": policy, "rounds": 2, "devices": 4,
                      "model.depth": 3, "model.embed_dim": DIM, "model.num_heads": 2, **extra})
    assert main(["run", scenario, *args, "--out", str(out), "--quiet"]) == 0
    return out


def load(out: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    for name in TRACES:
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())["config"]
    return (config, pd.read_parquet(out / "decisions.parquet"), pd.read_parquet(out / "events.parquet"),
            pd.read_parquet(out / "rounds.parquet"))


def check_constraints(config: dict, decisions: pd.DataFrame, events: pd.DataFrame, rounds: pd.DataFrame) -> None:
    """Band, power, energy and deadline, from the traces."""
    world = config["world"]
    band_hz = OfdmaConfig(**world["ofdma"]).usable_bandwidth_hz
    device = world["device"]
    p_max_w = float(dbm_to_w(device["max_tx_power_dbm"]))
    budget_j = max(device["energy_budget_j_range"] or [device["energy_budget_j"]])
    ok = decisions[decisions["status"] == "ok"]
    assert len(ok) > 0
    assert (ok.groupby("round")["bandwidth_hz"].sum() <= band_hz * (1 + 1e-9)).all()
    assert ((ok["power_w"] > 0) & (ok["power_w"] <= p_max_w * (1 + 1e-9))).all()
    tx = events[events["phase"].isin(["uplink", "adapter_uplink"])]
    assert (tx["power_w"] <= p_max_w * (1 + 1e-9)).all()
    start_s = rounds.set_index("round")["time_s"]
    done = decisions[decisions["aggregated"]]
    for (r, d), ev in events.groupby(["round", "device"]):
        if not ((done["round"] == r) & (done["device"] == d)).any():
            continue
        assert ev["energy_j"].sum() <= budget_j * (1 + 1e-9)
        assert ev["end_s"].max() - start_s[r - 1] <= config["deadline_s"] * (1 + 1e-9)
        assert ev["completed"].all()


def uplink_bits_by_hand(tokens_sent: int, bits: int) -> float:
    """One step's uplink: B x T tokens of D values at ``bits`` each, a float32 minimum and step
    per token when quantised, and one uint8 label per sample."""
    header = 0 if bits == 32 else BATCH * tokens_sent * 2 * 32
    return BATCH * tokens_sent * DIM * bits + header + BATCH * 8


def test_tsflora_sends_k_tokens_plus_one_merged_at_b_bits(tmp_path, fmnist_dir):
    out = run(tmp_path, fmnist_dir, "static-cell", "tsflora", **{"tsflora.tokens": 4, "tsflora.bits": 4})
    config, decisions, events, rounds = load(out)
    check_constraints(config, decisions, events, rounds)
    ok = decisions[decisions["status"] == "ok"]
    assert (ok["tokens"] == 4).all() and (ok["bits_per_value"] == 4).all() and (ok["cut_layer"] == 1).all()
    assert ok.groupby("round")["bandwidth_hz"].nunique().eq(1).all()  # equal shares
    up = events[events["phase"] == "uplink"]
    # [CLS] + 4 kept + 1 merged token
    assert (up["bits"] == uplink_bits_by_hand(1 + 4 + 1, 4)).all()


@pytest.mark.parametrize("scenario", ["static-cell"] + (["paper-cell"] if "paper-cell" in {s.name for s in scenarios_available()} else []))
def test_sflam_runs_the_patch_embedding_only_and_quantises_at_the_chosen_width(tmp_path, fmnist_dir, scenario):
    out = run(tmp_path, fmnist_dir, scenario, "sflam")
    config, decisions, events, rounds = load(out)
    check_constraints(config, decisions, events, rounds)
    ok = decisions[decisions["status"] == "ok"]
    assert (ok["cut_layer"] == 0).all() and ok["bits_per_value"].isin([2, 4, 8, 16]).all()
    up = events[events["phase"] == "uplink"].merge(ok[["round", "device", "bits_per_value"]], on=["round", "device"])
    want = [uplink_bits_by_hand(1 + PATCHES, int(b)) for b in up["bits_per_value"]]
    assert up["bits"].tolist() == want  # the width the policy chose is the width sent
    fwd = events[events["phase"] == "device_forward"]
    patch = config["model"]["patch_size"]
    if config["model"]["stem"] == "linear":  # the patch embedding: one (3 p^2 -> D) product per patch
        assert (fwd["flops"] == 2 * BATCH * PATCHES * 3 * patch * patch * DIM).all()
    assert not events["phase"].isin(["device_backward", "downlink"]).any() or \
        (events.loc[events["phase"] == "downlink", "bits"] == 0).all()


HIGHWAY = {"world.mobility.start_in_cell": "true", "devices": 5}


def test_asfl_gives_each_device_a_cut_and_the_learner_runs_it(tmp_path, fmnist_dir):
    out = run(tmp_path, fmnist_dir, "highway", "asfl", **{**HIGHWAY, "model.device_trainable": "true"})
    config, decisions, events, rounds = load(out)
    check_constraints(config, decisions, events, rounds)
    ok = decisions[decisions["status"] == "ok"]
    assert ok["cut_layer"].between(1, 3).all()
    fwd = events[events["phase"] == "device_forward"].merge(ok[["round", "device", "cut_layer"]],
                                                            on=["round", "device"])
    # deeper cuts run more blocks on the device: forward FLOPs strictly increase with the cut
    by_cut = fwd.groupby("cut_layer")["flops"].agg(["min", "max"]).sort_index()
    assert (by_cut["min"] == by_cut["max"]).all() and by_cut["min"].is_monotonic_increasing
    adapters = events[events["phase"] == "adapter_uplink"].merge(ok[["round", "device", "cut_layer"]],
                                                                 on=["round", "device"])
    # device adapters of the blocks below the cut: LoRA on qkv, A [r, D] + B [3D, r] float32 each
    rank = config["model"]["lora_rank"]
    assert (adapters["bits"] == adapters["cut_layer"] * 4 * DIM * rank * 32).all()
    assert (decisions["cut_layer"] >= 0).all()


def test_asfl_cuts_late_when_the_devices_share_of_the_server_is_slower_than_their_cpu(tmp_path, fmnist_dir):
    # 5 devices share 4e11 FLOP/s: 8e10 each; a frozen device part runs a block forward only
    # (F) where the server runs it forward and backward (~3F), so a vehicle of >= 64 GFLOP/s is
    # faster per block than its share (~27 GFLOP/s of forward-equivalent): every cut is the last
    out = run(tmp_path, fmnist_dir, "highway", "asfl", **{**HIGHWAY, "world.server.flops_per_s": 4e11})
    config, decisions, events, rounds = load(out)
    check_constraints(config, decisions, events, rounds)
    ok = decisions[decisions["status"] == "ok"]
    assert (ok["cut_layer"] == 3).all()
    late = events[events["phase"] == "device_forward"]["flops"]
    early = pd.read_parquet(run(tmp_path / "early", fmnist_dir, "highway", "asfl", **HIGHWAY) / "events.parquet")
    assert late.min() > early.loc[early["phase"] == "device_forward", "flops"].max()


def test_genfv_selects_the_share_with_the_best_dwell_and_label_score(tmp_path, fmnist_dir):
    out = run(tmp_path, fmnist_dir, "highway", "genfv", **{**HIGHWAY, "genfv.fraction": 0.5})
    config, decisions, events, rounds = load(out)
    check_constraints(config, decisions, events, rounds)
    # the planner's devices: scheduled, or passed over by the policy (the others carry why the
    # planner left them out: left-cell, battery, not-sampled)
    planned = decisions[(decisions["status"] == "ok") | (decisions["reason"] == "not-scheduled")]
    assert (planned["reason"] == "not-scheduled").any()
    for r, rows in planned.groupby("round"):
        chosen = int((rows["status"] == "ok").sum())
        assert chosen == math.ceil(0.5 * len(rows)), (r, rows)
    ok = decisions[decisions["status"] == "ok"]
    assert (ok["tokens"] == PATCHES).all() and (ok["cut_layer"] == 1).all()


def test_every_policy_fills_cut_layer_and_its_parameters_are_checked(tmp_path, fmnist_dir, capsys):
    out = run(tmp_path, fmnist_dir, "static-cell", "sflora")
    _, decisions, _, _ = load(out)
    assert (decisions["cut_layer"] == 1).all() and (decisions["bits_per_value"] == 32).all()
    for bad, fragment in (("tsflora.bits=3", "bits must be one of"), ("asfl.min_cut=-2", "min_cut"),
                          ("genfv.fraction=0", "fraction"), ("sflam.bit_levels=8,4", "bit_levels")):
        assert main(["show", "--set", f"policy={bad.split('.')[0]}", "--set", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and fragment in err, err
