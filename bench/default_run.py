"""Wall time of the default run (``sflsim run``: scenes-cell, 10 rounds) and where it goes (not a test).

One process runs the default scenario as ``sflsim run`` resolves it (``--set KEY=VALUE`` to
change it) and times, with wrappers around the objects' methods:

* **build**: data, backbone (pretrained once and cached for ``pretrain.source=own``), the
  learner's step costs at every K, the world;
* **device forward**: every call of the device part's forward (in training, in the round's
  retention curves and in the evaluation's one-off cached pass over the test subset);
* **server training**: the rest of the learner's local training (server forward, backward,
  optimiser steps);
* **evaluation**: the learner's evaluations, outside the device forward;
* **simulation**: the SimPy world's rounds;
* **planning**: selection, retention, the policy's decisions, outside the device forward.

Last line: a JSON object (``wall_s``, ``per_round_s``, shares of the round time, final
accuracy, backbone source). The learning target is <= 60 s on 2 cores once the activation
cache lands.

    python bench/default_run.py [--rounds 10] [--threads 2] [--seed 0] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import functools
import json
import time
from collections import defaultdict

import torch

from scenarios.overrides import parse_assignments
from scenarios.registry import load
from scenarios.runner import resolve


def timed(obj, name: str, bucket: str, totals: dict) -> None:
    """Add the time of every call of ``obj.name`` to ``totals[bucket]``, and the device-forward
    time spent inside those calls to ``totals[bucket + "_device_forward"]``."""
    fn = getattr(obj, name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0, dev0 = time.perf_counter(), totals["device_forward"]
        try:
            return fn(*args, **kwargs)
        finally:
            totals[bucket] += time.perf_counter() - t0
            totals[bucket + "_device_forward"] += totals["device_forward"] - dev0

    setattr(obj, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scenario = load(None)
    values = {**parse_assignments(args.sets), "rounds": args.rounds}
    cfg = resolve(scenario, values, seed=args.seed)
    totals: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    cosim = scenario.build(cfg)
    totals["build"] = time.perf_counter() - t0
    learner = cosim.learner
    timed(learner.model, "device_forward", "device_forward", totals)
    timed(learner, "train_round", "train", totals)
    timed(learner, "evaluate", "evaluation", totals)
    timed(cosim.world, "run_round", "simulation", totals)
    timed(cosim, "decide", "decide", totals)
    t1 = time.perf_counter()
    cosim.evaluate_start()
    row = {}
    for _ in range(cfg.rounds):
        row = cosim.step()
    rounds_s = time.perf_counter() - t1
    wall_s = time.perf_counter() - t0
    dev = totals["device_forward"]  # in training, retention curves and evaluation: counted once
    server = totals["train"] - totals["train_device_forward"]
    planning = totals["decide"] - totals["decide_device_forward"]
    evaluation = totals["evaluation"] - totals["evaluation_device_forward"]
    other = max(0.0, rounds_s - dev - server - evaluation - totals["simulation"] - planning)
    shares = {k: round(v / rounds_s, 3) for k, v in {
        "device_forward": dev, "server_training": server, "evaluation": evaluation,
        "simulation": totals["simulation"], "planning_incl_retention": planning, "other": other}.items()}
    print(f"default scenario {cfg.name}, {cfg.rounds} rounds, {args.threads} threads, backbone {cfg.pretrain.source}")
    print(f"build {totals['build']:.1f} s, rounds {rounds_s:.1f} s ({rounds_s / cfg.rounds:.2f} s/round), wall {wall_s:.1f} s")
    for k, v in shares.items():
        print(f"  {k:<24} {100 * v:5.1f} %")
    print(json.dumps({"scenario": cfg.name, "rounds": cfg.rounds, "threads": args.threads, "seed": args.seed,
                      "backbone": cfg.pretrain.source, "wall_s": round(wall_s, 2), "build_s": round(totals["build"], 2),
                      "per_round_s": round(rounds_s / cfg.rounds, 3), "shares": shares,
                      "accuracy": row.get("accuracy")}))


if __name__ == "__main__":
    main()
