"""Log-normal shadowing, optionally correlated along each device's path.

Shadowing in dB is Gaussian with the model's standard deviation (TR 38.901 Table 7.4.1-1).
Between two updates a device that moved ``d`` metres keeps correlation
``rho = exp(-d / d_corr)`` (Gudmundson, Electronics Letters 27(23), 1991), which makes the dB
process a first-order autoregression in distance: ``s' = rho s + sqrt(1 - rho^2) sigma z``.
Its marginal stays N(0, sigma^2) for every ``d``. All functions are vectorised over devices.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# Decorrelation distances (m), TR 38.901 Table 7.5-6 Part 1 (SF correlation distance).
DECORRELATION_DISTANCE_M = {
    "3gpp-uma-los": 37.0,
    "3gpp-uma-nlos": 50.0,
    "3gpp-umi-los": 10.0,
    "3gpp-umi-nlos": 13.0,
}

#: Used for models without a tabulated value (macro-128.1, log-distance): the UMa NLOS value.
DEFAULT_DECORRELATION_DISTANCE_M = 50.0


def decorrelation_distance_m(model: str) -> float:
    """Shadowing decorrelation distance of a path-loss model (m).

    Args:
        model: A path-loss model name of :mod:`netsim.pathloss`.

    Returns:
        The TR 38.901 Table 7.5-6 value for the 3GPP models, 50 m otherwise.
    """
    return DECORRELATION_DISTANCE_M.get(model, DEFAULT_DECORRELATION_DISTANCE_M)


def draw_shadowing_db(rng: np.random.Generator, std_db: float, num_devices: int) -> np.ndarray:
    """Independent log-normal shadowing draws.

    Args:
        rng: Random generator.
        std_db: Standard deviation in dB (>= 0).
        num_devices: Number of draws N.

    Returns:
        Shadowing in dB, shape ``[N]``, N(0, std_db^2).
    """
    return std_db * rng.standard_normal(num_devices)


def gudmundson_correlation(distance_moved_m: ArrayLike, decorrelation_m: float) -> np.ndarray:
    """Correlation of shadowing after moving ``d`` metres, ``exp(-d / d_corr)`` (Gudmundson 1991).

    Args:
        distance_moved_m: Distance moved in m, any shape (>= 0).
        decorrelation_m: Decorrelation distance in m (> 0); ``inf`` means fully correlated.

    Returns:
        Correlation in (0, 1], same shape.
    """
    return np.exp(-np.asarray(distance_moved_m, dtype=float) / decorrelation_m)


def update_shadowing_db(
    shadowing_db: np.ndarray,
    distance_moved_m: ArrayLike,
    std_db: float,
    decorrelation_m: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Advance correlated shadowing by each device's distance moved (AR(1) in distance).

    ``s' = rho s + sqrt(1 - rho^2) sigma z`` with ``rho = exp(-d / d_corr)``; a device that did
    not move keeps its value exactly. One normal is drawn per device on every call, whatever it
    moved, so the random stream does not depend on the mobility.

    Args:
        shadowing_db: Current shadowing in dB, shape ``[N]``.
        distance_moved_m: Distance moved since the last update in m, shape ``[N]``.
        std_db: Standard deviation sigma in dB.
        decorrelation_m: Decorrelation distance in m (> 0).
        rng: Random generator.

    Returns:
        New shadowing in dB, shape ``[N]``.
    """
    # [N]
    rho = gudmundson_correlation(distance_moved_m, decorrelation_m)
    return ar1_step_db(shadowing_db, rho, np.sqrt(1.0 - rho * rho) * std_db, rng)


def ar1_step_db(
    shadowing_db: np.ndarray, rho: np.ndarray, innovation_std_db: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One AR(1) step ``s' = rho s + innovation_std z`` (the core of :func:`update_shadowing_db`).

    Split out so that a caller whose devices move the same distance every step (constant
    speeds) can precompute ``rho`` and ``innovation_std = sqrt(1 - rho^2) sigma`` once.

    Args:
        shadowing_db: Current shadowing in dB, shape ``[N]``.
        rho: Correlation per device, shape ``[N]``.
        innovation_std_db: ``sqrt(1 - rho^2) sigma`` per device in dB, shape ``[N]``.
        rng: Random generator.

    Returns:
        New shadowing in dB, shape ``[N]``.
    """
    out = rng.standard_normal(shadowing_db.shape[0])
    out *= innovation_std_db
    out += rho * shadowing_db
    return out
