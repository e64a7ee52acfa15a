"""How the devices' private training samples are split among them: IID or label-skewed.

Source:
    Dirichlet label partition: Hsu, Qi, Brown, "Measuring the effects of non-identical data
    distribution for federated visual classification", arXiv:1909.06335, 2019.
"""
from __future__ import annotations

import numpy as np
import torch


def iid_partition(num_samples: int, num_devices: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle the sample indices and cut them into ``num_devices`` near-equal parts.

    Args:
        num_samples: size of the data set.
        num_devices: number of parts.
        rng: source of the shuffle.

    Returns:
        ``num_devices`` sorted ``int64`` index arrays, disjoint and covering ``range(num_samples)``.
    """
    if num_devices <= 0:
        raise ValueError(f"num_devices must be > 0, got {num_devices!r}")
    if num_samples < num_devices:
        raise ValueError(f"num_samples must be >= num_devices ({num_devices}), got {num_samples!r}")
    return [np.sort(p) for p in np.array_split(rng.permutation(num_samples), num_devices)]


def dirichlet_partition(
    labels: np.ndarray | torch.Tensor,
    num_devices: int,
    alpha: float,
    rng: np.random.Generator,
    min_samples: int = 10,
    max_tries: int = 1000,
) -> list[np.ndarray]:
    """Label-skewed partition: each class is split over devices by Dirichlet(alpha) shares.

    For every class, its shuffled indices are split with proportions drawn from
    ``Dirichlet(alpha * 1)``; a device that already holds more than ``N / num_devices``
    samples gets no further share (Hsu et al. 2019, as in the NIID-Bench code). The draw is
    repeated until every device holds at least ``min_samples``. Smaller ``alpha`` gives more
    skewed label mixes; ``alpha -> inf`` tends to IID.

    Args:
        labels: class of every sample, ``[N]``.
        num_devices: number of devices.
        alpha: Dirichlet concentration, > 0.
        rng: source of all draws.
        min_samples: least samples per device.
        max_tries: redraws before giving up.

    Returns:
        ``num_devices`` sorted ``int64`` index arrays, disjoint and covering ``range(N)``.

    Raises:
        ValueError: bad argument, or no draw met ``min_samples`` within ``max_tries``.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if num_devices <= 0:
        raise ValueError(f"num_devices must be > 0, got {num_devices!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    if min_samples < 0 or min_samples * num_devices > n:
        raise ValueError(
            f"min_samples must be in [0, N / num_devices = {n // num_devices}], got {min_samples!r}"
        )
    classes = np.unique(labels)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_devices)]
        sizes = np.zeros(num_devices, dtype=np.int64)
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            share = rng.dirichlet(np.full(num_devices, alpha))
            share = share * (sizes < n / num_devices)
            share = share / share.sum()
            cuts = (np.cumsum(share) * len(idx)).astype(np.int64)[:-1]
            for d, chunk in enumerate(np.split(idx, cuts)):
                parts[d].append(chunk)
                sizes[d] += len(chunk)
        if sizes.min() >= min_samples:
            return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
    raise ValueError(
        f"min_samples={min_samples!r} not met in {max_tries} draws with alpha={alpha!r}; "
        "lower min_samples or raise alpha"
    )
