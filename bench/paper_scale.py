"""The paper's scale: paper-cell at 100 devices and 100 rounds, batched against per-device (not a test).

Three parts, in one process, each from a fresh build of the same seeded configuration:

1. **side by side**: ``--compare-rounds`` rounds with ``learner.batched=false`` (the per-device
   loop) and the same rounds batched; wall and CPU time per device-round of each, and the
   largest relative difference of the rounds' losses and accuracies between the two paths
   (a token budget chosen differently, from a retention curve that moved in its last bits,
   makes a larger difference than float rounding: the per-round rows say which).
   ``--compare-from R`` runs both paths ``R`` rounds untimed first, so that the window
   measures a long run's steady state: by then the batched path's once-per-sample device
   part has seen most samples, while the loop still forwards every batch (its activation
   cache lives for one round);
2. **the whole run** batched, ``--rounds`` rounds: wall time, wall and CPU time per
   device-round, the shares (device forward, server training, evaluation, simulation,
   planning), peak memory (max RSS);
3. **scaling**: wall per device-round, batched, at each of ``--scaling`` device counts over
   ``--scaling-rounds`` rounds.

Device-rounds are the trained (device, round) pairs, from the runs' reports. The machine's
load is printed (``os.getloadavg``): on a shared machine, compare the ratios measured here in
one run, not absolute times across runs; CPU time (``time.process_time``, all threads) is the
steadier of the two under load.

Last line: JSON ``{"devices", "rounds", "wall_s", "speedup", "speedup_cpu", "max_rel_diff",
"speedup_server_training", "scaling": {"20": s, "200": s}, "scaling_training": {...},
"load": [1, 5, 15 min], ...}`` with ``speedup`` the loop's over the batched wall time per
device-round, ``speedup_server_training`` the same for the server training alone (the one
computation batching changes; ``bench/batched_bound.py`` bounds it by the CPU's GEMM rate),
and ``scaling_training`` the wall per device-round of training alone (device forward and
server), without the per-round costs (evaluation, planning) that more devices amortise.

    OMP_WAIT_POLICY=PASSIVE python bench/paper_scale.py [--devices 100] [--rounds 100]
        [--compare-rounds 3] [--compare-from 0] [--scaling 20,200] [--scaling-rounds 3] [--threads 2] [--set K=V ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import defaultdict

import numpy as np
import torch

from default_run import timed  # bench/ is on sys.path when a script here runs
from scenarios.overrides import parse_assignments
from scenarios.registry import load
from scenarios.runner import resolve

PHASES = ("device_forward", "train", "evaluation", "simulation", "decide")


def run(devices: int, rounds: int, batched: bool, sets: dict, seed: int, warm: int = 0) -> dict:
    """Build paper-cell with ``devices``, run ``warm`` rounds untimed, then time ``rounds`` rounds;
    times, shares and rows of the timed rounds."""
    scenario = load("paper-cell")
    cfg = resolve(scenario, {**sets, "devices": devices, "rounds": warm + rounds, "learner.batched": batched},
                  seed=seed)
    cosim = scenario.build(cfg)
    if warm:
        cosim.evaluate_start()
        for _ in range(warm):
            cosim.step()
    totals: dict[str, float] = defaultdict(float)
    learner = cosim.learner
    for target, name, bucket in ((learner.model, "device_forward", "device_forward"),
                                 (learner, "train_round", "train"), (learner, "evaluate", "evaluation"),
                                 (cosim.world, "run_round", "simulation"), (cosim, "decide", "decide")):
        timed(target, name, bucket, totals)
    trained = [0]
    train = learner.train_round

    def counting(devs, *a, **kw):
        trained[0] += len(devs)
        return train(devs, *a, **kw)

    learner.train_round = counting
    w0, c0 = time.perf_counter(), time.process_time()
    if not warm:
        cosim.evaluate_start()
    rows = [cosim.step() for _ in range(rounds)]
    wall_s, cpu_s = time.perf_counter() - w0, time.process_time() - c0
    shares = {
        "device_forward": totals["device_forward"],
        "server_training": totals["train"] - totals["train_device_forward"],
        "evaluation": totals["evaluation"] - totals["evaluation_device_forward"],
        "simulation": totals["simulation"],
        "planning": totals["decide"] - totals["decide_device_forward"],
    }
    n = max(trained[0], 1)
    return {"devices": devices, "rounds": rounds, "batched": learner.batched, "wall_s": wall_s, "cpu_s": cpu_s,
            "device_rounds": trained[0], "wall_per_device_round_s": wall_s / n, "cpu_per_device_round_s": cpu_s / n,
            "server_per_device_round_s": shares["server_training"] / n,
            "training_per_device_round_s": (shares["server_training"] + shares["device_forward"]) / n,
            "shares": {k: v / wall_s for k, v in shares.items()},
            "rows": [{k: float(r[k]) for k in ("accuracy", "loss", "train_loss")} for r in rows]}


def max_rel_diff(a: list[dict], b: list[dict]) -> float:
    """Largest ``|a - b| / |a|`` over the rounds' accuracy, loss and training loss."""
    out = 0.0
    for ra, rb in zip(a, b):
        for k in ra:
            if np.isfinite(ra[k]) and ra[k] != 0:
                out = max(out, abs(ra[k] - rb[k]) / abs(ra[k]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--compare-rounds", type=int, default=3)
    ap.add_argument("--compare-from", type=int, default=0,
                    help="rounds each path runs untimed before the side-by-side window (0: the window is the "
                         "run's first rounds, where the batched path still fills its once-per-sample cache)")
    ap.add_argument("--scaling", default="20,200")
    ap.add_argument("--scaling-rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sets = parse_assignments(args.sets)
    print(f"load before: {os.getloadavg()}, threads {args.threads}", flush=True)
    loop = run(args.devices, args.compare_rounds, False, sets, args.seed, args.compare_from)
    fast = run(args.devices, args.compare_rounds, True, sets, args.seed, args.compare_from)
    for name, r in (("per-device", loop), ("batched", fast)):
        print(f"{name:10s} {r['device_rounds']} device-rounds: "
              f"{r['wall_per_device_round_s'] * 1e3:.1f} ms wall, {r['cpu_per_device_round_s'] * 1e3:.1f} ms CPU "
              f"per device-round", flush=True)
    for i, (ra, rb) in enumerate(zip(loop["rows"], fast["rows"])):
        print(f"  round {i}: loop {ra}  batched {rb}")
    diff = max_rel_diff(loop["rows"], fast["rows"])
    speedup = loop["wall_per_device_round_s"] / fast["wall_per_device_round_s"]
    speedup_cpu = loop["cpu_per_device_round_s"] / fast["cpu_per_device_round_s"]
    speedup_server = loop["server_per_device_round_s"] / fast["server_per_device_round_s"]
    print(f"speedup {speedup:.2f}x wall, {speedup_cpu:.2f}x CPU; server training alone "
          f"{loop['server_per_device_round_s'] * 1e3:.1f} -> {fast['server_per_device_round_s'] * 1e3:.1f} ms per "
          f"device-round ({speedup_server:.2f}x); max relative difference {diff:.2e}", flush=True)
    whole = run(args.devices, args.rounds, True, sets, args.seed)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"whole run: {args.devices} devices x {args.rounds} rounds batched: {whole['wall_s']:.1f} s wall, "
          f"{whole['wall_per_device_round_s'] * 1e3:.1f} ms per device-round; shares "
          + ", ".join(f"{k} {v:.0%}" for k, v in whole["shares"].items()) + f"; peak {peak_mb:.0f} MB", flush=True)
    scaling, scaling_training = {}, {}
    for n in (int(x) for x in args.scaling.split(",") if x):
        r = run(n, args.scaling_rounds, True, sets, args.seed)
        scaling[str(n)] = r["wall_per_device_round_s"]
        scaling_training[str(n)] = r["training_per_device_round_s"]
        print(f"scaling: {n} devices: {r['wall_per_device_round_s'] * 1e3:.1f} ms wall, "
              f"{r['cpu_per_device_round_s'] * 1e3:.1f} ms CPU per device-round; training alone (device forward "
              f"and server) {r['training_per_device_round_s'] * 1e3:.1f} ms", flush=True)
    print(json.dumps({
        "devices": args.devices, "rounds": args.rounds, "wall_s": round(whole["wall_s"], 2),
        "wall_per_device_round_s": whole["wall_per_device_round_s"], "speedup": speedup, "speedup_cpu": speedup_cpu,
        "max_rel_diff": diff, "speedup_server_training": speedup_server, "scaling": scaling,
        "scaling_training": scaling_training, "shares": whole["shares"], "peak_mb": round(peak_mb),
        "final_accuracy": whole["rows"][-1]["accuracy"] if whole["rows"] else None,
        "compare_rounds": args.compare_rounds, "compare_from": args.compare_from, "threads": args.threads,
        "load": list(os.getloadavg()),
    }))


if __name__ == "__main__":
    main()
