"""Line-of-sight state per device, drawn from TR 38.901's LOS probability and kept as it moves.

Each device carries a standard-normal *LOS variable* ``z``. It is in line of sight when

    Phi(z) < P_LOS(d_2D)                                        (TR 38.901 Table 7.4.2-1)

with ``Phi`` the standard normal CDF. Because ``Phi(z)`` is uniform on [0, 1], the probability
of LOS at any distance is exactly the standard's ``P_LOS(d)``. As the device moves, ``z`` follows
the Gudmundson AR(1) update of correlated shadowing,

    z' = rho z + sqrt(1 - rho^2) w,   rho = exp(-moved / d_co),   w ~ N(0, 1),

so the LOS state of a device is spatially consistent: it changes only as the device travels a
fair part of the correlation distance ``d_co`` (TR 38.901 Table 7.6.3.1-2 gives 50 m for the
LOS state in UMa and UMi), and a still device keeps its state. This is a simpler rule than the
standard's procedure A spatial-consistency filter (§7.6.3.3, which correlates the state of
nearby *devices* too); it keeps the marginal probability and the per-device correlation
distance, not the correlation between devices.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from netsim.pathloss import los_probability

# TR 38.901 Table 7.6.3.1-2: correlation distance of the LOS state, m.
LOS_CORRELATION_DISTANCE_M = {"uma": 50.0, "umi": 50.0}


def draw_los_variable(rng: np.random.Generator, num_devices: int) -> np.ndarray:
    """Fresh LOS variables ``z ~ N(0, 1)``, shape ``[num_devices]``."""
    return rng.standard_normal(num_devices)


def update_los_variable(
    z: np.ndarray, distance_moved_m: ArrayLike, correlation_m: float, rng: np.random.Generator
) -> np.ndarray:
    """Advance the LOS variables after each device moved ``distance_moved_m`` metres.

    Args:
        z: ``[N]`` current LOS variables.
        distance_moved_m: ``[N]`` distance moved since the last update, m (>= 0).
        correlation_m: LOS correlation distance d_co, m (> 0).
        rng: generator of the innovations (one draw per device, moved or not, so the stream
            does not depend on who moved).

    Returns:
        ``[N]`` new LOS variables; unchanged where the device did not move.
    """
    rho = np.exp(-np.asarray(distance_moved_m, dtype=float) / correlation_m)
    w = rng.standard_normal(np.shape(z))
    return rho * z + np.sqrt(np.maximum(1.0 - rho * rho, 0.0)) * w


def los_state(scenario: str, z: np.ndarray, distance_2d_m: ArrayLike, ut_height_m: ArrayLike = 1.5) -> np.ndarray:
    """Whether each device is in line of sight: ``Phi(z) < P_LOS(d_2D)``.

    Args:
        scenario: ``"uma"`` or ``"umi"`` (the LOS probability of TR 38.901 Table 7.4.2-1).
        z: ``[N]`` LOS variables.
        distance_2d_m: ``[N]`` horizontal distance to the base station, m.
        ut_height_m: device antenna height, m (UMa only).

    Returns:
        ``[N]`` bool, True for LOS.
    """
    return ndtr(np.asarray(z, dtype=float)) < los_probability(scenario, distance_2d_m, ut_height_m)
