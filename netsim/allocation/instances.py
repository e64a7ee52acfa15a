"""Random but realistic allocation problems, for tests, benchmarks and quick experiments."""

from __future__ import annotations

import numpy as np

from netsim.pathloss import macro_128_1_db
from netsim.units import THERMAL_NOISE_DBM_PER_HZ, db_to_lin, dbm_to_w

from .problem import AllocationProblem


def random_retention(
    rng: np.random.Generator, n: int, k_max: int, alpha: float = 0.3
) -> np.ndarray:
    """Concave increasing retention curves from sorted Dirichlet token importances.

    Token importances (e.g. [CLS] attention weights) are drawn from Dirichlet(alpha), sorted
    in decreasing order and accumulated: keeping the K most important tokens retains the
    importance mass f(K), with f(0) = 0, f(K_max) = 1, concave in K.

    Returns:
        ``[n, k_max + 1]`` retention.
    """
    # [n, k_max]
    importance = -np.sort(-rng.dirichlet(np.full(k_max, alpha), size=n), axis=1)
    ret = np.concatenate([np.zeros((n, 1)), np.cumsum(importance, axis=1)], axis=1)
    # Guard the cumulative sum against rounding making it decrease by an ulp.
    return np.maximum.accumulate(ret, axis=1)


def random_problem(
    rng: np.random.Generator,
    n: int,
    k_max: int = 64,
    *,
    min_distance_m: float = 50.0,
    max_distance_m: float = 500.0,
    shadowing_std_db: float = 8.0,
    total_bandwidth_hz: float = 20e6,
    max_power_w: float = 0.2,
    noise_figure_db: float = 9.0,
    bits_per_token: float = 32 * 192 * 32,
    deadline_s: tuple[float, float] = (2.0, 5.0),
    compute_time_s: tuple[float, float] = (0.1, 0.5),
    compute_energy_j: tuple[float, float] = (0.05, 0.3),
    tx_energy_budget_j: tuple[float, float] = (0.1, 1.0),
    per_token_compute: bool = False,
    extra_tokens: int = 2,
    min_tokens: int = 1,
) -> AllocationProblem:
    """A random single-cell uplink allocation problem with realistic magnitudes.

    Devices are uniform in area in an annulus [min_distance_m, max_distance_m] around the
    base station; gain = -(128.1 + 37.6 log10(d_km)) dB (3GPP TR 36.814 macro path loss)
    plus log-normal shadowing; noise -174 dBm/Hz plus the noise figure. bits_per_token is a
    batch of 32 tokens of 192 dims at 32 bits (ViT-Tiny width). Deadlines, compute times and
    energies are uniform in the given ranges; the energy budget is the compute energy plus a
    transmission budget. Retention curves come from :func:`random_retention`.

    Args:
        rng: random generator (the only source of randomness).
        n: number of devices.
        k_max: number of patch tokens K_max.
        per_token_compute: add per-token compute time and energy terms (about 1 % of the
            round's compute per token).

    Returns:
        The :class:`AllocationProblem`.
    """
    r_m = np.sqrt(rng.uniform(min_distance_m**2, max_distance_m**2, n))
    pathloss_db = macro_128_1_db(r_m)
    gain_db = -pathloss_db + shadowing_std_db * rng.standard_normal(n)
    noise_psd_w_per_hz = float(dbm_to_w(THERMAL_NOISE_DBM_PER_HZ + noise_figure_db))
    comp_t = rng.uniform(*compute_time_s, n)
    comp_e = rng.uniform(*compute_energy_j, n)
    extra = {}
    if per_token_compute:
        extra = dict(
            compute_time_per_token_s=0.01 * comp_t / k_max * rng.uniform(0.5, 1.5, n),
            compute_energy_per_token_j=0.01 * comp_e / k_max * rng.uniform(0.5, 1.5, n),
        )
    return AllocationProblem(
        gain_lin=db_to_lin(gain_db),
        noise_psd_w_per_hz=noise_psd_w_per_hz,
        total_bandwidth_hz=total_bandwidth_hz,
        max_power_w=np.full(n, max_power_w),
        energy_budget_j=comp_e + rng.uniform(*tx_energy_budget_j, n),
        deadline_s=rng.uniform(*deadline_s, n),
        bits_per_token=np.full(n, float(bits_per_token)),
        retention=random_retention(rng, n, k_max),
        compute_time_s=comp_t,
        compute_energy_j=comp_e,
        extra_tokens=extra_tokens,
        min_tokens=min_tokens,
        **extra,
    )
