"""The allocation problem and its solution: plain, validated containers.

See the package docstring (:mod:`netsim.allocation`) for the optimisation problem these
fields define.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.reasons import Reason

from . import radio



def _frozen_array(name: str, value, n: int | None, dtype=float) -> np.ndarray:
    arr = np.array(value, dtype=dtype)
    if n is not None:
        if arr.ndim == 0:
            arr = np.full(n, arr.item(), dtype=dtype)
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    arr.flags.writeable = False
    return arr


def _check_all(name: str, arr: np.ndarray, ok: np.ndarray, what: str) -> None:
    if not np.all(ok):
        bad = arr[~ok] if arr.ndim else arr
        raise ValueError(f"{name} must be {what}, got {np.ravel(bad)[:5]!r}")


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """One round's allocation problem for N devices (all SI units).

    Args:
        gain_lin: ``[N]`` wideband channel power gain (path loss x shadowing x fading), > 0.
        noise_psd_w_per_hz: noise power spectral density, W/Hz, > 0.
        total_bandwidth_hz: uplink band W shared by the devices, Hz, > 0.
        max_power_w: ``[N]`` (or scalar) transmit power limit, W, > 0.
        energy_budget_j: ``[N]`` (or scalar) device energy budget for the round, J, > 0.
        deadline_s: scalar or ``[N]`` latest finishing time, s, > 0 (include each device's
            time left in the cell here).
        bits_per_token: ``[N]`` (or scalar) uplink bits per token for the round, > 0.
        retention: ``[N, K_max + 1]`` semantic retention f_i(K) for K = 0..K_max,
            non-decreasing in K with f_i(0) = 0.
        compute_time_s: ``[N]`` (or scalar) device compute time for the round, s, >= 0.
        compute_energy_j: ``[N]`` (or scalar) device compute energy for the round, J, >= 0.
        extra_tokens: token-equivalents always sent besides the K kept ones (CLS + fused
            token, plus labels or quantiser side information expressed in tokens), real >= 0.
        min_tokens: smallest token budget K allowed, in [0, K_max].
        compute_time_per_token_s: ``[N]`` (or scalar) extra compute time per kept token, s.
        compute_energy_per_token_j: ``[N]`` (or scalar) extra compute energy per kept token, J.

    Raises:
        ValueError: naming the field and the value, for any invalid input.
    """

    gain_lin: np.ndarray
    noise_psd_w_per_hz: float
    total_bandwidth_hz: float
    max_power_w: np.ndarray
    energy_budget_j: np.ndarray
    deadline_s: np.ndarray
    bits_per_token: np.ndarray
    retention: np.ndarray
    compute_time_s: np.ndarray = field(default=0.0)
    compute_energy_j: np.ndarray = field(default=0.0)
    extra_tokens: float = 2
    min_tokens: int = 1
    compute_time_per_token_s: np.ndarray = field(default=0.0)
    compute_energy_per_token_j: np.ndarray = field(default=0.0)

    def __post_init__(self) -> None:
        gain = np.array(self.gain_lin, dtype=float)
        if gain.ndim != 1 or gain.size == 0:
            raise ValueError(f"gain_lin must be a non-empty 1-D array, got shape {gain.shape}")
        n = gain.size
        set_ = lambda name, v: object.__setattr__(self, name, v)  # noqa: E731
        gain = _frozen_array("gain_lin", gain, n)
        _check_all("gain_lin", gain, gain > 0, "> 0")
        set_("gain_lin", gain)
        for name in ("noise_psd_w_per_hz", "total_bandwidth_hz"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
            set_(name, v)
        for name, strict in (
            ("max_power_w", True),
            ("energy_budget_j", True),
            ("deadline_s", True),
            ("bits_per_token", True),
            ("compute_time_s", False),
            ("compute_energy_j", False),
            ("compute_time_per_token_s", False),
            ("compute_energy_per_token_j", False),
        ):
            arr = _frozen_array(name, getattr(self, name), n)
            if strict:
                _check_all(name, arr, arr > 0, "> 0")
            else:
                _check_all(name, arr, arr >= 0, ">= 0")
            set_(name, arr)
        v = self.min_tokens
        if isinstance(v, bool) or int(v) != v or v < 0:
            raise ValueError(f"min_tokens must be an integer >= 0, got {v!r}")
        set_("min_tokens", int(v))
        v = self.extra_tokens
        if isinstance(v, bool) or not np.isfinite(v) or v < 0:
            raise ValueError(f"extra_tokens must be a finite number >= 0, got {v!r}")
        set_("extra_tokens", int(v) if float(v).is_integer() else float(v))
        ret = np.array(self.retention, dtype=float)
        if ret.ndim != 2 or ret.shape[0] != n or ret.shape[1] < 2:
            raise ValueError(
                f"retention must have shape ({n}, K_max + 1) with K_max >= 1, got {ret.shape}"
            )
        ret = _frozen_array("retention", ret, None)
        if np.any(ret[:, 0] != 0.0):
            raise ValueError(f"retention[:, 0] must be 0, got {ret[:, 0][ret[:, 0] != 0][:5]!r}")
        steps = np.diff(ret, axis=1)
        if np.any(steps < 0):
            i, k = np.argwhere(steps < 0)[0]
            raise ValueError(
                f"retention must be non-decreasing in K, got retention[{i}, {k + 1}] = "
                f"{ret[i, k + 1]!r} < retention[{i}, {k}] = {ret[i, k]!r}"
            )
        set_("retention", ret)
        k_max = ret.shape[1] - 1
        if self.min_tokens > k_max:
            raise ValueError(f"min_tokens must be <= K_max = {k_max}, got {self.min_tokens!r}")
        if self.min_tokens + self.extra_tokens < 1:
            raise ValueError(
                "min_tokens + extra_tokens must be >= 1 (a payload is always sent), got "
                f"min_tokens={self.min_tokens!r}, extra_tokens={self.extra_tokens!r}"
            )

    @property
    def num_devices(self) -> int:
        """N, the number of devices."""
        return self.gain_lin.size

    @property
    def max_tokens(self) -> int:
        """K_max, the largest token budget (number of patch tokens)."""
        return self.retention.shape[1] - 1

    def payload_bits(self, tokens: np.ndarray) -> np.ndarray:
        """Uplink payload S_i = bits_per_token_i (K_i + extra_tokens), bits; shape of tokens."""
        return self.bits_per_token * (np.asarray(tokens) + self.extra_tokens)

    def evaluate(
        self, tokens: np.ndarray, bandwidth_hz: np.ndarray, power_w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Latency and energy of every device for a given decision (the forward model).

        Args:
            tokens: ``[N]`` kept tokens K_i.
            bandwidth_hz: ``[N]`` bandwidth b_i, Hz (> 0).
            power_w: ``[N]`` transmit power p_i, W (> 0).

        Returns:
            ``(latency_s [N], energy_j [N])`` with
            T_i = compute_time_i(K_i) + S_i / R_i and E_i = compute_energy_i(K_i) + p_i S_i / R_i,
            R_i = b_i log2(1 + p_i g_i / (N0 b_i)) (Shannon capacity of an AWGN channel).
        """
        tokens = np.asarray(tokens)
        rate_bps = radio.rate_bps(bandwidth_hz, power_w, self.gain_lin, self.noise_psd_w_per_hz)
        tx_time_s = self.payload_bits(tokens) / rate_bps
        latency_s = self.compute_time_s + self.compute_time_per_token_s * tokens + tx_time_s
        energy_j = (
            self.compute_energy_j + self.compute_energy_per_token_j * tokens + power_w * tx_time_s
        )
        return latency_s, energy_j


@dataclass(frozen=True, eq=False)
class Allocation:
    """The decision for one round, with its consequences and solver diagnostics.

    Devices whose ``status`` is not ``"ok"`` are excluded: their tokens, bandwidth, power,
    latency, energy and retention are 0. Every other device has bandwidth > 0 and power > 0.

    Attributes:
        rule: name of the allocation rule that produced it (``max-ste``, ``fixed-tokens``, ...).
        tokens: ``[N]`` int, kept tokens K_i.
        bandwidth_hz: ``[N]`` bandwidth b_i, Hz.
        power_w: ``[N]`` transmit power p_i, W.
        rate_bps: ``[N]`` uplink rate R_i, bit/s.
        latency_s: ``[N]`` T_i, s.
        energy_j: ``[N]`` E_i, J.
        retention: ``[N]`` f_i(K_i).
        status: ``[N]`` tuple of str, ``"ok"`` or the reason the device is excluded
            (``"deadline"``, ``"energy"``, ``"capacity"``, ``"left-cell"``).
        ste: Semantic Transmission Efficiency sum_ok f_i(K_i) / max_ok T_i, 1/s (0 if none ok).
        round_latency_s: max_ok T_i, s (0 if none ok).
        iterations: solver iterations (a count of the rule's own, see its docstring).
        solve_time_s: wall-clock time of the solve, s (diagnostic only; never feeds the model).
    """

    rule: str
    tokens: np.ndarray
    bandwidth_hz: np.ndarray
    power_w: np.ndarray
    rate_bps: np.ndarray
    latency_s: np.ndarray
    energy_j: np.ndarray
    retention: np.ndarray
    status: tuple[str, ...]
    ste: float
    round_latency_s: float
    iterations: int
    solve_time_s: float

    @property
    def ok(self) -> np.ndarray:
        """``[N]`` bool, devices that received an allocation."""
        return np.array([s == Reason.ALLOCATED for s in self.status], dtype=bool)

    @property
    def num_ok(self) -> int:
        """Number of devices that received an allocation."""
        return int(self.ok.sum())
