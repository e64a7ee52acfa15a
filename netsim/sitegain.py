"""Large-scale gain of every device-site pair: path loss and inter-site correlated shadowing.

Path loss is the World's model (:func:`netsim.pathloss.pathloss_db`) on the ``[N, S]`` matrix of
horizontal distances (:func:`netsim.layout.site_distances_m`); a fixed-LOS-state model is
required (a per-pair LOS process is not modelled).

Shadowing. The shadowing of device i towards site s is

    S[i, s] = sigma (sqrt(rho) a[i] + sqrt(1 - rho) b[i, s]),   a, b ~ N(0, 1) independent,

so that every pair has standard deviation sigma and two sites seen from one device are
correlated with ``rho`` (TR 36.942 §4.5 and TR 36.814 Table A.2.1.1.2-3: ``rho = 0.5`` between
sites, the value used by 3GPP system-level calibrations; ``rho = 0`` gives independent links).
Along each device's path both ``a`` and ``b`` follow Gudmundson's AR(1) in distance moved
(:mod:`netsim.shadowing`) with the model's decorrelation distance, so the marginal and the
inter-site correlation hold at every step.

All functions are pure; :class:`SiteShadowing` only holds the two arrays between updates.
"""

from __future__ import annotations

import numpy as np

from netsim import pathloss, shadowing

_NEG_LN10_OVER_10 = -np.log(10.0) / 10.0

#: Inter-site shadowing correlation of TR 36.942 §4.5 / TR 36.814 Table A.2.1.1.2-3.
INTER_SITE_CORRELATION_3GPP = 0.5


def combine_shadowing_db(std_db: float, correlation: float, common: np.ndarray, per_site: np.ndarray) -> np.ndarray:
    """``sigma (sqrt(rho) a[:, None] + sqrt(1 - rho) b)``: shadowing per pair in dB, ``[N, S]``.

    Args:
        std_db: Standard deviation sigma in dB.
        correlation: Inter-site correlation rho in [0, 1].
        common: ``[N]`` unit-variance component shared by a device's links.
        per_site: ``[N, S]`` unit-variance component of each link.
    """
    return std_db * (np.sqrt(correlation) * common[:, None] + np.sqrt(1.0 - correlation) * per_site)


class SiteShadowing:
    """Inter-site correlated shadowing of N devices towards S sites (module docstring).

    Args:
        std_db: Standard deviation in dB (>= 0).
        correlation: Inter-site correlation in [0, 1].
        decorrelation_m: Gudmundson decorrelation distance in m (> 0, may be inf).
        num_devices: N.
        num_sites: S.
        rng: Generator of the shadowing stream.

    Attributes:
        shadowing_db: ``[N, S]`` shadowing now, dB.
    """

    def __init__(
        self, std_db: float, correlation: float, decorrelation_m: float, num_devices: int, num_sites: int,
        rng: np.random.Generator,
    ) -> None:
        if not 0.0 <= correlation <= 1.0:
            raise ValueError(f"correlation must be in [0, 1], got {correlation!r}")
        self.std_db = float(std_db)
        self.correlation = float(correlation)
        self.decorrelation_m = float(decorrelation_m)
        self._common = rng.standard_normal(num_devices)
        self._per_site = rng.standard_normal((num_devices, num_sites))
        self.shadowing_db = combine_shadowing_db(self.std_db, self.correlation, self._common, self._per_site)

    def update(self, moved_m: np.ndarray, rng: np.random.Generator) -> None:
        """Advance both components by each device's distance moved (AR(1), unit variance)."""
        if self.std_db == 0.0:
            return
        # [N]
        rho = shadowing.gudmundson_correlation(moved_m, self.decorrelation_m)
        innovation = np.sqrt(1.0 - rho * rho)
        self._common = shadowing.ar1_step_db(self._common, rho, innovation, rng)
        noise = rng.standard_normal(self._per_site.shape)
        self._per_site = rho[:, None] * self._per_site + innovation[:, None] * noise
        self.shadowing_db = combine_shadowing_db(self.std_db, self.correlation, self._common, self._per_site)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"common": self._common.copy(), "per_site": self._per_site.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self._common = np.array(state["common"], dtype=float)
        self._per_site = np.array(state["per_site"], dtype=float)
        self.shadowing_db = combine_shadowing_db(self.std_db, self.correlation, self._common, self._per_site)


def pair_pathloss_db(
    model: str, distances_m: np.ndarray, frequency_hz: float, bs_height_m: float | None, ut_height_m: float
) -> np.ndarray:
    """Path loss of every device-site pair, dB, ``[N, S]`` (a fixed-LOS-state model of
    :data:`netsim.pathloss.MODELS`)."""
    if model not in pathloss.MODELS:
        raise ValueError(f"pathloss_model must be one of {pathloss.MODELS} in a multi-cell world, got {model!r}")
    return pathloss.pathloss_db(model, distances_m, frequency_hz, bs_height_m, ut_height_m)


def large_scale_gain_lin(pathloss_db: np.ndarray, shadowing_db: np.ndarray) -> np.ndarray:
    """``10^(-(PL + S) / 10)``, the linear large-scale power gain, same shape as the inputs."""
    return np.exp(_NEG_LN10_OVER_10 * (pathloss_db + shadowing_db))


def strongest_site(gain_lin: np.ndarray) -> np.ndarray:
    """``[N]`` index of the site with the largest large-scale gain (ties: the lowest index)."""
    return np.argmax(gain_lin, axis=1)
