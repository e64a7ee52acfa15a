"""Tiny synthetic data and models shared by the learning tests (no data set on disk needed)."""
import numpy as np
import pytest
import torch

from learning.data import ImageDataset
from learning.split_vit import SplitViTConfig

torch.set_num_threads(1)


def synthetic_set(n: int, num_classes: int = 4, size: int = 16, seed: int = 0) -> ImageDataset:
    """Grey images whose bright square's position encodes the class, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    images = rng.integers(0, 60, (n, 1, size, size)).astype(np.uint8)
    half = size // 2
    for i, c in enumerate(labels):
        r, col = divmod(int(c) % 4, 2)
        images[i, 0, r * half : (r + 1) * half, col * half : (col + 1) * half] += 150
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)), num_classes, 0.3, 0.3)


@pytest.fixture(scope="session")
def tiny_train() -> ImageDataset:
    return synthetic_set(400, seed=1)


@pytest.fixture(scope="session")
def tiny_test() -> ImageDataset:
    return synthetic_set(120, seed=2)


@pytest.fixture(scope="session")
def tiny_model_config() -> SplitViTConfig:
    # 16 patches of 4x4 on a 16x16 image, 3 blocks of width 48
    return SplitViTConfig(img_size=16, patch_size=4, depth=3, embed_dim=48, num_heads=3, num_classes=4, cut=1)
