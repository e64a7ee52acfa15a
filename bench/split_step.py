"""Benchmark: unsplit LoRA training vs the split step at 100 %, 50 %, 25 % of the tokens.

Same model (timm vit_tiny geometry at 32x32, patch 4: 64 patch tokens + CLS; LoRA r=8 on
qkv of the server blocks, head trainable, device part frozen, cut after block 2), same batch
of 64, for depth 6 and depth 12. "Unsplit" is the same model trained by one ordinary
forward/backward; "split" runs the device forward, semantic token selection with fusion,
the payload encoding, and the server forward/backward (learning.split_step.split_step).
Each configuration is timed over ``--steps`` optimiser steps after 2 warm-up steps; the
configurations are interleaved over ``--repeats`` rounds and the median is reported (the
machine is shared, so single timings are noisy).

Peak memory is the weights a side holds plus the peak of live tensor bytes created during
one step (tracked op by op with a TorchDispatchMode and weak references to the output
storages): the device part running its forward (no autograd, ST-SFLora) vs the whole model
running a training step (what fed-lora asks of a device). The process RSS is no use here:
its peak is set by imports and model construction long before a step.

Targets: split at 100 % >= 0.97x unsplit; split at 25 % >= 2.5x unsplit at depth 12.
The last line printed is a JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

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


class PeakTensorMemory(TorchDispatchMode):
    """Peak bytes of the tensors created while active (activations, gradients, temporaries).

    Every op's output storages are recorded with a weak reference; after each op the freed
    ones are dropped and the live total is compared with the peak. Storages that existed
    before (the weights) are not counted; they are added by the caller.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            self.current -= self.live.pop(key)[1]
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter):
                st = t.untyped_storage()
                key = st.data_ptr()
                if key and key not in self.live:
                    self.live[key] = (StorageWeakRef(st), st.nbytes())
                    self.current += st.nbytes()
        self.peak = max(self.peak, self.current)
        return out


def memory(depth: int) -> dict:
    """Peak memory of the device part's forward vs the whole model's training step, MB."""
    model = SplitViT(_config(depth), seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (BATCH,), generator=g)
    device_weights = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if model.is_device_param(n))
    whole_weights = sum(p.numel() * p.element_size() for p in model.parameters())
    with torch.no_grad(), PeakTensorMemory() as dev:
        model.device_forward(x)
    with PeakTensorMemory() as whole:
        whole_step(model, x, y)
    model.zero_grad(set_to_none=True)
    mb = 2**20
    return {
        "device_weights_mb": round(device_weights / mb, 2),
        "device_peak_tensors_mb": round(dev.peak / mb, 1),
        "device_total_mb": round((device_weights + dev.peak) / mb, 1),
        "whole_weights_mb": round(whole_weights / mb, 2),
        "whole_peak_tensors_mb": round(whole.peak / mb, 1),
        "whole_total_mb": round((whole_weights + whole.peak) / mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"batch": BATCH, "threads": args.threads, "steps": args.steps, "repeats": args.repeats,
              "memory_method": "weights + peak live bytes of tensors created during the step (TorchDispatchMode + storage weak refs)"}
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
