"""Pinned seeded results: one tiny run per shipped scenario and per policy on the static cell.

The stored values in ``pinned/runs.json`` were written by the code before the policy registry,
the learner strategies and the co-simulation split were introduced; the refactor must leave
them unchanged (rtol 1e-9). Regenerate (only when a change of results is intended and said so)
with ``python tests/scenarios/test_pinned.py --write``.

The runs fix every model field they rely on and use a random backbone, so a change of the
default backbone does not move them.
"""
from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from smallrun import make_fashion_mnist  # noqa: E402

PINNED = Path(__file__).parent / "pinned" / "runs.json"
SCENARIOS = ("static-cell", "pedestrians", "highway", "dense-cell")
POLICIES = ("st-sflora", "st-sflora-full", "sflora", "split-lora", "fed-lora", "local-lora",
            "random-tokens", "equal")
ROUND_KEYS = ("accuracy", "loss", "uplink_bits", "energy_j", "latency_s")
DECISION_KEYS = ("tokens", "bandwidth_hz", "power_w")
CASES = [(s, "st-sflora") for s in SCENARIOS] + [("static-cell", p) for p in POLICIES if p != "st-sflora"]
# A deadline tight enough that the allocation must trade tokens, and some devices miss it.
TIGHT_DEADLINE_S = 0.006
CASES += [("static-cell", f"{p}@tight") for p in ("st-sflora", "split-lora", "random-tokens")]


def overrides(data_dir: Path, cache_dir: Path, case_policy: str) -> dict:
    policy, _, tight = case_policy.partition("@")
    return {
        "policy": policy, "rounds": 2, "devices": 3, "deadline_s": TIGHT_DEADLINE_S if tight else 30.0,
        "train_samples_per_device": 24, "min_samples_per_device": 8,
        "data_root": str(data_dir), "cache_dir": str(cache_dir), "token_maps": 0,
        "pretrain.source": "random",
        "model.model_name": "vit_tiny_patch16_224", "model.img_size": 32, "model.patch_size": 8,
        "model.depth": 2, "model.cut": 1, "model.embed_dim": 32, "model.num_heads": 2,
        "model.lora_rank": 4, "model.lora_alpha": 8.0, "model.lora_dropout": 0.0,
        "learner.local_steps": 2, "learner.batch_size": 8, "learner.optimizer": "sgd",
        "learner.lr": 0.02, "learner.eval_samples": 32, "learner.eval_batch_size": 32,
        "learner.probe_samples": 8,
        # pinned on the per-device loop (bit for bit); the batched round agrees to float32
        # rounding (tests/learning/test_batched.py)
        "learner.batched": False,
    }


def measure(scenario: str, policy: str, data_dir: Path, work: Path) -> dict:
    from scenarios.runner import run_scenario

    out = work / f"{scenario}-{policy}".replace("@", "-")
    run_scenario(scenario, overrides(data_dir, work / "cache", policy), out_dir=out)
    rounds = pd.read_parquet(out / "rounds.parquet")
    decisions = pd.read_parquet(out / "decisions.parquet")
    return {
        "rounds": {k: rounds[k].tolist() for k in ROUND_KEYS},
        "decisions": {k: decisions[k].tolist() for k in DECISION_KEYS},
    }


def _close(a: float, b: float) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_fashion_mnist(tmp_path_factory.mktemp("fmnist-pinned"), n_train=400, n_test=100)


@pytest.mark.parametrize("scenario,policy", CASES)
def test_seeded_run_matches_the_pinned_values(scenario, policy, data_dir, tmp_path):
    pinned = json.loads(PINNED.read_text())[f"{scenario}/{policy}"]
    got = measure(scenario, policy, data_dir, tmp_path)
    for table in ("rounds", "decisions"):
        for key, want in pinned[table].items():
            have = got[table][key]
            assert len(have) == len(want), (table, key)
            bad = [(i, h, w) for i, (h, w) in enumerate(zip(have, want)) if not _close(h, w)]
            assert not bad, f"{scenario}/{policy} {table}.{key}: (index, now, pinned) {bad[:3]}"


def _write() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_fashion_mnist(work / "fmnist", n_train=400, n_test=100)
        result = {f"{s}/{p}": measure(s, p, data, work) for s, p in CASES}
    PINNED.parent.mkdir(exist_ok=True)
    PINNED.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/scenarios/test_pinned.py --write")
    _write()
