"""Per-round cost of a run does not grow with its length (not a test).

A real run through the runner (``prepare`` + ``execute``: SimPy world, policy, real torch
training, the run directory written every round) with a deliberately cheap learner (a ViT of
depth 1, width 16, two heads, 8x8 patches, 16 samples per device, one local step, random
backbone), once with 10 rounds and once with 200. Every round appends its rows as new Parquet
parts and writes the checkpoint (which holds no trace), so the wall time per round should be
the same in both runs; before, every round rewrote the whole trace and a checkpoint holding it,
so a round's cost grew with its index.

Figures (wall time from the end of round 0 to the end of the last round, divided by the
rounds; the one-time join of the parts into one file per table is reported apart):
``per_round_s_10``, ``per_round_s_200``, ``ratio`` (200 over 10; target <= 1.5),
``last10_over_first10`` (in the 200-round run), ``finish_s_200``. Data: Fashion-MNIST from
``/usr/share/datasets/fashion-mnist`` (``make data``) or ``--data-root``.

    python bench/long_run.py [--threads 1] [--data-root DIR]

The last printed line is a JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from scenarios import rundir
from scenarios.registry import load
from scenarios.runner import RunWriter, execute, prepare, resolve

TINY = {
    "devices": 4, "deadline_s": 30.0, "train_samples_per_device": 16, "min_samples_per_device": 8,
    "token_maps": 0, "pretrain.source": "random", "model.depth": 1, "model.cut": 1,
    "model.embed_dim": 16, "model.num_heads": 2, "model.patch_size": 8, "learner.local_steps": 1,
    "learner.batch_size": 8, "learner.eval_samples": 16, "learner.eval_batch_size": 16,
    "learner.probe_samples": 8, "eval_every": 1000,
}


def timed_run(rounds: int, data_root: str, out: Path) -> dict:
    """Run ``rounds`` rounds into ``out``; wall time per round and of the final join."""
    scenario = load("static-cell")
    cfg = resolve(scenario, {**TINY, "rounds": rounds, "data_root": data_root})
    stamps: list[float] = []
    finish_s = {}
    original = RunWriter.finish

    def timed_finish(self, n: int) -> None:
        t0 = time.perf_counter()
        original(self, n)
        finish_s["s"] = time.perf_counter() - t0

    RunWriter.finish = timed_finish
    try:
        execute(prepare(scenario, cfg, out), on_round=lambda row, total: stamps.append(time.perf_counter()))
    finally:
        RunWriter.finish = original
    # stamps[0]: round 0 written; stamps[r]: round r written.
    per_round = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(per_round) == rounds and (out / rundir.ROUNDS).is_file()
    return {"per_round_s": (stamps[-1] - stamps[0]) / rounds, "first10_s": sum(per_round[:10]) / 10,
            "last10_s": sum(per_round[-10:]) / 10, "finish_s": finish_s["s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-root", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--long", type=int, default=200, help="rounds of the long run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        short = timed_run(10, args.data_root, Path(tmp) / "short")
        print(f"10 rounds: {short['per_round_s'] * 1e3:.1f} ms/round")
        long = timed_run(args.long, args.data_root, Path(tmp) / "long")
        print(f"{args.long} rounds: {long['per_round_s'] * 1e3:.1f} ms/round "
              f"(first 10: {long['first10_s'] * 1e3:.1f}, last 10: {long['last10_s'] * 1e3:.1f}; "
              f"join at the end {long['finish_s'] * 1e3:.0f} ms)")
    result = {
        "per_round_s_10": round(short["per_round_s"], 5),
        f"per_round_s_{args.long}": round(long["per_round_s"], 5),
        "ratio": round(long["per_round_s"] / short["per_round_s"], 3),
        "target_ratio": 1.5,
        "last10_over_first10": round(long["last10_s"] / long["first10_s"], 3),
        f"finish_s_{args.long}": round(long["finish_s"], 4),
        "threads": args.threads,
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
