"""Large-scale path loss: free space, log-distance, 3GPP TR 38.901 UMa/UMi, and 128.1 + 37.6 log10(d).

One public entry point, :func:`pathloss_db`, picks a model by name; the LOS probability and the
shadow-fading standard deviation that go with each model are :func:`los_probability` and
:func:`shadowing_std_db`. All functions are vectorised: distances (and the UT height) broadcast.

Validity ranges. TR 38.901 Table 7.4.1-1 holds for 10 m <= d2D <= 5 km and 0.5-100 GHz.
Below the minimum distance this module *clips* the 2D distance to the minimum (10 m for the 3GPP
and macro models, 1 m for free space, the reference distance for log-distance): a device at the
foot of the mast sees the loss of the closest valid point, not an extrapolation towards -inf.
Beyond 5 km the 3GPP formulas are extrapolated unchanged (a vehicle that has left the cell still
needs a finite loss). Frequencies and UT heights outside the table raise ``ValueError``.

Simplification: for UMa the standard draws the effective environment height h_E at random
(Table 7.4.1-1 note 1); here h_E = 1 m as for UMi, which is the standard's value for
UT heights below 13 m. d'_BP = 4 h'_BS h'_UT f_c / c with h' = h - h_E.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from netsim.units import SPEED_OF_LIGHT_MPS

MODELS = (
    "free-space",
    "log-distance",
    "3gpp-uma-los",
    "3gpp-uma-nlos",
    "3gpp-umi-los",
    "3gpp-umi-nlos",
    "macro-128.1",
)

#: Models where each device has its own LOS state (:mod:`netsim.los`): the TR 38.901 UMa / UMi
#: LOS formula for a device in LOS, the NLOS one (``max(PL_LOS, PL'_NLOS)``) otherwise.
PER_DEVICE_LOS_MODELS = ("3gpp-uma", "3gpp-umi")

#: Every model name :func:`pathloss_db` accepts.
ALL_MODELS = MODELS + PER_DEVICE_LOS_MODELS

# Default BS heights (m) from TR 38.901 Table 7.4.1-1: UMa 25 m, UMi street canyon 10 m.
_DEFAULT_BS_HEIGHT_M = {"uma": 25.0, "umi": 10.0}

# Shadow-fading standard deviations (dB): TR 38.901 Table 7.4.1-1; 8 dB for the 128.1 model
# as in 3GPP TR 36.814 Table A.2.1.1.2-3 and most papers that use it.
_SHADOWING_STD_DB = {
    "free-space": 0.0,
    "3gpp-uma-los": 4.0,
    "3gpp-uma-nlos": 6.0,
    "3gpp-umi-los": 4.0,
    "3gpp-umi-nlos": 7.82,
    "macro-128.1": 8.0,
}

_EFFECTIVE_ENV_HEIGHT_M = 1.0
_MIN_DISTANCE_3GPP_M = 10.0


def _check_model(model: str) -> None:
    if model not in ALL_MODELS:
        raise ValueError(f"model must be one of {ALL_MODELS}, got {model!r}")


def _check_frequency(frequency_hz: float, low_hz: float, high_hz: float) -> None:
    if not low_hz <= frequency_hz <= high_hz:
        raise ValueError(
            f"frequency_hz must be in [{low_hz:g}, {high_hz:g}] for this model, got {frequency_hz!r}"
        )


def free_space_db(distance_m: ArrayLike, frequency_hz: float) -> np.ndarray:
    """Friis free-space path loss, ``20 log10(4 pi d f / c)``.

    Args:
        distance_m: Link distance in m, any shape (> 0).
        frequency_hz: Carrier frequency in Hz.

    Returns:
        Path loss in dB, same shape as ``distance_m``.
    """
    d = np.asarray(distance_m, dtype=float)
    return 20.0 * np.log10(4.0 * np.pi * frequency_hz / SPEED_OF_LIGHT_MPS * d)


def log_distance_db(
    distance_m: ArrayLike,
    frequency_hz: float,
    exponent: float = 3.5,
    reference_distance_m: float = 1.0,
    reference_loss_db: float | None = None,
) -> np.ndarray:
    """Log-distance path loss, ``PL(d0) + 10 n log10(d / d0)``.

    Args:
        distance_m: Link distance in m, any shape (>= d0 after clipping by the caller).
        frequency_hz: Carrier frequency in Hz; sets ``PL(d0)`` to free space at ``d0`` when
            ``reference_loss_db`` is None.
        exponent: Path-loss exponent n (2 in free space, 2.7-5 in urban areas).
        reference_distance_m: Reference distance d0 in m.
        reference_loss_db: Loss at d0 in dB; defaults to the free-space loss at d0.

    Returns:
        Path loss in dB, same shape as ``distance_m``.
    """
    if reference_loss_db is None:
        reference_loss_db = float(free_space_db(reference_distance_m, frequency_hz))
    d = np.asarray(distance_m, dtype=float)
    return reference_loss_db + 10.0 * exponent * np.log10(d / reference_distance_m)


def macro_128_1_db(distance_m: ArrayLike) -> np.ndarray:
    """The classic macro-cell model ``128.1 + 37.6 log10(d / 1 km)`` (2 GHz carrier).

    Source: 3GPP TR 36.814 Table A.2.1.1.2-3 (and TR 25.814); frequency-independent by
    construction, calibrated at 2 GHz.

    Args:
        distance_m: Link distance in m, any shape.

    Returns:
        Path loss in dB, same shape.
    """
    return 128.1 + 37.6 * np.log10(np.asarray(distance_m, dtype=float) / 1000.0)


def breakpoint_distance_m(frequency_hz: float, bs_height_m: float, ut_height_m: ArrayLike) -> np.ndarray:
    """Breakpoint distance ``d'_BP = 4 h'_BS h'_UT f_c / c``, TR 38.901 Table 7.4.1-1 note 1.

    Args:
        frequency_hz: Carrier frequency in Hz.
        bs_height_m: BS antenna height in m.
        ut_height_m: UT antenna height(s) in m.

    Returns:
        d'_BP in m, shape of ``ut_height_m``. Effective heights use h_E = 1 m.
    """
    h_bs = bs_height_m - _EFFECTIVE_ENV_HEIGHT_M
    h_ut = np.asarray(ut_height_m, dtype=float) - _EFFECTIVE_ENV_HEIGHT_M
    return 4.0 * h_bs * h_ut * frequency_hz / SPEED_OF_LIGHT_MPS


# TR 38.901 Table 7.4.1-1 coefficients, with fc in GHz and distances in m:
#   LOS  PL1 = a1 + b1 log10(d3D) + 20 log10(fc)                         (d2D <= d'_BP)
#   LOS  PL2 = a1 + 40 log10(d3D) + 20 log10(fc) - c2 log10(d'_BP^2 + (h_BS - h_UT)^2)
#   NLOS PL' = an + bn log10(d3D) + fn log10(fc) - hn (h_UT - 1.5),   PL = max(PL_LOS, PL')
# UMa: a1 = 28.0, b1 = 22, c2 = 9;   an = 13.54, bn = 39.08, fn = 20, hn = 0.6
# UMi street canyon: a1 = 32.4, b1 = 21, c2 = 9.5;   an = 22.4, bn = 35.3, fn = 21.3, hn = 0.3
_COEFFS = {
    "uma": {"a1": 28.0, "b1": 22.0, "c2": 9.0, "an": 13.54, "bn": 39.08, "fn": 20.0, "hn": 0.6},
    "umi": {"a1": 32.4, "b1": 21.0, "c2": 9.5, "an": 22.4, "bn": 35.3, "fn": 21.3, "hn": 0.3},
}


def _tr38901_db(scenario, nlos, d2d, d3d, frequency_hz, h_bs, h_ut):
    # nlos: False, True, or a bool array (per device: True where NLOS), broadcast with d2d.
    k = _COEFFS[scenario]
    fc_ghz = frequency_hz / 1e9
    d_bp = breakpoint_distance_m(frequency_hz, h_bs, h_ut)
    log_fc = np.log10(fc_ghz)
    # log10(d3D) once: the costliest term for large N.
    log_d3d = np.log10(d3d)
    pl1 = (k["a1"] + 20.0 * log_fc) + k["b1"] * log_d3d
    pl2 = (k["a1"] + 20.0 * log_fc - k["c2"] * np.log10(d_bp**2 + (h_bs - h_ut) ** 2)) + 40.0 * log_d3d
    pl = np.where(d2d <= d_bp, pl1, pl2)
    if nlos is False:
        return pl
    pl_nlos = np.maximum(pl, (k["an"] + k["fn"] * log_fc - k["hn"] * (h_ut - 1.5)) + k["bn"] * log_d3d)
    if nlos is True:
        return pl_nlos
    return np.where(nlos, pl_nlos, pl)


# model name -> (scenario, NLOS?)
_3GPP = {
    "3gpp-uma-los": ("uma", False),
    "3gpp-uma-nlos": ("uma", True),
    "3gpp-umi-los": ("umi", False),
    "3gpp-umi-nlos": ("umi", True),
    "3gpp-uma": ("uma", None),
    "3gpp-umi": ("umi", None),
}


def pathloss_db(
    model: str,
    distance_2d_m: ArrayLike,
    frequency_hz: float,
    bs_height_m: float | None = None,
    ut_height_m: ArrayLike = 1.5,
    *,
    los: ArrayLike | None = None,
    **params: float,
) -> np.ndarray:
    """Path loss of a named model (dB, positive = attenuation).

    Models and sources:
        ``"free-space"``: Friis on the 3D distance (2D when ``bs_height_m`` is None).
        ``"log-distance"``: ``PL(d0) + 10 n log10(d/d0)``; params ``exponent`` (3.5),
        ``reference_distance_m`` (1), ``reference_loss_db`` (free space at d0).
        ``"3gpp-uma-los"``, ``"3gpp-uma-nlos"``, ``"3gpp-umi-los"``, ``"3gpp-umi-nlos"``:
        TR 38.901 Table 7.4.1-1 (UMi = street canyon) on the 3D distance, with the breakpoint
        distance d'_BP, effective heights (h_E = 1 m), NLOS = max(PL_LOS, PL'_NLOS).
        Default BS height 25 m (UMa) / 10 m (UMi); UT height 1.5-22.5 m.
        ``"3gpp-uma"``, ``"3gpp-umi"``: the same formulas with the LOS state given per device
        by ``los`` (the LOS formula where True, the NLOS one where False).
        ``"macro-128.1"``: ``128.1 + 37.6 log10(d / 1 km)`` (TR 36.814), on the 3D distance
        (2D when ``bs_height_m`` is None).

    Distances below the model's minimum (param ``min_distance_m``: 10 m for 3GPP and
    macro-128.1, 1 m for free space, d0 for log-distance) are clipped to it.

    Args:
        model: One of :data:`MODELS`.
        distance_2d_m: Horizontal BS-UT distance in m, any shape.
        frequency_hz: Carrier frequency in Hz (0.5-100 GHz for the 3GPP models).
        bs_height_m: BS antenna height in m; None = model default (see above).
        ut_height_m: UT antenna height in m, broadcast against ``distance_2d_m``.
        los: bool LOS state, broadcast against ``distance_2d_m``; required by the models of
            :data:`PER_DEVICE_LOS_MODELS`, refused by the others.
        **params: Model parameters named above, and ``min_distance_m``.

    Returns:
        Path loss in dB, the broadcast shape of ``distance_2d_m`` and ``ut_height_m``.

    Raises:
        ValueError: Unknown model, unknown parameter, or frequency / height out of range.
    """
    _check_model(model)
    if frequency_hz <= 0:
        raise ValueError(f"frequency_hz must be > 0, got {frequency_hz!r}")
    allowed = {"min_distance_m"}
    if model == "log-distance":
        allowed |= {"exponent", "reference_distance_m", "reference_loss_db"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"unknown parameter(s) for model {model!r}: {sorted(unknown)}")
    if (los is None) == (model in PER_DEVICE_LOS_MODELS):
        need = "requires" if los is None else "does not take"
        raise ValueError(f"model {model!r} {need} a per-device los state, got los={los!r}")

    d2d = np.asarray(distance_2d_m, dtype=float)
    if model in _3GPP:
        scenario, nlos = _3GPP[model]
        if nlos is None:
            nlos = ~np.asarray(los, dtype=bool)
        _check_frequency(frequency_hz, 0.5e9, 100e9)
        h_ut = np.asarray(ut_height_m, dtype=float)
        if h_ut.ndim == 0:
            h_ut = float(h_ut)
        if np.any((np.asarray(h_ut) < 1.5) | (np.asarray(h_ut) > 22.5)):
            raise ValueError(f"ut_height_m must be in [1.5, 22.5] for {model!r}, got {ut_height_m!r}")
        h_bs = _DEFAULT_BS_HEIGHT_M[scenario] if bs_height_m is None else float(bs_height_m)
        if h_bs <= _EFFECTIVE_ENV_HEIGHT_M:
            raise ValueError(f"bs_height_m must be > 1 m, got {bs_height_m!r}")
        d2d = np.maximum(d2d, params.get("min_distance_m", _MIN_DISTANCE_3GPP_M))
        d3d = np.sqrt(d2d * d2d + (h_bs - h_ut) ** 2)
        return _tr38901_db(scenario, nlos, d2d, d3d, frequency_hz, h_bs, h_ut)

    if model == "log-distance":
        d0 = float(params.get("reference_distance_m", 1.0))
        if d0 <= 0:
            raise ValueError(f"reference_distance_m must be > 0, got {d0!r}")
        min_d = params.get("min_distance_m", d0)
    elif model == "free-space":
        min_d = params.get("min_distance_m", 1.0)
    else:
        min_d = params.get("min_distance_m", _MIN_DISTANCE_3GPP_M)
    d = np.maximum(d2d, min_d)
    if bs_height_m is not None:
        d = np.sqrt(d * d + (float(bs_height_m) - np.asarray(ut_height_m, dtype=float)) ** 2)
    if model == "free-space":
        return free_space_db(d, frequency_hz)
    if model == "macro-128.1":
        return macro_128_1_db(d)
    return log_distance_db(
        d,
        frequency_hz,
        exponent=float(params.get("exponent", 3.5)),
        reference_distance_m=d0,
        reference_loss_db=params.get("reference_loss_db"),
    )


def los_probability(scenario: str, distance_2d_m: ArrayLike, ut_height_m: ArrayLike = 1.5) -> np.ndarray:
    """Probability of line of sight, TR 38.901 Table 7.4.2-1.

    UMi street canyon: 1 for d2D <= 18 m, else ``18/d + exp(-d/36) (1 - 18/d)``.
    UMa: 1 for d2D <= 18 m, else ``[18/d + exp(-d/63) (1 - 18/d)] (1 + C'(h_UT) 5/4 (d/100)^3
    exp(-d/150))`` with ``C' = 0`` for h_UT <= 13 m and ``((h_UT - 13)/10)^1.5`` above.

    Args:
        scenario: ``"uma"`` or ``"umi"``, or any 3GPP model name of :data:`MODELS`.
        distance_2d_m: Horizontal distance in m, any shape.
        ut_height_m: UT height in m (UMa only), broadcast against ``distance_2d_m``.

    Returns:
        LOS probability in [0, 1], broadcast shape.
    """
    key = scenario
    if scenario in _3GPP:
        key = _3GPP[scenario][0]
    if key not in ("uma", "umi"):
        raise ValueError(f"scenario must be 'uma', 'umi' or a 3GPP model name, got {scenario!r}")
    d = np.maximum(np.asarray(distance_2d_m, dtype=float), 1e-9)
    ratio = np.minimum(18.0 / d, 1.0)
    if key == "umi":
        p = ratio + np.exp(-d / 36.0) * (1.0 - ratio)
    else:
        h_ut = np.asarray(ut_height_m, dtype=float)
        c_prime = np.where(h_ut <= 13.0, 0.0, (np.clip(h_ut - 13.0, 0.0, None) / 10.0) ** 1.5)
        p = (ratio + np.exp(-d / 63.0) * (1.0 - ratio)) * (
            1.0 + c_prime * 1.25 * (d / 100.0) ** 3 * np.exp(-d / 150.0)
        )
    return np.where(d <= 18.0, 1.0, np.minimum(p, 1.0))


def fixed_model(model: str, los: bool) -> str:
    """The fixed-state model a device of a per-device LOS model is in (``"3gpp-uma"`` + LOS ->
    ``"3gpp-uma-los"``); a fixed model is returned unchanged."""
    _check_model(model)
    if model in PER_DEVICE_LOS_MODELS:
        return f"{model}-{'los' if los else 'nlos'}"
    return model


def fixed_los_state(model: str) -> bool:
    """The LOS state every device of a fixed model is in.

    ``*-los`` and free space (a clear path by definition) are LOS; ``*-nlos``, macro-128.1
    (fitted to non-line-of-sight macro cells, TR 36.814) and log-distance (exponent 3.5 by
    default, an obstructed urban path) are NLOS.

    Raises:
        ValueError: For a per-device LOS model (its state is per device, not fixed).
    """
    _check_model(model)
    if model in PER_DEVICE_LOS_MODELS:
        raise ValueError(f"model {model!r} has a per-device LOS state, not a fixed one")
    return model == "free-space" or model.endswith("-los")


def shadowing_std_db(model: str, **params: float) -> float:
    """Shadow-fading standard deviation of a model (dB).

    TR 38.901 Table 7.4.1-1: UMa LOS 4, UMa NLOS 6, UMi LOS 4, UMi NLOS 7.82; macro-128.1: 8
    (TR 36.814); free space: 0; log-distance: param ``shadowing_std_db`` (default 8). For a
    per-device LOS model use :func:`fixed_model` first (the value depends on the state).

    Args:
        model: One of :data:`MODELS`.
        **params: ``shadowing_std_db`` for ``"log-distance"``.

    Returns:
        Standard deviation in dB.
    """
    _check_model(model)
    if model in PER_DEVICE_LOS_MODELS:
        raise ValueError(f"model {model!r}: the shadowing sigma depends on the LOS state; use fixed_model")
    if model == "log-distance":
        return float(params.get("shadowing_std_db", 8.0))
    return _SHADOWING_STD_DB[model]
