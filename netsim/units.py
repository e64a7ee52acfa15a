"""Unit conversions between logarithmic and linear power, and between speed units.

Every conversion used in :mod:`netsim` is a named, vectorised function, so that a reader never
has to guess whether ``x`` holds dB or a ratio. Inputs may be Python scalars or numpy arrays of
any shape; outputs have the broadcast shape (numpy scalars for scalar inputs).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: Speed of light in vacuum (m/s), exact by definition of the metre.
SPEED_OF_LIGHT_MPS = 299_792_458.0

#: Thermal noise power spectral density at 290 K, the textbook -174 dBm/Hz (k * T0).
THERMAL_NOISE_DBM_PER_HZ = -174.0


def db_to_lin(value_db: ArrayLike) -> np.ndarray:
    """Convert a power ratio from decibels to linear scale: ``10 ** (dB / 10)``.

    Args:
        value_db: Power ratio in dB, any shape.

    Returns:
        Linear power ratio, same shape.
    """
    return np.power(10.0, np.asarray(value_db, dtype=float) / 10.0)


def lin_to_db(value_lin: ArrayLike) -> np.ndarray:
    """Convert a linear power ratio to decibels: ``10 log10(x)``.

    Args:
        value_lin: Linear power ratio (>= 0), any shape. Zero maps to ``-inf``.

    Returns:
        Power ratio in dB, same shape.
    """
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(value_lin, dtype=float))


def dbm_to_w(power_dbm: ArrayLike) -> np.ndarray:
    """Convert a power from dBm to watts: ``10 ** ((dBm - 30) / 10)``.

    Args:
        power_dbm: Power in dBm, any shape.

    Returns:
        Power in W, same shape.
    """
    return np.power(10.0, (np.asarray(power_dbm, dtype=float) - 30.0) / 10.0)


def w_to_dbm(power_w: ArrayLike) -> np.ndarray:
    """Convert a power from watts to dBm: ``10 log10(W) + 30``.

    Args:
        power_w: Power in W (>= 0), any shape. Zero maps to ``-inf``.

    Returns:
        Power in dBm, same shape.
    """
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(power_w, dtype=float)) + 30.0


def kmh_to_mps(speed_kmh: ArrayLike) -> np.ndarray:
    """Convert a speed from km/h to m/s (divide by 3.6).

    Args:
        speed_kmh: Speed in km/h, any shape.

    Returns:
        Speed in m/s, same shape.
    """
    return np.asarray(speed_kmh, dtype=float) / 3.6


def mps_to_kmh(speed_mps: ArrayLike) -> np.ndarray:
    """Convert a speed from m/s to km/h (multiply by 3.6).

    Args:
        speed_mps: Speed in m/s, any shape.

    Returns:
        Speed in km/h, same shape.
    """
    return np.asarray(speed_mps, dtype=float) * 3.6
