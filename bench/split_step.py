"""Benchmark: unsplit LoRA training vs the split step at 100 %, 50 %, 25 % of the tokens.

Same model (timm vit_tiny geometry at 32x32, patch 4: 64 patch tokens + CLS; LoRA r=8 on
qkv of the server blocks, head trainable, device part frozen, cut after block 2), same batch
of 64, for depth 6 and depth 12. "Unsplit" is the same model trained by one ordinary
forward/backward; "split" runs the device forward, semantic token selection with fusion,
the payload encoding, and the server forward/backward (learning.split_step.split_step).
Each configuration is timed over ``--steps`` optimiser steps after 2 warm-up steps; the
configurations are interleaved over ``--repeats`` rounds and the median is reported (the
machine is shared, so single timings are noisy).

Peak memory is the growth of the process's peak resident set size (``ru_maxrss``) during
one step, measured in a fresh subprocess per case, plus the bytes of the weights that case
holds: the device part running its forward (no autograd) vs the whole model training.

Targets (issue 3): split at 100 % >= 0.97x unsplit; split at 25 % >= 2.5x unsplit at depth 12.
The last line printed is a JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning.split_step import TokenOptions, split_step, whole_step  # noqa: E402
from learning.split_vit import SplitViT, SplitViTConfig  # noqa: E402

BATCH = 64


def _config(depth: int) -> SplitViTConfig:
    return SplitViTConfig(depth=depth, cut=2)


def _time(model: SplitViT, opt: torch.optim.Optimizer, x, y, k: int | None, steps: int) -> float:
    """Samples per second over ``steps`` steps (``k=None``: unsplit)."""
    options = TokenOptions(policy="semantic", fuse=True)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        if k is None:
            whole_step(model, x, y)
        else:
            split_step(model, x, y, k, options)
        opt.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * x.shape[0] / (time.perf_counter() - start)


def throughput(depth: int, steps: int, repeats: int) -> dict:
    model = SplitViT(_config(depth), seed=0).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (BATCH,), generator=g)
    n = model.config.num_patches
    cases = {"unsplit": None, "split_100": n, "split_50": n // 2, "split_25": n // 4}
    runs: dict[str, list[float]] = {c: [] for c in cases}
    for _ in range(repeats):
        for name, k in cases.items():
            runs[name].append(_time(model, opt, x, y, k, steps))
    out = {f"{c}_samples_per_s": round(statistics.median(v), 1) for c, v in runs.items()}
    base = statistics.median(runs["unsplit"])
    for c in ("split_100", "split_50", "split_25"):
        out[f"{c}_speedup"] = round(statistics.median(runs[c]) / base, 3)
    return out


def _memory_case(case: str, depth: int) -> None:
    """Run in a subprocess: print the peak-RSS growth of one step and the weight bytes."""
    torch.set_num_threads(2)
    model = SplitViT(_config(depth), seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (BATCH,), generator=g)
    if case == "device":
        del model.vit.blocks[model.cut :]  # the device holds only its part
        params = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if model.is_device_param(n))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with torch.no_grad():
            model.device_forward(x)
    else:
        params = sum(p.numel() * p.element_size() for p in model.parameters())
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        whole_step(model, x, y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"weights_mb": params / 2**20, "step_peak_growth_mb": (peak - before) / 1024}))


def memory(depth: int) -> dict:
    out = {}
    for case in ("device", "whole"):
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-case", case, "--depth", str(depth)],
            capture_output=True, text=True, check=True,
        )
        m = json.loads(proc.stdout.strip().splitlines()[-1])
        out[f"{case}_weights_mb"] = round(m["weights_mb"], 2)
        out[f"{case}_step_peak_growth_mb"] = round(m["step_peak_growth_mb"], 1)
        out[f"{case}_total_mb"] = round(m["weights_mb"] + m["step_peak_growth_mb"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-case", choices=("device", "whole"))
    parser.add_argument("--depth", type=int, default=6)
    args = parser.parse_args()
    if args.memory_case:
        _memory_case(args.memory_case, args.depth)
        return
    torch.set_num_threads(args.threads)
    result = {"batch": BATCH, "threads": args.threads, "steps": args.steps, "repeats": args.repeats,
              "memory_method": "peak RSS growth (ru_maxrss) during one step in a fresh process + weight bytes"}
    for depth in (6, 12):
        t = throughput(depth, args.steps, args.repeats)
        m = memory(depth)
        print(f"depth {depth}: " + ", ".join(f"{k}={v}" for k, v in {**t, **m}.items()), flush=True)
        result[f"depth{depth}"] = {**t, **m}
    d12 = result["depth12"]
    result["targets_met"] = {
        "split_100_ge_0.97x": min(result["depth6"]["split_100_speedup"], d12["split_100_speedup"]) >= 0.97,
        "split_25_ge_2.5x_depth12": d12["split_25_speedup"] >= 2.5,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
