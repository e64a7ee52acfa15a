"""The per-device channel: path loss x shadowing x small-scale fading, updated for all devices.

Composes :mod:`netsim.pathloss`, :mod:`netsim.shadowing` and :mod:`netsim.fading` into one
vectorised state that the World advances once per coherence interval. The power gain of device
i on block b is

    g[i, b] = 10^(-(PL[i] + S[i]) / 10) * |h[i, b]|^2,

with PL the path loss at its current distance, S its shadowing (dB) and h its fading gain.

Line of sight. With a fixed model (``3gpp-uma-los``, ``3gpp-umi-nlos``, ...) every device is in
the same state. With ``3gpp-uma`` / ``3gpp-umi`` each device has its own LOS state
(:mod:`netsim.los`: drawn from the TR 38.901 LOS probability at its distance, updated as it
moves with the 50 m LOS correlation distance), and three things follow it:

* path loss: the TR 38.901 Table 7.4.1-1 LOS formula, or the NLOS one ``max(PL_LOS, PL'_NLOS)``;
* shadowing: each device keeps a unit-variance Gudmundson AR(1) variable ``u`` and its
  shadowing is ``sigma(state) u`` (UMa 4 / 6 dB, UMi 4 / 7.82 dB), so a state change rescales
  the shadowing without breaking its correlation; ``u`` decorrelates with the distance of the
  device's current state (TR 38.901 Table 7.5-6: UMa 37 / 50 m, UMi 10 / 13 m);
* fading, when ``fading="rician"``: Rician with ``rician_k_db`` (TR 38.901 Table 7.5-6: mean K
  9 dB in UMa and UMi LOS) for LOS devices, Rayleigh (K = 0) for NLOS ones, with one diffuse
  process that goes on across state changes. ``"rayleigh"`` and ``"none"`` apply to every
  device whatever its state.

The LOS variables have their own random stream, used only by these two models, so the traces of
the fixed models do not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim import fading, los, pathloss, shadowing
from netsim.units import db_to_lin

_FADING = ("rayleigh", "rician", "none")
_NEG_LN10_OVER_10 = -np.log(10.0) / 10.0


@dataclass(frozen=True)
class ChannelConfig:
    """Propagation model of the cell.

    Attributes:
        pathloss_model: A model of :data:`netsim.pathloss.ALL_MODELS`: a fixed-state one, or
            ``3gpp-uma`` / ``3gpp-umi`` for a LOS state per device (module docstring).
        carrier_frequency_hz: Carrier frequency in Hz.
        bs_height_m: BS antenna height in m; None = the model's default (UMa 25, UMi 10 m).
        ut_height_m: Device antenna height in m.
        shadowing: Apply log-normal shadowing.
        shadowing_std_db: Standard deviation in dB; None = the model's (TR 38.901).
        decorrelation_m: Shadowing decorrelation distance in m; None = the model's
            (TR 38.901 Table 7.5-6); ``inf`` keeps each device's shadowing constant.
        fading: ``"rayleigh"``, ``"rician"`` or ``"none"``; with a per-device LOS model,
            ``"rician"`` means Rician for LOS devices and Rayleigh for NLOS ones.
        rician_k_db: Rician K factor in dB (9 dB: mean K of UMa LOS, TR 38.901 Table 7.5-6).
        per_rb_fading: Independent fading per resource block (else flat over the band).
        min_doppler_speed_mps: The fading's Doppler is that of at least this speed, for moving
            scatterers around a still device (3 km/h: the pedestrian speed 3GPP uses for
            low-mobility links, e.g. the EPA 5 Hz channel). 0 freezes a still device's fading.
    """

    pathloss_model: str = field(
        default="3gpp-uma-nlos", metadata={"help": "path-loss model, one of netsim.pathloss.ALL_MODELS (3gpp-uma, 3gpp-umi: LOS per device)", "unit": ""}
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
        if self.pathloss_model not in pathloss.ALL_MODELS:
            raise ValueError(f"pathloss_model must be one of {pathloss.ALL_MODELS}, got {self.pathloss_model!r}")
        if not self.carrier_frequency_hz > 0:
            raise ValueError(f"carrier_frequency_hz must be > 0, got {self.carrier_frequency_hz!r}")
        if self.fading not in _FADING:
            raise ValueError(f"fading must be one of {_FADING}, got {self.fading!r}")
        if self.shadowing_std_db is not None and not self.shadowing_std_db >= 0:
            raise ValueError(f"shadowing_std_db must be >= 0, got {self.shadowing_std_db!r}")
        if self.decorrelation_m is not None and not self.decorrelation_m > 0:
            raise ValueError(f"decorrelation_m must be > 0, got {self.decorrelation_m!r}")
        # Physical plausibility: outside these ranges a value is a typo, not a channel.
        if not -30.0 <= self.rician_k_db <= 40.0:
            raise ValueError(f"rician_k_db must be in [-30, 40] dB, got {self.rician_k_db!r}")
        if self.shadowing_std_db is not None and self.shadowing_std_db > 30:
            raise ValueError(f"shadowing_std_db must be in [0, 30] dB, got {self.shadowing_std_db!r}")
        if self.bs_height_m is not None and not 0 < self.bs_height_m <= 1000:
            raise ValueError(f"bs_height_m must be in (0, 1000] m or None, got {self.bs_height_m!r}")
        if not self.carrier_frequency_hz <= 1e12:
            raise ValueError(f"carrier_frequency_hz must be <= 1e12, got {self.carrier_frequency_hz!r}")
        if not self.min_doppler_speed_mps <= 1000:
            raise ValueError(f"min_doppler_speed_mps must be in [0, 1000], got {self.min_doppler_speed_mps!r}")
        # Validate frequency and heights against the model once, here.
        pathloss.pathloss_db(
            self.pathloss_model, 100.0, self.carrier_frequency_hz, self.bs_height_m, self.ut_height_m,
            los=True if self.per_device_los else None,
        )

    @property
    def per_device_los(self) -> bool:
        """True when each device has its own LOS state (``3gpp-uma``, ``3gpp-umi``)."""
        return self.pathloss_model in pathloss.PER_DEVICE_LOS_MODELS

    def shadowing_std_in_state_db(self, in_los: bool) -> float:
        """Shadowing standard deviation of a device in LOS (True) or NLOS (0 when shadowing is
        off), dB; a fixed model has one value whatever ``in_los``."""
        if not self.shadowing:
            return 0.0
        if self.shadowing_std_db is not None:
            return self.shadowing_std_db
        return pathloss.shadowing_std_db(pathloss.fixed_model(self.pathloss_model, in_los))

    def decorrelation_in_state_m(self, in_los: bool) -> float:
        """Shadowing decorrelation distance of a device in LOS (True) or NLOS, m."""
        if self.decorrelation_m is not None:
            return self.decorrelation_m
        return shadowing.decorrelation_distance_m(pathloss.fixed_model(self.pathloss_model, in_los))

    def fading_for_planning(self, in_los: np.ndarray) -> tuple[str, np.ndarray]:
        """The fading each device sees, in the terms of :mod:`netsim.ergodic_rate`.

        Args:
            in_los: ``[N]`` bool LOS state (e.g. :attr:`netsim.snapshot.ChannelState.los`).

        Returns:
            ``(fading, rician_k_lin [N])``: ``"none"``, ``"rayleigh"`` or ``"rician"``; K is
            ``rician_k_db`` (linear) for Rician devices, 0 (Rayleigh) for the NLOS devices of a
            per-device LOS model.
        """
        in_los = np.asarray(in_los, dtype=bool)
        if self.fading != "rician":
            return self.fading, np.zeros(in_los.shape)
        k_lin = float(db_to_lin(self.rician_k_db))
        return "rician", np.where(in_los | (not self.per_device_los), k_lin, 0.0)

    @property
    def effective_shadowing_std_db(self) -> float:
        """Shadowing standard deviation actually used (0 when shadowing is off), dB; the NLOS
        value for a per-device LOS model (see :meth:`shadowing_std_in_state_db`)."""
        return self.shadowing_std_in_state_db(False)

    @property
    def effective_decorrelation_m(self) -> float:
        """Decorrelation distance actually used, m; the NLOS value for a per-device LOS model."""
        return self.decorrelation_in_state_m(False)


class Channel:
    """Large- and small-scale channel state of all devices.

    Args:
        config: Propagation model.
        num_devices: N.
        num_rb: Resource blocks in the band (used when ``per_rb_fading``).
        distance_2d_m: Initial horizontal distances to the BS in m, ``[N]``.
        rng_shadowing: Generator for the shadowing stream.
        rng_fading: Generator for the fading stream.
        rng_los: Generator for the LOS-state stream; required by a per-device LOS model,
            unused otherwise.

    Attributes:
        pathloss_db: ``[N]`` path loss at the last update.
        shadowing_db: ``[N]`` shadowing at the last update.
        los: ``[N]`` bool LOS state (for a fixed model the same for all devices:
            :func:`netsim.pathloss.fixed_los_state`).
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
        rng_los: np.random.Generator | None = None,
    ) -> None:
        self.config = config
        self._per_device_los = config.per_device_los
        self._std_db = config.effective_shadowing_std_db
        self._decorrelation_m = config.effective_decorrelation_m
        if self._per_device_los:
            if rng_los is None:
                raise ValueError(f"pathloss_model {config.pathloss_model!r} needs rng_los")
            self._scenario = config.pathloss_model.removeprefix("3gpp-")
            # [2]: indexed by the state (0 NLOS, 1 LOS)
            self._std_by_state_db = np.array([config.shadowing_std_in_state_db(s) for s in (False, True)])
            self._decorrelation_by_state_m = np.array([config.decorrelation_in_state_m(s) for s in (False, True)])
            self._k_lin = float(db_to_lin(config.rician_k_db))
            self._los_variable = los.draw_los_variable(rng_los, num_devices)
            self.los = self._los_state(distance_2d_m)
            # Unit-variance shadowing; the dB value is sigma(state) times it.
            self._shadowing_unit = shadowing.draw_shadowing_db(rng_shadowing, 1.0, num_devices)
            self.shadowing_db = self._shadowing_unit * self._std_by_state_db[self.los.astype(np.intp)]
        else:
            self.los = np.full(num_devices, pathloss.fixed_los_state(config.pathloss_model))
            self.shadowing_db = shadowing.draw_shadowing_db(rng_shadowing, self._std_db, num_devices)
        self._fading = None
        if config.fading != "none":
            k_db = config.rician_k_db if config.fading == "rician" else None
            self._fading = fading.BlockFading(
                num_devices, num_rb if config.per_rb_fading else 1, rng_fading, k_db
            )
            self._set_fading_k()
        self._fading_key = None
        self._shadowing_key = None
        self._compute_gains(distance_2d_m)

    # ------------------------------------------------------------------ LOS state
    def _los_state(self, distance_2d_m: np.ndarray) -> np.ndarray:
        return los.los_state(self._scenario, self._los_variable, distance_2d_m, self.config.ut_height_m)

    def _set_fading_k(self) -> None:
        # Rician for LOS devices, Rayleigh (K = 0) for NLOS ones: only in the per-device mode.
        if self._per_device_los and self._fading is not None and self.config.fading == "rician":
            self._fading.set_k_factor_lin(np.where(self.los, self._k_lin, 0.0))

    def _update_los(
        self, distance_2d_m: np.ndarray, moved_m: np.ndarray, rng_shadowing: np.random.Generator,
        rng_los: np.random.Generator,
    ) -> None:
        state = self.los.astype(np.intp)
        if np.any(self._std_by_state_db > 0.0):
            # [N]: each device decorrelates at the distance of the state it was in
            rho = shadowing.gudmundson_correlation(moved_m, self._decorrelation_by_state_m[state])
            self._shadowing_unit = shadowing.ar1_step_db(self._shadowing_unit, rho, np.sqrt(1.0 - rho * rho), rng_shadowing)
        self._los_variable = los.update_los_variable(
            self._los_variable, moved_m, los.LOS_CORRELATION_DISTANCE_M[self._scenario], rng_los
        )
        new_los = self._los_state(distance_2d_m)
        if not np.array_equal(new_los, self.los):
            self.los = new_los
            self._set_fading_k()
        self.shadowing_db = self._shadowing_unit * self._std_by_state_db[self.los.astype(np.intp)]

    # ------------------------------------------------------------------ gains
    def _compute_gains(self, distance_2d_m: np.ndarray) -> None:
        c = self.config
        self.pathloss_db = pathloss.pathloss_db(
            c.pathloss_model, distance_2d_m, c.carrier_frequency_hz, c.bs_height_m, c.ut_height_m,
            los=self.los if self._per_device_los else None,
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
        rng_los: np.random.Generator | None = None,
    ) -> None:
        """Advance the channel of every device by one block of ``dt_s`` seconds.

        Args:
            distance_2d_m: New horizontal distances to the BS in m, ``[N]``.
            moved_m: Distance each device moved since the last update, ``[N]``.
            speeds_mps: Speeds during the block (sets the Doppler), ``[N]``.
            dt_s: Block duration in s.
            rng_shadowing: Generator for the shadowing stream.
            rng_fading: Generator for the fading stream.
            rng_los: Generator for the LOS-state stream (per-device LOS models only).
        """
        if self._per_device_los:
            if rng_los is None:
                raise ValueError(f"pathloss_model {self.config.pathloss_model!r} needs rng_los")
            self._update_los(distance_2d_m, moved_m, rng_shadowing, rng_los)
        elif self._std_db > 0.0:
            rho, innovation_std_db = self._shadowing_coefficients(moved_m)
            self.shadowing_db = shadowing.ar1_step_db(self.shadowing_db, rho, innovation_std_db, rng_shadowing)
        if self._fading is not None:
            # Scatterers move even when the device does not: the Doppler never drops below that
            # of ``min_doppler_speed_mps`` (else a static device would keep one fade forever).
            doppler_speeds = np.maximum(speeds_mps, self.config.min_doppler_speed_mps)
            self._fading.step_with(*self._fading_coefficients(doppler_speeds, dt_s), rng_fading)
        self._compute_gains(distance_2d_m)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays: shadowing, LOS and fading state (path loss follows from positions)."""
        state = {"shadowing_db": self.shadowing_db.copy()}
        if self._per_device_los:
            state["los_variable"] = self._los_variable.copy()
            state["shadowing_unit"] = self._shadowing_unit.copy()
        if self._fading is not None:
            state.update({f"fading_{k}": v for k, v in self._fading.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], distance_2d_m: np.ndarray) -> None:
        """Restore :meth:`state_dict` arrays and recompute the gains at ``distance_2d_m``."""
        self.shadowing_db = np.array(state["shadowing_db"], dtype=float)
        if self._fading is not None:
            self._fading.load_state_dict({k[len("fading_"):]: v for k, v in state.items() if k.startswith("fading_")})
        if self._per_device_los:
            self._los_variable = np.array(state["los_variable"], dtype=float)
            self._shadowing_unit = np.array(state["shadowing_unit"], dtype=float)
            self.los = self._los_state(distance_2d_m)
            self._set_fading_k()
        self._compute_gains(distance_2d_m)
