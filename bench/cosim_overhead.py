"""What the co-simulation costs on top of the training it times (not a test).

One process, one scenario (static-cell, shortened), two ways:

* **co-sim**: the rounds as ``sflsim run`` runs them: SimPy world, channel updates,
  retention probes, allocation, trace rows, and the run directory written every round
  (set-up, data loading and the backbone are outside the timing, for both ways);
* **bare**: a fresh learner with the same seed replays exactly the same training: the same
  devices with the same token budgets each round, the same aggregation and evaluations.

Each way runs ``--repeats`` times, alternating, and the fastest of each is kept. The overhead is
``(co-sim - bare) / co-sim``; target <= 2 %. Last line: a JSON object.

    python bench/cosim_overhead.py [--rounds 10] [--repeats 2] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from scenarios import rundir
from scenarios.base import build
from scenarios.registry import load
from scenarios.runner import RunWriter, resolve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    scenario = load("static-cell")
    # Random backbone: pretraining is not what is measured here.
    cfg = resolve(scenario, {"rounds": args.rounds, "pretrain.source": "random"})
    cosim_s, bare_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            out = Path(tmp) / f"run{rep}"
            out.mkdir()
            cosim = build(cfg)
            t0 = time.perf_counter()
            writer = RunWriter(out)
            cosim.evaluate_start()
            writer.write_round(cosim)
            while cosim.round < cfg.rounds:
                cosim.step()
                writer.write_round(cosim)
            writer.finish(cfg.rounds)
            cosim_s.append(time.perf_counter() - t0)

            decisions = pd.read_parquet(out / rundir.DECISIONS)
            rounds = pd.read_parquet(out / rundir.ROUNDS)
            learner = build(cfg).learner  # a fresh learner, same seed
            t0 = time.perf_counter()
            learner.evaluate()
            for r in range(1, args.rounds + 1):
                sched = decisions[(decisions["round"] == r) & (decisions["status"] == "ok")]
                learner.train_round(sched["device"].tolist(), sched["tokens"].tolist())
                learner.aggregate(sched.loc[sched["aggregated"], "device"].tolist())
                if not pd.isna(rounds.loc[rounds["round"] == r, "accuracy"].iloc[0]):
                    learner.evaluate()
            bare_s.append(time.perf_counter() - t0)
            print(f"repeat {rep}: co-sim {cosim_s[-1]:.2f} s, bare {bare_s[-1]:.2f} s")

    c, b = min(cosim_s), min(bare_s)
    result = {
        "scenario": "static-cell",
        "rounds": args.rounds,
        "devices": cfg.devices,
        "threads": args.threads,
        "cosim_s": round(c, 3),
        "bare_s": round(b, 3),
        "overhead_s": round(c - b, 3),
        "overhead_fraction": round((c - b) / c, 4),
        "target_fraction": 0.02,
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
