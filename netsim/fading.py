"""Small-scale block fading: Rayleigh and Rician(K), time-correlated by each device's Doppler.

The complex gain of device i on resource block b is constant over a coherence block and evolves
between blocks as a first-order Gauss-Markov (AR(1)) process on its diffuse part,

    g' = rho g + sqrt(1 - rho^2) w,   w ~ CN(0, 1),   rho = J0(2 pi f_D dt),   f_D = v f_c / c,

which matches the lag-1 autocorrelation of Clarke's/Jakes' isotropic scattering model
(Jakes, *Microwave Mobile Communications*, 1974; Baddour & Beaulieu, IEEE TWC 4(4), 2005, for
the AR(1) approximation). Rician fading adds a line-of-sight term:
``h = sqrt(K/(K+1)) exp(j phi) + sqrt(1/(K+1)) g`` with ``E|h|^2 = 1``; the LOS phase ``phi``
is drawn once per device and held (its Doppler rotation is not modelled). ``J0`` can be
negative (rho < 0) for large ``f_D dt``; the AR(1) is still valid there.

Flat fading uses one gain per device (``num_rb = 1``); frequency-selective fading draws one
independent gain per resource block (block fading in frequency, no correlation across blocks).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import j0

from netsim.units import SPEED_OF_LIGHT_MPS, db_to_lin


def doppler_hz(speed_mps: ArrayLike, frequency_hz: float) -> np.ndarray:
    """Maximum Doppler shift ``f_D = v f_c / c``.

    Args:
        speed_mps: Device speed in m/s, any shape.
        frequency_hz: Carrier frequency in Hz.

    Returns:
        Doppler shift in Hz, same shape.
    """
    return np.asarray(speed_mps, dtype=float) * (frequency_hz / SPEED_OF_LIGHT_MPS)


def jakes_correlation(doppler_shift_hz: ArrayLike, lag_s: float) -> np.ndarray:
    """Clarke/Jakes autocorrelation of the complex gain, ``J0(2 pi f_D tau)``.

    Args:
        doppler_shift_hz: Maximum Doppler shift in Hz, any shape.
        lag_s: Time lag tau in s.

    Returns:
        Correlation in [-0.403, 1], same shape.
    """
    return j0(2.0 * np.pi * np.asarray(doppler_shift_hz, dtype=float) * lag_s)


def complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Draw circularly-symmetric CN(0, 1) samples.

    Args:
        rng: Random generator.
        shape: Output shape.

    Returns:
        complex128 array of the given shape with ``E|z|^2 = 1``.
    """
    n = int(np.prod(shape))
    # Real and imaginary parts interleaved, then viewed as complex128 without a copy.
    z = rng.standard_normal(2 * n).view(np.complex128).reshape(shape)
    z *= np.sqrt(0.5)
    return z


class BlockFading:
    """Fading state of all devices: the diffuse complex gains and the Rician LOS terms.

    Args:
        num_devices: Number of devices N.
        num_rb: Independent gains per device (1 = flat fading).
        rng: Random generator for the initial state.
        k_factor_db: Rician K in dB; None for Rayleigh.

    Attributes:
        diffuse: complex128 ``[N, num_rb]``, the CN(0, 1) diffuse gains.
        los: complex128 ``[N, 1]``, ``sqrt(K/(K+1)) exp(j phi)`` (zeros for Rayleigh).
    """

    def __init__(
        self, num_devices: int, num_rb: int, rng: np.random.Generator, k_factor_db: float | None = None
    ) -> None:
        if num_devices < 0:
            raise ValueError(f"num_devices must be >= 0, got {num_devices!r}")
        if num_rb < 1:
            raise ValueError(f"num_rb must be >= 1, got {num_rb!r}")
        self.num_rb = num_rb
        self.k_factor_db = k_factor_db
        if k_factor_db is None:
            self._diffuse_scale = 1.0
            self.los = np.zeros((num_devices, 1), dtype=np.complex128)
        else:
            k_lin = float(db_to_lin(k_factor_db))
            self._diffuse_scale = float(np.sqrt(1.0 / (k_lin + 1.0)))
            phase = rng.uniform(0.0, 2.0 * np.pi, size=(num_devices, 1))
            self._los_phasor = np.exp(1j * phase)
            self.los = np.sqrt(k_lin / (k_lin + 1.0)) * self._los_phasor
        self.diffuse = complex_normal(rng, (num_devices, num_rb))

    def set_k_factor_lin(self, k_lin: np.ndarray) -> None:
        """Give each device its own Rician K (0: Rayleigh), keeping its LOS phase and its
        diffuse gains: ``h = sqrt(K/(K+1)) exp(j phi) + sqrt(1/(K+1)) g``, ``E|h|^2 = 1``.

        Used when a device's line-of-sight state changes: the diffuse process goes on
        unbroken, only the weight of the LOS term changes. Needs a Rician state (built with a
        ``k_factor_db``), which holds every device's LOS phase.

        Args:
            k_lin: ``[N]`` linear K factors (>= 0).
        """
        if self.k_factor_db is None:
            raise ValueError("set_k_factor_lin needs a BlockFading built with k_factor_db")
        # [N, 1]
        k_col = np.asarray(k_lin, dtype=float)[:, None]
        self._diffuse_scale = np.sqrt(1.0 / (k_col + 1.0))
        self.los = np.sqrt(k_col / (k_col + 1.0)) * self._los_phasor

    def step(self, rho: np.ndarray, rng: np.random.Generator) -> None:
        """Advance every device by one block: ``g' = rho g + sqrt(1 - rho^2) w``.

        Args:
            rho: Per-device correlation, shape ``[N]`` (e.g. :func:`jakes_correlation`).
            rng: Random generator for the innovations.
        """
        # [N, 1], broadcast over resource blocks
        rho_col = rho[:, None]
        scale = np.sqrt(0.5 * np.maximum(1.0 - rho_col * rho_col, 0.0))
        self.step_with(rho_col, scale, rng)

    def step_with(self, rho_col: np.ndarray, innovation_scale: np.ndarray, rng: np.random.Generator) -> None:
        """:meth:`step` with precomputed coefficients (for callers that cache them).

        Args:
            rho_col: Correlation, shape ``[N, 1]``.
            innovation_scale: ``sqrt((1 - rho^2) / 2)`` (per real dimension), shape ``[N, 1]``.
            rng: Random generator for the innovations.
        """
        n, b = self.diffuse.shape
        # Work on the real view [N, 2B] (re, im interleaved): real multiplies, no complex casts.
        # The innovations are drawn in exactly the layout complex_normal uses.
        real = self.diffuse.view(np.float64)
        innovation = rng.standard_normal(2 * n * b).reshape(n, 2 * b)
        innovation *= innovation_scale
        real *= rho_col
        real += innovation

    def gains(self) -> np.ndarray:
        """Complex channel gains ``h``, complex128 ``[N, num_rb]``, ``E|h|^2 = 1``."""
        if self.k_factor_db is None:
            return self.diffuse
        return self.los + self._diffuse_scale * self.diffuse

    def power_gain(self) -> np.ndarray:
        """Small-scale power gain ``|h|^2``, float ``[N, num_rb]``, mean 1."""
        h = self.gains()
        # [N, B, 2] real view: |h|^2 = re^2 + im^2
        parts = h.view(np.float64).reshape(h.shape[0], h.shape[1], 2)
        sq = parts * parts
        return sq[:, :, 0] + sq[:, :, 1]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays that fully describe the state."""
        state = {"diffuse": self.diffuse.copy(), "los": self.los.copy()}
        if self.k_factor_db is not None:
            state["los_phasor"] = self._los_phasor.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore the arrays written by :meth:`state_dict`."""
        if state["diffuse"].shape != self.diffuse.shape:
            raise ValueError(f"diffuse shape {state['diffuse'].shape} != {self.diffuse.shape}")
        self.diffuse = np.array(state["diffuse"], dtype=np.complex128)
        self.los = np.array(state["los"], dtype=np.complex128)
        if "los_phasor" in state:
            self._los_phasor = np.array(state["los_phasor"], dtype=np.complex128)
