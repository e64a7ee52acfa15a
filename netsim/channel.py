"""The per-device channel: path loss x shadowing x small-scale fading, updated for all devices.

Composes :mod:`netsim.pathloss`, :mod:`netsim.shadowing` and :mod:`netsim.fading` into one
vectorised state that the World advances once per coherence interval. The power gain of device
i on block b is

    g[i, b] = 10^(-(PL[i] + S[i]) / 10) * |h[i, b]|^2,

with PL the path loss at its current distance, S its shadowing (dB) and h its fading gain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim import fading, pathloss, shadowing

_FADING = ("rayleigh", "rician", "none")
_NEG_LN10_OVER_10 = -np.log(10.0) / 10.0


@dataclass(frozen=True)
class ChannelConfig:
    """Propagation model of the cell.

    Attributes:
        pathloss_model: A model of :data:`netsim.pathloss.MODELS`.
        carrier_frequency_hz: Carrier frequency in Hz.
        bs_height_m: BS antenna height in m; None = the model's default (UMa 25, UMi 10 m).
        ut_height_m: Device antenna height in m.
        shadowing: Apply log-normal shadowing.
        shadowing_std_db: Standard deviation in dB; None = the model's (TR 38.901).
        decorrelation_m: Shadowing decorrelation distance in m; None = the model's
            (TR 38.901 Table 7.5-6); ``inf`` keeps each device's shadowing constant.
        fading: ``"rayleigh"``, ``"rician"`` or ``"none"``.
        rician_k_db: Rician K factor in dB (9 dB: mean K of UMa LOS, TR 38.901 Table 7.5-6).
        per_rb_fading: Independent fading per resource block (else flat over the band).
        min_doppler_speed_mps: The fading's Doppler is that of at least this speed, for moving
            scatterers around a still device (3 km/h: the pedestrian speed 3GPP uses for
            low-mobility links, e.g. the EPA 5 Hz channel). 0 freezes a still device's fading.
    """

    pathloss_model: str = field(
        default="3gpp-uma-nlos", metadata={"help": "path-loss model, one of netsim.pathloss.MODELS", "unit": ""}
    )
    carrier_frequency_hz: float = field(
        default=3.5e9, metadata={"help": "carrier frequency", "unit": "Hz"}
    )
    bs_height_m: float | None = field(
        default=None, metadata={"help": "base-station antenna height; None: the model's default (UMa 25 m, UMi 10 m)", "unit": "m"}
    )
    ut_height_m: float = field(
        default=1.5, metadata={"help": "device antenna height", "unit": "m"}
    )
    shadowing: bool = field(
        default=True, metadata={"help": "apply log-normal shadowing", "unit": ""}
    )
    shadowing_std_db: float | None = field(
        default=None, metadata={"help": "shadowing standard deviation; None: the model's (TR 38.901)", "unit": "dB"}
    )
    decorrelation_m: float | None = field(
        default=None, metadata={"help": "shadowing decorrelation distance; None: the model's; inf: constant", "unit": "m"}
    )
    fading: str = field(
        default="rayleigh", metadata={"help": "small-scale fading: rayleigh, rician or none", "unit": ""}
    )
    rician_k_db: float = field(
        default=9.0, metadata={"help": "Rician K factor (9 dB: mean K of UMa LOS, TR 38.901 Table 7.5-6)", "unit": "dB"}
    )
    per_rb_fading: bool = field(
        default=False, metadata={"help": "independent fading per resource block (else flat over the band)", "unit": ""}
    )
    min_doppler_speed_mps: float = field(
        default=3.0 / 3.6, metadata={"help": "fading Doppler is at least this speed's (moving scatterers around a still device)", "unit": "m/s"}
    )

    def __post_init__(self) -> None:
        if not (np.isfinite(self.min_doppler_speed_mps) and self.min_doppler_speed_mps >= 0):
            raise ValueError(f"min_doppler_speed_mps must be a finite number >= 0, got {self.min_doppler_speed_mps!r}")
        if self.pathloss_model not in pathloss.MODELS:
            raise ValueError(f"pathloss_model must be one of {pathloss.MODELS}, got {self.pathloss_model!r}")
        if not self.carrier_frequency_hz > 0:
            raise ValueError(f"carrier_frequency_hz must be > 0, got {self.carrier_frequency_hz!r}")
        if self.fading not in _FADING:
            raise ValueError(f"fading must be one of {_FADING}, got {self.fading!r}")
        if self.shadowing_std_db is not None and not self.shadowing_std_db >= 0:
            raise ValueError(f"shadowing_std_db must be >= 0, got {self.shadowing_std_db!r}")
        if self.decorrelation_m is not None and not self.decorrelation_m > 0:
            raise ValueError(f"decorrelation_m must be > 0, got {self.decorrelation_m!r}")
        # Validate frequency and heights against the model once, here.
        pathloss.pathloss_db(
            self.pathloss_model, 100.0, self.carrier_frequency_hz, self.bs_height_m, self.ut_height_m
        )

    @property
    def effective_shadowing_std_db(self) -> float:
        """Shadowing standard deviation actually used (0 when shadowing is off), dB."""
        if not self.shadowing:
            return 0.0
        if self.shadowing_std_db is not None:
            return self.shadowing_std_db
        return pathloss.shadowing_std_db(self.pathloss_model)

    @property
    def effective_decorrelation_m(self) -> float:
        """Decorrelation distance actually used, m."""
        if self.decorrelation_m is not None:
            return self.decorrelation_m
        return shadowing.decorrelation_distance_m(self.pathloss_model)


class Channel:
    """Large- and small-scale channel state of all devices.

    Args:
        config: Propagation model.
        num_devices: N.
        num_rb: Resource blocks in the band (used when ``per_rb_fading``).
        distance_2d_m: Initial horizontal distances to the BS in m, ``[N]``.
        rng_shadowing: Generator for the shadowing stream.
        rng_fading: Generator for the fading stream.

    Attributes:
        pathloss_db: ``[N]`` path loss at the last update.
        shadowing_db: ``[N]`` shadowing at the last update.
        gain_lin: ``[N, B]`` power gain per block (B = num_rb, or 1 for flat fading).
        wideband_gain_lin: ``[N]`` power gain averaged over blocks.
    """

    def __init__(
        self,
        config: ChannelConfig,
        num_devices: int,
        num_rb: int,
        distance_2d_m: np.ndarray,
        rng_shadowing: np.random.Generator,
        rng_fading: np.random.Generator,
    ) -> None:
        self.config = config
        self._std_db = config.effective_shadowing_std_db
        self._decorrelation_m = config.effective_decorrelation_m
        self.shadowing_db = shadowing.draw_shadowing_db(rng_shadowing, self._std_db, num_devices)
        self._fading = None
        if config.fading != "none":
            k_db = config.rician_k_db if config.fading == "rician" else None
            self._fading = fading.BlockFading(
                num_devices, num_rb if config.per_rb_fading else 1, rng_fading, k_db
            )
        self._fading_key = None
        self._shadowing_key = None
        self._compute_gains(distance_2d_m)

    def _compute_gains(self, distance_2d_m: np.ndarray) -> None:
        c = self.config
        self.pathloss_db = pathloss.pathloss_db(
            c.pathloss_model, distance_2d_m, c.carrier_frequency_hz, c.bs_height_m, c.ut_height_m
        )
        # [N, 1]: 10^(-(PL + S)/10) through exp, cheaper than power
        large = np.exp(_NEG_LN10_OVER_10 * (self.pathloss_db + self.shadowing_db))[:, None]
        if self._fading is None:
            self.gain_lin = large
            self.wideband_gain_lin = large[:, 0]
            return
        self.gain_lin = large * self._fading.power_gain()
        if self.gain_lin.shape[1] == 1:
            self.wideband_gain_lin = self.gain_lin[:, 0]
        else:
            self.wideband_gain_lin = self.gain_lin.mean(axis=1)

    def _fading_coefficients(self, speeds_mps: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        # J0 and the square roots are the costliest part of the fading step; reuse them while
        # the speeds and the step are unchanged (always, on a highway).
        key = self._fading_key
        if key is None or dt_s != key[0] or not np.array_equal(speeds_mps, key[1]):
            rho = fading.jakes_correlation(fading.doppler_hz(speeds_mps, self.config.carrier_frequency_hz), dt_s)
            rho_col = rho[:, None]
            scale = np.sqrt(0.5 * np.maximum(1.0 - rho_col * rho_col, 0.0))
            self._fading_key = (dt_s, np.array(speeds_mps, copy=True), rho_col, scale)
        return self._fading_key[2], self._fading_key[3]

    def _shadowing_coefficients(self, moved_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Same reuse for the Gudmundson correlation: equal distances moved, equal coefficients.
        key = self._shadowing_key
        if key is None or not np.array_equal(moved_m, key[0]):
            rho = shadowing.gudmundson_correlation(moved_m, self._decorrelation_m)
            self._shadowing_key = (np.array(moved_m, copy=True), rho, np.sqrt(1.0 - rho * rho) * self._std_db)
        return self._shadowing_key[1], self._shadowing_key[2]

    def update(
        self,
        distance_2d_m: np.ndarray,
        moved_m: np.ndarray,
        speeds_mps: np.ndarray,
        dt_s: float,
        rng_shadowing: np.random.Generator,
        rng_fading: np.random.Generator,
    ) -> None:
        """Advance the channel of every device by one block of ``dt_s`` seconds.

        Args:
            distance_2d_m: New horizontal distances to the BS in m, ``[N]``.
            moved_m: Distance each device moved since the last update, ``[N]``.
            speeds_mps: Speeds during the block (sets the Doppler), ``[N]``.
            dt_s: Block duration in s.
            rng_shadowing: Generator for the shadowing stream.
            rng_fading: Generator for the fading stream.
        """
        if self._std_db > 0.0:
            rho, innovation_std_db = self._shadowing_coefficients(moved_m)
            self.shadowing_db = shadowing.ar1_step_db(self.shadowing_db, rho, innovation_std_db, rng_shadowing)
        if self._fading is not None:
            # Scatterers move even when the device does not: the Doppler never drops below that
            # of ``min_doppler_speed_mps`` (else a static device would keep one fade forever).
            doppler_speeds = np.maximum(speeds_mps, self.config.min_doppler_speed_mps)
            self._fading.step_with(*self._fading_coefficients(doppler_speeds, dt_s), rng_fading)
        self._compute_gains(distance_2d_m)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays: shadowing and fading state (path loss follows from positions)."""
        state = {"shadowing_db": self.shadowing_db.copy()}
        if self._fading is not None:
            state.update({f"fading_{k}": v for k, v in self._fading.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], distance_2d_m: np.ndarray) -> None:
        """Restore :meth:`state_dict` arrays and recompute the gains at ``distance_2d_m``."""
        self.shadowing_db = np.array(state["shadowing_db"], dtype=float)
        if self._fading is not None:
            self._fading.load_state_dict({k[len("fading_"):]: v for k, v in state.items() if k.startswith("fading_")})
        self._compute_gains(distance_2d_m)
