"""How much can batching a round's devices gain on this CPU? The server step, alone, per device and batched (not a test).

``bench/paper_scale.py`` measures the whole round; this script isolates the one computation
the batched round changes -- the server part's forward and backward for each device of a
round -- and sets it against the machine's own matrix-product rate, so the speedup that
batching *can* give here is a measured bound, not a guess.

Model: paper-cell's geometry (timm ViT, width 128, depth 6, 4 heads, 64 patch tokens, cut
after block 3, LoRA r = 8 on qkv of the server blocks, trainable head). Each of ``--devices``
devices sends a batch of ``--batch`` samples of ``--tokens`` tokens ([CLS] and the fused
token included). Timed, after a warm-up, median of ``--repeats`` interleaved rounds:

* **loop**: the devices one after another, each an ordinary ``server_forward`` and
  ``backward`` on its own batch (what ``learner.batched=false`` does per local step);
* **batched**: all devices at once through :func:`learning.batched.batched_logits` (``vmap``
  over stacked adapters, shared frozen weights), one backward;
* **GEMM**: a float32 product of two ``--gemm`` x ``--gemm`` matrices on the same threads, the
  rate a CPU reaches on a large, well-shaped product (near its peak).

The FLOPs of one device's step are counted by ``torch.utils.flop_counter.FlopCounterMode``
(matrix products only: the attention softmax, norms and GELU are not counted, so the
achieved rates are lower bounds). If the loop already runs at a fraction ``f`` of the GEMM
rate, no batching can make the server step faster than about ``1 / f``.

Last line: JSON ``{"devices", "batch", "tokens", "threads", "flops_per_device_step",
"loop_s", "batched_s", "speedup", "loop_gflops", "batched_gflops", "gemm_gflops",
"bound", "load"}``.

    OMP_WAIT_POLICY=PASSIVE python bench/batched_bound.py [--devices 50] [--batch 16]
        [--tokens 11] [--threads 2] [--repeats 5] [--gemm 1024]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning.batched import batched_logits  # noqa: E402
from learning.split_vit import SplitViT, SplitViTConfig  # noqa: E402


def loop_step(model: SplitViT, tokens: list[torch.Tensor], labels: list[torch.Tensor]) -> None:
    """Each device's server forward and backward, one after another."""
    for x, y in zip(tokens, labels):
        F.cross_entropy(model.server_forward(x), y).backward()


def batched_step(model: SplitViT, params: dict[str, torch.Tensor], tokens: torch.Tensor, labels: torch.Tensor,
                 key_bias: torch.Tensor) -> None:
    """All devices' server forward at once, one backward of the sum of their mean losses."""
    logits = batched_logits(model, model.cut, params, tokens, key_bias)
    ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(labels.shape)
    ce.mean(dim=1).sum().backward()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=11, help="tokens per sample received ([CLS], kept, fused)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gemm", type=int, default=1024)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = SplitViTConfig(embed_dim=128, depth=6, num_heads=4, cut=3, stem="conv")
    model = SplitViT(cfg, seed=0)
    model.train()
    M, B, T, D = args.devices, args.batch, args.tokens, cfg.embed_dim
    tokens = torch.randn(M, B, T, D)
    labels = torch.randint(0, cfg.num_classes, (M, B))
    names = model.trainable_names()
    own = dict(model.named_parameters())
    params = {n: own[n].detach().unsqueeze(0).repeat(M, *[1] * own[n].dim()).requires_grad_(True) for n in names}
    key_bias = torch.zeros(M, 1, 1, 1, T)
    per_device = list(tokens.unbind(0)), list(labels.unbind(0))

    with FlopCounterMode(display=False) as counter:
        loop_step(model, [per_device[0][0]], [per_device[1][0]])
    flops = counter.get_total_flops()
    a, b = torch.randn(args.gemm, args.gemm), torch.randn(args.gemm, args.gemm)

    runs = {
        "loop": lambda: loop_step(model, *per_device),
        "batched": lambda: batched_step(model, params, tokens, labels, key_bias),
        "gemm": lambda: torch.mm(a, b),
    }
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    load = os.getloadavg()
    for _ in range(args.repeats):
        for k, fn in runs.items():
            model.zero_grad(set_to_none=True)
            times[k].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    loop_gflops = M * flops / med["loop"] / 1e9
    batched_gflops = M * flops / med["batched"] / 1e9
    gemm_gflops = 2 * args.gemm**3 / med["gemm"] / 1e9
    speedup = med["loop"] / med["batched"]
    print(f"load {load}, threads {args.threads}; {M} devices x batch {B} x {T} tokens; "
          f"{flops / 1e6:.1f} MFLOP per device step (matrix products)")
    print(f"loop    {med['loop'] * 1e3:8.1f} ms  {loop_gflops:6.1f} GFLOP/s")
    print(f"batched {med['batched'] * 1e3:8.1f} ms  {batched_gflops:6.1f} GFLOP/s  speedup {speedup:.2f}x")
    print(f"GEMM {args.gemm}^3 {med['gemm'] * 1e3:6.1f} ms  {gemm_gflops:6.1f} GFLOP/s: "
          f"the loop runs at {loop_gflops / gemm_gflops:.0%} of it, so batching can gain at most ~"
          f"{gemm_gflops / loop_gflops:.1f}x on the server step")
    print(json.dumps({
        "devices": M, "batch": B, "tokens": T, "threads": args.threads, "flops_per_device_step": flops,
        "loop_s": med["loop"], "batched_s": med["batched"], "speedup": speedup, "loop_gflops": loop_gflops,
        "batched_gflops": batched_gflops, "gemm_gflops": gemm_gflops, "bound": gemm_gflops / loop_gflops,
        "load": list(os.getloadavg()),
    }))


if __name__ == "__main__":
    main()
