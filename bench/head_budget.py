"""Benchmark: how far a fresh 10-way head on a frozen scenes backbone gets, by training samples.

The default run (``scenes-cell``) fine-tunes a fresh head (and server LoRA) for 10 rounds of
10 devices x 2 local steps of 16: about 3200 training samples in all, and FedAvg of 10 devices'
2 steps moves the global model about as far as 2 steps with a batch of 160 per round. With the
``scenes`` backbone it plateaus near 0.45-0.47, while a logistic probe fitted to convergence on
the same backbone's features (L-BFGS, full batch, ``learning.recipes.linear_probe``) reaches
about 0.64. ``--recipe`` picks the shipped backbone (default: ``scenes-garments``, the default
scenario's; ``bench/results/head_budget.txt`` is ``--recipe scenes``). This script asks
whether that gap is the sample budget: it trains only a linear head, centrally,
on IID draws of the devices' 10 000 scenes with every token (an upper bound for what the
federated head can do with the same samples: no Dirichlet label skew, no token selection),
with the run's optimiser (SGD, momentum 0.9), and prints test accuracy (all 10 000 test
scenes) after each number of steps, next to the L-BFGS probe.

The backbone's pre-logit features (final norm of [CLS]) are computed once; only the head trains.
The last line printed is a JSON object:
``{"lbfgs": acc, "sgd": {"lr=0.02,batch=16": {"20": acc, ...}, ...}, "fit_samples": n, ...}``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning.data import load_dataset  # noqa: E402
from learning.pretrain import split_public  # noqa: E402
from learning.recipes import fit_logistic, get_recipe, load_shipped, pre_logit_features  # noqa: E402
from learning.split_vit import create_backbone  # noqa: E402

STEPS = (20, 50, 100, 200, 500, 1000, 2000, 5000)


def sgd_curve(f_fit: torch.Tensor, y: torch.Tensor, f_test: torch.Tensor, yt: torch.Tensor,
              lr: float, batch: int, seed: int) -> dict[str, float]:
    """Test accuracy after each of :data:`STEPS` SGD steps (momentum 0.9) on IID draws."""
    rng = np.random.default_rng(seed)
    head = torch.nn.Linear(f_fit.shape[1], int(y.max()) + 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9)
    curve = {}
    for step in range(1, max(STEPS) + 1):
        idx = torch.from_numpy(rng.integers(0, len(y), batch))
        opt.zero_grad()
        F.cross_entropy(head(f_fit[idx]), y[idx]).backward()
        opt.step()
        if step in STEPS:
            with torch.no_grad():
                curve[str(step)] = round(float((head(f_test).argmax(1) == yt).float().mean()), 4)
    return curve


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=None, help="Fashion-MNIST folder (default: the Debian package's)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="seed of the SGD draws")
    p.add_argument("--recipe", default="scenes-garments", help="which shipped scenes backbone")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = get_recipe(args.recipe)
    train, test = load_dataset("fashion-scenes", args.data_root, image_size=recipe.model.img_size,
                               scenes=recipe.scenes)
    state, _ = load_shipped(recipe.model, args.recipe)
    model = create_backbone(recipe.model, 0)
    model.load_state_dict(state)
    devices = split_public(train, recipe.pretrain)[1]  # what no pretraining step saw
    start = time.perf_counter()
    with torch.no_grad():
        n = min(10_000, len(devices))
        f_fit, f_test = pre_logit_features(model, devices, n), pre_logit_features(model, test, min(10_000, len(test)))
    y, yt = devices.labels[:n], test.labels[: len(f_test)]
    print(f"features of {n} device and {len(f_test)} test scenes in {time.perf_counter() - start:.0f} s")
    lbfgs = fit_logistic(f_fit, y, f_test, yt, devices.num_classes)  # raw features, as the run's head sees them
    print(f"L-BFGS probe (to convergence): {lbfgs:.4f}")
    sgd = {}
    for lr, batch in ((0.02, 16), (0.02, 160), (0.2, 160)):
        key = f"lr={lr},batch={batch}"
        sgd[key] = sgd_curve(f_fit, y, f_test, yt, lr, batch, args.seed)
        print(f"SGD {key}: " + ", ".join(f"{s} steps {a:.3f}" for s, a in sgd[key].items()), flush=True)
    print(json.dumps({"lbfgs": round(lbfgs, 4), "sgd": sgd, "fit_samples": n, "test_samples": len(f_test),
                      "threads": args.threads, "seed": args.seed, "recipe": args.recipe}))


if __name__ == "__main__":
    main()
