"""Backbone files: the pretraining cache and recipe outputs, written atomically.

:mod:`learning` computes weights and the bytes of their files; this module is where they
reach the disk (temporary file in the same folder, fsync, rename), so a reader never sees a
half-written backbone.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from learning.data import load_dataset
from learning.recipes import Recipe, linear_probe, train_recipe, weights_bytes
from scenarios.rundir import atomic_write_bytes


def save_cache_file(path: Path, data: bytes) -> None:
    """Write a pretraining cache file (folder made if needed; readable like any cache file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def sidecar_path(out: Path) -> Path:
    """``FILE.safetensors`` -> ``FILE.json``."""
    return out.with_suffix(".json")


def run_recipe(recipe: Recipe, out: Path, data_root: str | None = None,
               on_step: Callable[[int, int, float], None] | None = None) -> dict:
    """Train ``recipe`` and write its weights to ``out`` and a JSON sidecar beside it.

    Sets torch's thread count to ``recipe.threads`` for the training (restored afterwards).

    Args:
        recipe: what to train.
        out: the ``.safetensors`` file to write; its folder must exist.
        data_root: where the data set is (default: the usual search path).
        on_step: progress callback.

    Returns:
        The summary: ``{"seconds", "samples", "accuracy", "eval_samples", "out", "sha256",
        "bytes", "threads", "samples_per_s", "recipe", "torch"}`` (also in the sidecar,
        with the load average at the end).
    """
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {str(out)!r}")
    if not out.parent.is_dir():
        raise ValueError(f"--out folder must exist, got {str(out.parent)!r}")
    train, test = load_dataset(recipe.dataset, data_root, image_size=recipe.model.img_size, scenes=recipe.scenes)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    start = time.perf_counter()
    try:
        state, info = train_recipe(recipe, train, test, on_step=on_step)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    probe = None
    if recipe.labels != "fine":  # the coarse task's backbone: how much of the fine task its features hold
        from learning.pretrain import split_public

        probe = linear_probe(state, recipe, split_public(train, recipe.pretrain)[0], test)
    data = weights_bytes(state, recipe)
    atomic_write_bytes(out, data)
    summary = {
        "seconds": round(seconds, 1),
        "samples": info["samples"],
        "samples_per_s": round(info["samples"] / info["seconds"], 1),
        "accuracy": info["accuracy"],
        "accuracy_task": recipe.labels,
        "linear_probe_fine": probe,
        "eval_samples": min(recipe.pretrain.eval_samples, len(test)),
        "train_loss": round(info["train_loss"], 4),
        "out": out.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "threads": info["threads"],
        "recipe": recipe.name,
        "torch": torch.__version__,
    }
    sidecar = {**summary, "loadavg_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
               "platform": sys.platform, "recipe_config": recipe.as_dict()}
    atomic_write_bytes(sidecar_path(out), (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
    return summary
