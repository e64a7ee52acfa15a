"""Small, real runs for the scenario tests: data written by the test, a tiny ViT, few rounds.

The data are Fashion-MNIST-format idx files made here (class-dependent stripes plus noise, so
that a tiny model can learn something), so the tests need neither the Debian package nor a
network. Every run is a real co-simulation: SimPy world, allocation, torch training.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def _write_idx(path: Path, array: np.ndarray) -> None:
    # idx format: two zero bytes, type code 0x08 (uint8), number of dimensions, big-endian sizes.
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def make_fashion_mnist(folder: Path, n_train: int = 1200, n_test: int = 300, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n)
        images = rng.integers(0, 60, size=(n, 28, 28))
        for i, c in enumerate(labels):
            row = 2 + 2 * int(c)
            images[i, row:row + 3, :] += 180  # a bright horizontal band whose height is the class
        _write_idx(folder / f"{split}-images-idx3-ubyte.gz", np.clip(images, 0, 255))
        _write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder




def small_args(data_dir: Path, cache_dir: Path, **extra: object) -> list[str]:
    """``--set`` arguments that make any scenario a few-second run."""
    values: dict[str, object] = {
        "rounds": 3,
        "devices": 3,
        "deadline_s": 30.0,
        "train_samples_per_device": 40,
        "min_samples_per_device": 8,
        "data_root": str(data_dir),
        "cache_dir": str(cache_dir),
        "token_maps": 2,
        "pretrain.source": "random",
        "model.depth": 2,
        "model.cut": 1,
        "model.embed_dim": 48,
        "model.num_heads": 3,
        "model.patch_size": 8,
        "learner.local_steps": 2,
        "learner.batch_size": 8,
        "learner.eval_samples": 64,
        "learner.eval_batch_size": 64,
        "learner.probe_samples": 8,
    }
    values.update(extra)
    args: list[str] = []
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    return args


def run_files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run directory (relative path -> bytes), but the writer's lock file
    (hidden, it names the process that held the directory)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}
