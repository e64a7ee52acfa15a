"""Benchmark: accuracy of a model when the device sends only K of its patch tokens.

Two kinds of model:

* ``--run DIR``: the final model of a run (its backbone, the global LoRA adapters and head of
  its checkpoint, its cut and its test set), so the curve describes what the devices actually
  trained -- the fine-tuned model;
* ``--weights FILE`` (default: the shipped ``default`` backbone; ``--recipe scenes`` for the
  other): a backbone file with its own pretraining head, cut after block ``--cut`` -- no
  fine-tuning, so the curve shows what the tokens carry, not what training recovers.

The device part runs on each test image, a selection keeps K of the 64 patch tokens (plus
[CLS]), and the server part classifies what it receives.
Selections (``learning.tokens.select_tokens``, the functions the learner uses):

* ``semantic``: top-K by [CLS] attention of the last device block, dropped tokens fused into
  one (EViT);
* ``semantic_nofuse``: the same without the fused token;
* ``random``: K uniformly at random, fused token as above;
* ``norm``: top-K by activation L2 norm, fused token as above.

Ranking is per image (``--ranking sample``) by default, so the result does not depend on how
the test set is batched; ``--ranking batch`` ranks by the batch's summed scores as the ST-SFLora
paper does. The semantic - random difference at each K is paired over test images: the
per-image difference of the correct indicators, mean +- 1.96 sd / sqrt(n).

The last line printed is a JSON object:
``{"cut": L, "curve": {"semantic": {"4": acc, ..., "64": acc}, ...}, "semantic_minus_random":
{"4": {"diff", "lo", "hi"}, ...}, "all_tokens": acc, "samples": n, ...}``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning.data import load_dataset  # noqa: E402
from learning.recipes import coarse, read_weights, recipe_from_metadata, shipped_path  # noqa: E402
from learning.split_vit import SplitViT  # noqa: E402
from learning.tokens import patch_importance, select_tokens  # noqa: E402

KS = (4, 8, 16, 32, 64)
#: name -> (policy, fuse)
SELECTIONS = {
    "semantic": ("semantic", True),
    "semantic_nofuse": ("semantic", False),
    "random": ("random", True),
    "norm": ("norm", True),
}


def paired_interval(a: np.ndarray, b: np.ndarray) -> dict:
    """Mean of ``a - b`` (per-image 0/1 correct indicators) and its normal 95 % interval."""
    d = a.astype(np.float64) - b.astype(np.float64)
    mean = float(d.mean())
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return {"diff": mean, "lo": mean - half, "hi": mean + half}


@torch.no_grad()
def correct_indicators(model: SplitViT, data, samples: int, batch_size: int, ranking: str,
                       seed: int) -> dict[str, dict[int, np.ndarray]]:
    """``{selection: {K: bool [samples]}}``: whether each test image is classified right."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    out = {name: {k: [] for k in KS} for name in SELECTIONS}
    for start in range(0, samples, batch_size):
        x, y = data.batch(np.arange(start, min(start + batch_size, samples)))
        tokens, cls_attn = model.device_forward(x)
        importance = patch_importance(cls_attn, model.num_prefix_tokens)
        for name, (policy, fuse) in SELECTIONS.items():
            for k in KS:
                sel = select_tokens(tokens, importance, k, policy, ranking, fuse, gen, model.num_prefix_tokens)
                out[name][k].append((model.server_forward(sel.tokens).argmax(1) == y).numpy())
    return {name: {k: np.concatenate(v) for k, v in per_k.items()} for name, per_k in out.items()}


def run_model(run: Path, cut: int | None) -> tuple[SplitViT, object, Path, bytes]:
    """The final model of run directory ``run``: ``(model, test set, checkpoint path, its bytes)``.

    The config is rebuilt from ``config.json`` (every stored value applied to the scenario's
    defaults), the backbone loaded as the run loaded it, and the checkpoint's global trainable
    state (LoRA adapters and head) put on top.
    """
    from scenarios import registry
    from scenarios.base import backbone, load_data
    from scenarios.config import DERIVED_KEYS
    from scenarios.overrides import apply_overrides, flatten
    from scenarios.policies import names as policy_names
    from scenarios.rundir import CHECKPOINT, load_checkpoint

    record_path, ckpt_path = run / "config.json", run / CHECKPOINT
    if not record_path.is_file() or not ckpt_path.is_file():
        raise ValueError(f"--run {str(run)!r} is not a finished run directory (config.json and {CHECKPOINT} needed)")
    record = json.loads(record_path.read_text())
    name = record["scenario"] if record["scenario"] in registry.SCENARIOS else record["scenario_source"]
    # every stored value but the derived ones (they follow a top-level key) and, in a config.json
    # from before one parameter group per run, the groups of policies not chosen (as resume does)
    others = set(policy_names()) - {record["policy"]}
    flat = {k: tuple(v) if isinstance(v, list) else v for k, v in flatten(record["config"]).items()
            if k not in DERIVED_KEYS and k.split(".", 1)[0] not in others}
    cfg = apply_overrides(registry.load(name).default_config(), flat)
    model_cfg = cfg.model if cut is None else dataclasses.replace(cfg.model, cut=cut)
    train, test = load_data(cfg)
    model = SplitViT(model_cfg, seed=0, backbone_state=backbone(cfg, train=train, test=test))
    state = load_checkpoint(ckpt_path)
    model.load_trainable_state(state["learner"]["global"])
    return model, test, ckpt_path, ckpt_path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cut", type=int, default=None, help="blocks on the device (default: the recipe's cut)")
    p.add_argument("--weights", default=None, help="a .safetensors file from `sflsim pretrain --recipe` (default: shipped)")
    p.add_argument("--recipe", default="default", help="with neither --weights nor --run: which shipped backbone")
    p.add_argument("--run", default=None, help="a run directory: evaluate its final (fine-tuned) model")
    p.add_argument("--samples", type=int, default=10_000, help="test images (the first N)")
    p.add_argument("--ranking", choices=("sample", "batch"), default="sample")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0, help="seed of the random selection")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.run is not None:
        if args.weights is not None:
            p.error("give --run or --weights, not both")
        try:
            model, test, path, data = run_model(Path(args.run), args.cut)
        except ValueError as exc:
            p.error(str(exc))
        cut = model.config.cut
    else:
        path = Path(args.weights) if args.weights else shipped_path(args.recipe)
        data = path.read_bytes()
        state, meta = read_weights(data)
        recipe = recipe_from_metadata(meta)
        cut = recipe.model.cut if args.cut is None else args.cut
        if not 1 <= cut <= recipe.model.depth:
            p.error(f"--cut must be in [1, {recipe.model.depth}] (the [CLS] attention needs a device block), got {cut}")
        model = SplitViT(dataclasses.replace(recipe.model, cut=cut), seed=0, backbone_state=state)
        _, test = load_dataset(recipe.dataset, image_size=recipe.model.img_size, scenes=recipe.scenes)
        if recipe.labels != "fine":  # the backbone's own head answers its grouped task
            test = coarse(test, recipe.labels)
    n = min(args.samples, len(test))

    start = time.perf_counter()
    hits = correct_indicators(model, test, n, args.batch_size, args.ranking, args.seed)
    seconds = time.perf_counter() - start

    curve = {name: {str(k): float(v.mean()) for k, v in per_k.items()} for name, per_k in hits.items()}
    diff = {str(k): paired_interval(hits["semantic"][k], hits["random"][k]) for k in KS}
    all_tokens = curve["semantic"][str(KS[-1])]
    print(f"token curve: {path.name if args.run is None else args.run}, cut {cut}, {n} test images, ranking {args.ranking}, "
          f"all tokens {all_tokens:.4f}")
    print(f"{'K':>3} " + " ".join(f"{name:>16}" for name in SELECTIONS) + "   semantic - random [95 % CI]")
    for k in KS:
        d = diff[str(k)]
        print(f"{k:>3} " + " ".join(f"{curve[name][str(k)]:>16.4f}" for name in SELECTIONS)
              + f"   {d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]")
    print(json.dumps({
        "cut": cut, "curve": curve, "semantic_minus_random": diff, "all_tokens": all_tokens,
        "samples": n, "ranking": args.ranking, "batch_size": args.batch_size, "seed": args.seed,
        "weights": portable_path(path), "run": Path(args.run).name if args.run else None,
        "sha256": hashlib.sha256(data).hexdigest(), "threads": args.threads,
        "seconds": round(seconds, 1), "loadavg": list(os.getloadavg()),
    }))
    return 0


def portable_path(path: Path) -> str:
    """``path`` as a committed result may hold it: relative to the project when inside it,
    otherwise the file name alone (its SHA-256 is recorded beside it); never a machine's
    absolute path."""
    root = Path(__file__).resolve().parents[1]
    resolved = Path(path).resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else resolved.name


if __name__ == "__main__":
    sys.exit(main())
