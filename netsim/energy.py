"""Devices and the edge server: compute time, compute energy, transmit energy, batteries.

The CMOS dynamic-power model of mobile edge computing (e.g. Mao et al., IEEE COMST 19(4),
2017): a CPU at frequency ``f`` running ``C`` cycles takes ``C / f`` seconds and spends
``kappa C f^2`` joules, i.e. draws ``kappa f^3`` watts, with ``kappa`` the effective switched
capacitance. A workload of ``F`` FLOPs on a core doing ``phi`` FLOPs per cycle needs
``C = F / phi`` cycles. Transmit energy is power times airtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from netsim.reasons import Reason
from netsim.units import dbm_to_w


def _check_range(name: str, value: tuple[float, float], low: float = 0.0, strict: bool = True) -> None:
    ok = len(value) == 2 and value[0] <= value[1] and (value[0] > low if strict else value[0] >= low)
    if not ok:
        op = "<" if strict else "<="
        raise ValueError(f"{name} must be a (low, high) pair with {low} {op} low <= high, got {value!r}")


@dataclass(frozen=True)
class DeviceConfig:
    """Device hardware, drawn per device uniformly from each range (equal ends = homogeneous).

    Attributes:
        cpu_hz_range: CPU frequency range in Hz.
        flops_per_cycle: FLOPs per CPU cycle (SIMD width x cores used).
        kappa: Effective switched capacitance (J / (cycle Hz^2)).
        max_tx_power_dbm: Maximum transmit power in dBm (23 dBm, power class 3).
        energy_budget_j: Energy each device may spend in one round, J.
        battery_j_range: Initial battery energy range in J.
        energy_budget_j_range: If set, each device's per-round budget is drawn uniformly from
            this range (J) instead of ``energy_budget_j`` (drawn after the other draws, so
            configs without it draw exactly as before).
    """

    cpu_hz_range: tuple[float, float] = field(
        default=(1.0e9, 2.0e9), metadata={"help": "CPU frequency range, drawn uniformly per device", "unit": "Hz"}
    )
    flops_per_cycle: float = field(
        default=8.0, metadata={"help": "FLOPs per CPU cycle (SIMD width x cores used)", "unit": ""}
    )
    kappa: float = field(
        default=1e-28, metadata={"help": "effective switched capacitance of the CPU", "unit": "J/(cycle Hz^2)"}
    )
    max_tx_power_dbm: float = field(
        default=23.0, metadata={"help": "maximum transmit power (23 dBm: power class 3)", "unit": "dBm"}
    )
    energy_budget_j: float = field(
        default=20.0, metadata={"help": "energy each device may spend in one round", "unit": "J"}
    )
    battery_j_range: tuple[float, float] = field(
        default=(2.0e4, 5.0e4), metadata={"help": "initial battery energy range, drawn uniformly per device", "unit": "J"}
    )
    energy_budget_j_range: tuple[float, float] | None = field(
        default=None, metadata={"help": "per-round budget range, drawn uniformly per device (None: energy_budget_j for all)", "unit": "J"}
    )

    def __post_init__(self) -> None:
        _check_range("cpu_hz_range", self.cpu_hz_range)
        _check_range("battery_j_range", self.battery_j_range, strict=False)
        if self.energy_budget_j_range is not None:
            _check_range("energy_budget_j_range", self.energy_budget_j_range, strict=False)
        if not self.flops_per_cycle > 0:
            raise ValueError(f"flops_per_cycle must be > 0, got {self.flops_per_cycle!r}")
        if not self.kappa >= 0:
            raise ValueError(f"kappa must be >= 0, got {self.kappa!r}")
        if not self.energy_budget_j >= 0:
            raise ValueError(f"energy_budget_j must be >= 0, got {self.energy_budget_j!r}")
        if not -50.0 <= self.max_tx_power_dbm <= 40.0:
            raise ValueError(f"max_tx_power_dbm must be in [-50, 40], got {self.max_tx_power_dbm!r}")
        # Physical plausibility: outside these ranges a value is a typo, not a device. A zero
        # per-round energy budget would let no device do anything.
        if not 0 < self.energy_budget_j <= 1e9:
            raise ValueError(f"energy_budget_j must be in (0, 1e9] J, got {self.energy_budget_j!r}")
        if not (self.flops_per_cycle <= 1e6 and self.kappa <= 1e-20):
            raise ValueError(f"flops_per_cycle must be <= 1e6 and kappa <= 1e-20, "
                             f"got {self.flops_per_cycle!r}, {self.kappa!r}")
        if self.battery_j_range[0] <= 0 or (self.energy_budget_j_range is not None and not
                                            0 < self.energy_budget_j_range[0] <= self.energy_budget_j_range[1] <= 1e9):
            raise ValueError(f"battery_j_range must be > 0 and energy_budget_j_range in (0, 1e9] J, "
                             f"got {self.battery_j_range!r}, {self.energy_budget_j_range!r}")
        if not (self.cpu_hz_range[1] <= 1e11 and self.battery_j_range[1] <= 1e12):
            raise ValueError(f"cpu_hz_range must be <= 1e11 Hz and battery_j_range <= 1e12 J, "
                             f"got {self.cpu_hz_range!r}, {self.battery_j_range!r}")


@dataclass(frozen=True)
class ServerConfig:
    """The edge server.

    Attributes:
        flops_per_s: Compute speed of one slot in FLOP/s.
        parallel_slots: Jobs served at once (capacity of the simpy Resource); each job runs at
            ``flops_per_s``, further jobs queue first-come first-served.
    """

    flops_per_s: float = field(
        default=20e12, metadata={"help": "compute speed of one server slot", "unit": "FLOP/s"}
    )
    parallel_slots: int = field(
        default=1, metadata={"help": "jobs the server runs at once; further jobs queue first-come first-served", "unit": ""}
    )

    def __post_init__(self) -> None:
        if not self.flops_per_s > 0:
            raise ValueError(f"flops_per_s must be > 0, got {self.flops_per_s!r}")
        if not (isinstance(self.parallel_slots, int) and self.parallel_slots >= 1):
            raise ValueError(f"parallel_slots must be an int >= 1, got {self.parallel_slots!r}")
        if not (self.flops_per_s <= 1e20 and self.parallel_slots <= 100_000):
            raise ValueError(f"flops_per_s must be <= 1e20 and parallel_slots <= 100000, "
                             f"got {self.flops_per_s!r}, {self.parallel_slots!r}")


@dataclass
class DeviceArrays:
    """Per-device hardware and battery, all shape ``[N]``."""

    cpu_hz: np.ndarray
    flops_per_cycle: np.ndarray
    kappa: np.ndarray
    max_power_w: np.ndarray
    energy_budget_j: np.ndarray
    battery_j: np.ndarray


def draw_devices(config: DeviceConfig, num_devices: int, rng: np.random.Generator) -> DeviceArrays:
    """Draw the hardware of ``num_devices`` devices.

    Args:
        config: Ranges and constants.
        num_devices: N.
        rng: Random generator (device-heterogeneity stream).

    Returns:
        The per-device arrays, each shape ``[N]``.
    """
    n = num_devices
    arrays = DeviceArrays(
        cpu_hz=rng.uniform(*config.cpu_hz_range, size=n),
        flops_per_cycle=np.full(n, float(config.flops_per_cycle)),
        kappa=np.full(n, float(config.kappa)),
        max_power_w=np.full(n, float(dbm_to_w(config.max_tx_power_dbm))),
        energy_budget_j=np.full(n, float(config.energy_budget_j)),
        battery_j=rng.uniform(*config.battery_j_range, size=n),
    )
    if config.energy_budget_j_range is not None:
        # drawn last: configs without a range keep their draws
        arrays.energy_budget_j = rng.uniform(*config.energy_budget_j_range, size=n)
    return arrays


def compute_speed_flops_per_s(cpu_hz: ArrayLike, flops_per_cycle: ArrayLike) -> np.ndarray:
    """Compute speed ``f phi`` (FLOP/s).

    Args:
        cpu_hz: CPU frequency in Hz, broadcastable.
        flops_per_cycle: FLOPs per cycle, broadcastable.

    Returns:
        Speed in FLOP/s, broadcast shape.
    """
    return np.asarray(cpu_hz, dtype=float) * flops_per_cycle


def compute_time_s(flops: ArrayLike, cpu_hz: ArrayLike, flops_per_cycle: ArrayLike) -> np.ndarray:
    """Compute time ``F / (f phi)`` (s).

    Args:
        flops: Workload in FLOPs, broadcastable.
        cpu_hz: CPU frequency in Hz, broadcastable.
        flops_per_cycle: FLOPs per cycle, broadcastable.

    Returns:
        Time in s, broadcast shape.
    """
    return np.asarray(flops, dtype=float) / compute_speed_flops_per_s(cpu_hz, flops_per_cycle)


def compute_energy_j(flops: ArrayLike, cpu_hz: ArrayLike, flops_per_cycle: ArrayLike, kappa: ArrayLike) -> np.ndarray:
    """Compute energy ``kappa C f^2`` with ``C = F / phi`` cycles (J).

    Equal to :func:`compute_power_w` times :func:`compute_time_s` (up to rounding). The World
    accounts a compute phase as power x the time it actually ran, because a phase may be cut
    short; this form is the energy of a whole workload, for planning.

    Args:
        flops: Workload in FLOPs, broadcastable.
        cpu_hz: CPU frequency in Hz, broadcastable.
        flops_per_cycle: FLOPs per cycle, broadcastable.
        kappa: Effective switched capacitance, broadcastable.

    Returns:
        Energy in J, broadcast shape.
    """
    f = np.asarray(cpu_hz, dtype=float)
    cycles = np.asarray(flops, dtype=float) / flops_per_cycle
    return kappa * cycles * f * f


def compute_power_w(cpu_hz: ArrayLike, kappa: ArrayLike) -> np.ndarray:
    """Power drawn while computing, ``kappa f^3`` (W).

    Args:
        cpu_hz: CPU frequency in Hz: a float, a numpy scalar or an array (broadcastable).
        kappa: Effective switched capacitance, broadcastable.

    Returns:
        Power in W, broadcast shape.
    """
    # ``f ** 3`` on the value as given: numpy rounds a scalar's and an array's cube
    # differently in the last bit, and the World's seeded traces use the scalar's.
    return kappa * cpu_hz**3


def drawn_energy_j(power_w: ArrayLike, duration_s: ArrayLike) -> np.ndarray:
    """Energy drawn at a constant power, power times duration (J): transmitting, computing.

    Args:
        power_w: Power in W, broadcastable.
        duration_s: Time in s, broadcastable.

    Returns:
        Energy in J, broadcast shape.
    """
    return np.asarray(power_w, dtype=float) * np.asarray(duration_s, dtype=float)


def time_to_spend_s(energy_j: float, power_w: float) -> float:
    """How long ``energy_j`` lasts at ``power_w``, ``E / p`` (s; inf at zero power)."""
    return energy_j / power_w if power_w > 0.0 else math.inf


def energy_left_j(spent_j: float, budget_j: float, battery_j: float) -> tuple[float, Reason]:
    """Energy a device may still spend in its round, and what would stop it there.

    Args:
        spent_j: Energy spent so far in the round, J.
        budget_j: The round's energy budget, J.
        battery_j: Battery energy at the start of the round, J.

    Returns:
        ``(left_j, reason)``: the smaller of budget and battery left (>= 0), with
        ``Reason.BATTERY`` if the battery binds, else ``Reason.ENERGY``.
    """
    budget_left = budget_j - spent_j
    battery_left = battery_j - spent_j
    if battery_left < budget_left:
        return max(battery_left, 0.0), Reason.BATTERY
    return max(budget_left, 0.0), Reason.ENERGY
