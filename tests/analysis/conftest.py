"""Small but realistic run directories for the analysis tests.

`write_fake_run` produces the five files of docs/interfaces.md the way the scenarios layer
does: a cell of devices with 3GPP-like path loss, shadowing and Rayleigh fading, each selected
device running `local_steps` split steps (device_forward -> uplink -> server -> downlink ->
device_backward) and then adapter_uplink / adapter_downlink, phases cut at the deadline, and
`rounds.parquet` derived from the events. The numbers are made up; the structure is not.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

K_MAX = 16           # 4 x 4 patch grid
TOKEN_DIM = 384
BATCH = 32
BITS_PER_VALUE = 8
ADAPTER_BITS = 2.0e5
CPU_HZ = 1.0e9
KAPPA = 1e-28
FLOPS_PER_CYCLE = 4.0
SERVER_FLOPS = 1e12
BANDWIDTH_HZ = 5e6
NOISE_PSD_W_PER_HZ = 10 ** ((-174 + 7 - 30) / 10)
MAX_POWER_W = 0.2


def _tokens_for(policy: str, snr_db: float, keep_ratio: float | None) -> int:
    if policy in ("st-sflora-full", "full-tokens"):
        return K_MAX
    if keep_ratio is not None:
        return max(1, int(round(keep_ratio * K_MAX)))
    if policy == "st-sflora":
        # More tokens for a better channel.
        return int(np.clip(round(4 + (snr_db - 0.0) / 4.0), 2, K_MAX))
    return K_MAX // 2


# Display labels as the runner writes them into config.json (from the policy registry).
LABELS = {"st-sflora": "ST-SFLora", "st-sflora-full": "ST-SFLora (all tokens)",
          "random-tokens": "Random tokens", "fixed-ratio": "Fixed ratio"}


def write_fake_run(
    run_dir: Path,
    *,
    policy: str = "st-sflora",
    deadline_s: float = 1.0,
    seed: int = 0,
    rounds: int = 6,
    devices: int = 4,
    local_steps: int = 2,
    sweep: dict | None = None,
    keep_ratio: float | None = None,
    scenario: str = "static-cell",
    channel: bool = True,
    token_maps: bool = True,
    eval_every: int = 2,
) -> Path:
    """Write a run directory and return its path."""
    rng = np.random.default_rng(seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # The layout scenarios/runner.py writes: the resolved config nested under "config",
    # swept values as the strings given on the command line.
    config = {
        "scenario": scenario, "scenario_source": "builtin", "policy": policy,
        "policy_label": LABELS.get(policy, policy), "seed": seed,
        "sweep": {k: str(v) for k, v in (sweep or {}).items()},
        "config": {"name": scenario, "policy": policy, "seed": seed, "rounds": rounds,
                   "devices": devices, "deadline_s": deadline_s,
                   "train_samples_per_device": 64, "keep_ratio": keep_ratio,
                   "world": {"bandwidth_hz": BANDWIDTH_HZ, "max_power_w": MAX_POWER_W}},
        "versions": {"sflsim": "0.1.0", "python": "3.11"},
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))

    distance_m = rng.uniform(30, 250, devices)
    pathloss_db = 128.1 + 37.6 * np.log10(distance_m / 1e3)
    shadow_db = rng.normal(0, 8, devices)
    events, channel_rows, round_rows = [], [], []
    now_s = 0.0
    acc = 0.30
    round_rows.append(dict(round=0, time_s=0.0, accuracy=acc, loss=2.0, train_loss=np.nan,
                           uplink_bits=0.0, downlink_bits=0.0, energy_j=0.0, latency_s=0.0,
                           selected=0, dropped=0, ste=np.nan, tokens_mean=np.nan))
    for r in range(1, rounds + 1):
        start_round = now_s
        fading_db = 10 * np.log10(rng.exponential(1.0, devices))
        gain_db = -(pathloss_db + shadow_db) + fading_db
        snr_db = 10 * np.log10(MAX_POWER_W) + gain_db - 10 * np.log10(NOISE_PSD_W_PER_HZ * BANDWIDTH_HZ)
        for d in range(devices):
            channel_rows.append(dict(round=r, time_s=start_round, device=d,
                                     x_m=distance_m[d], y_m=0.0, speed_mps=0.0, in_cell=True,
                                     pathloss_db=pathloss_db[d], gain_db=gain_db[d],
                                     snr_db=snr_db[d]))
        bw_hz = BANDWIDTH_HZ / devices
        deadline_at = start_round + deadline_s
        finished_lat, tokens_used, retention = [], [], []
        dropped = 0
        for d in range(devices):
            k = _tokens_for(policy, snr_db[d], keep_ratio)
            tokens_used.append(k)
            t = start_round
            missed = False
            phases = []
            for step in range(local_steps):
                phases += [("device_forward", step), ("uplink", step), ("server", step),
                           ("downlink", step), ("device_backward", step)]
            phases += [("adapter_uplink", -1), ("adapter_downlink", -1)]
            for name, step in phases:
                # Fading changes a little during a round.
                inst_snr_db = snr_db[d] + rng.normal(0, 1.0)
                snr_lin = 10 ** (inst_snr_db / 10) * BANDWIDTH_HZ / bw_hz
                rate = bw_hz * np.log2(1 + snr_lin)
                bits = flops = power = 0.0
                snr = np.nan
                rate_bps = 0.0
                if name in ("device_forward", "device_backward"):
                    flops = (2.0 if name == "device_backward" else 1.0) * 1e7 * (1 + k)
                    dur = flops / (CPU_HZ * FLOPS_PER_CYCLE)
                    energy = KAPPA * CPU_HZ ** 2 * flops / FLOPS_PER_CYCLE
                elif name == "server":
                    flops = 3e9 * (1 + k)
                    dur = flops / SERVER_FLOPS
                    energy = 0.0
                else:
                    up = name in ("uplink", "adapter_uplink")
                    if name in ("uplink", "downlink"):
                        bits = float(BATCH * (k + 2) * TOKEN_DIM * BITS_PER_VALUE)
                    else:
                        bits = ADAPTER_BITS
                    rate_bps = float(rate if up else rate * 4)
                    dur = bits / rate_bps
                    power = MAX_POWER_W if up else 0.0
                    energy = power * dur
                    snr = float(inst_snr_db)
                end = t + dur
                met, reason = True, ""
                if end > deadline_at:
                    frac = (deadline_at - t) / dur
                    end, met, reason = deadline_at, False, "deadline"
                    energy *= frac
                    bits *= frac
                    flops *= frac
                events.append(dict(round=r, device=d, step=step, phase=name, start_s=t,
                                   end_s=end, bits=bits, rate_bps=rate_bps, power_w=power,
                                   bandwidth_hz=bw_hz if bits > 0 else 0.0, energy_j=energy,
                                   flops=flops, tokens_kept=k, snr_db=snr, completed=met,
                                   reason=reason))
                t = end
                if not met:
                    missed = True
                    break
            if missed:
                dropped += 1
            else:
                finished_lat.append(t - start_round)
                retention.append(1 - np.exp(-3 * k / K_MAX))
        ev_r = [e for e in events if e["round"] == r]
        latency = deadline_s if dropped else max(finished_lat)
        now_s = start_round + latency
        acc = acc + (0.9 - acc) * 0.25 * (np.mean(tokens_used) / K_MAX) * (1 - dropped / devices)
        evaluated = r % eval_every == 0 or r == rounds
        round_rows.append(dict(
            round=r, time_s=now_s, accuracy=acc if evaluated else np.nan,
            loss=(1 - acc) * 2 if evaluated else np.nan, train_loss=(1 - acc) * 2.1,
            uplink_bits=sum(e["bits"] for e in ev_r if e["phase"] in ("uplink", "adapter_uplink")),
            downlink_bits=sum(e["bits"] for e in ev_r if e["phase"] in ("downlink", "adapter_downlink")),
            energy_j=sum(e["energy_j"] for e in ev_r), latency_s=latency,
            selected=devices, dropped=dropped,
            ste=float(np.sum(retention) / max(finished_lat)) if finished_lat else 0.0,
            tokens_mean=float(np.mean(tokens_used))))
    pd.DataFrame(events).to_parquet(run_dir / "events.parquet", index=False)
    pd.DataFrame(round_rows).to_parquet(run_dir / "rounds.parquet", index=False)
    if channel:
        pd.DataFrame(channel_rows).to_parquet(run_dir / "channel.parquet", index=False)
    if token_maps:
        m, gh, side = 3, 4, 32
        images = rng.integers(0, 256, (m, side, side, 3), dtype=np.uint8)
        kept = np.zeros((m, gh, gh), dtype=bool)
        for i in range(m):
            kept[i].flat[rng.choice(gh * gh, size=4 + 2 * i, replace=False)] = True
        np.savez(run_dir / "token_maps.npz", images=images, kept=kept,
                 round=np.array([1, 1, 2]), device=np.array([0, 1, 0]),
                 tokens=kept.reshape(m, -1).sum(1))
    return run_dir


POLICIES = ("st-sflora", "st-sflora-full", "random-tokens")
DEADLINES_S = (0.45, 0.7, 1.0)


@pytest.fixture(scope="session")
def sweep_dirs(tmp_path_factory) -> list[Path]:
    """A 3 policies x 3 deadlines sweep, as `sflsim sweep --grid policy=.. --grid deadline_s=..`."""
    root = tmp_path_factory.mktemp("sweep")
    dirs = []
    for i, policy in enumerate(POLICIES):
        for j, deadline in enumerate(DEADLINES_S):
            dirs.append(write_fake_run(
                root / f"{policy}-{deadline}", policy=policy, deadline_s=deadline, seed=10 * i + j,
                sweep={"policy": policy, "deadline_s": deadline}))
    return dirs


@pytest.fixture(scope="session")
def ratio_dirs(tmp_path_factory) -> list[Path]:
    """A fixed-ratio sweep over the token keep ratio."""
    root = tmp_path_factory.mktemp("ratio")
    return [write_fake_run(root / f"r{ratio}", policy="fixed-ratio", keep_ratio=ratio,
                           deadline_s=1.0, seed=3, sweep={"keep_ratio": ratio})
            for ratio in (0.25, 0.5, 1.0)]


@pytest.fixture(scope="session")
def one_run(tmp_path_factory) -> Path:
    return write_fake_run(tmp_path_factory.mktemp("one") / "run", policy="st-sflora",
                          deadline_s=0.7, seed=1)
