"""Adaptive cut layer: each device's split point chosen per round from its link and CPU.

Source: adaptive split federated learning for vehicles (IEEE Wireless Communications
32(4):90-97, 2025; the ASFL code, arXiv:2406.15804). The article describes choosing each
vehicle's cut from its channel and compute; its released code draws the cut at random during
training. Here the rule is written out: per device and round, the cut c in {c_min..c_max}
minimising the device's round latency subject to its energy budget and deadline,

    T_i(c) = F_dev(c) / (f_i phi_i) + U(c) / r_up_i + F_srv(c) / s_i + Dn(c) / r_dn_i
    E_i(c) = kappa_i (F_dev(c) / phi_i) f_i^2 + p_i U(c) / r_up_i       <= e_i,  T_i(c) <= D_i

(CMOS compute energy and airtime x power, :mod:`netsim.energy`), with F_dev / F_srv the
device and server FLOPs of the round (forward + backward), U / Dn the uplink / downlink
bits (activations, their gradients, and the device-side adapters that travel for FedAvg),
f the CPU frequency, phi FLOPs per cycle, kappa the switched capacitance, s the server
throughput share (FLOP/s), r the link rates (the caller computes them from the device's
bandwidth share and power, e.g. :func:`netsim.allocation.radio.rate_bps`), p the transmit
power. Receive energy is not counted. Everything is vectorised over devices x cuts.

What a ViT implies: every block maps (N + 1) x D tokens to (N + 1) x D tokens, so the
activations and their gradients are the same size at every cut; only the device-side LoRA
adapters grow with c, and device FLOPs grow (server FLOPs shrink) by one block's worth per
cut. T_i(c) is then linear in c, and its slope is

    F_blk (1 / (f_i phi_i) - 1 / s_i) + a (1 / r_up_i + 1 / r_dn_i)

(a: adapter bits per block): the best cut is c_min whenever the device runs a block slower
than its server share does, whatever the link, and a slower link only adds to the slope,
moving the cut earlier, never later. "Slow link -> cut late" is a CNN intuition (feature
maps shrink with depth) that the transformer's constant width removes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.energy import compute_energy_j, compute_time_s
from netsim.reasons import Reason


@dataclass(frozen=True, eq=False)
class CutChoice:
    """The chosen cut of every device and what it costs.

    Attributes:
        cut: ``[N]`` int, the chosen cut; for a device feasible at no cut, its fastest cut.
        latency_s: ``[N]`` T_i at the chosen cut, s.
        energy_j: ``[N]`` E_i at the chosen cut, J.
        status: ``[N]`` ``"ok"``, ``"deadline"`` (no cut meets the deadline) or ``"energy"``
            (some cut meets the deadline, none of those within the energy budget).
        latency_table_s: ``[N, C]`` T_i(c) for every cut.
        energy_table_j: ``[N, C]`` E_i(c) for every cut.
        feasible: ``[N, C]`` bool, T_i(c) <= D_i and E_i(c) <= e_i.
    """

    cut: np.ndarray
    latency_s: np.ndarray
    energy_j: np.ndarray
    status: tuple[str, ...]
    latency_table_s: np.ndarray
    energy_table_j: np.ndarray
    feasible: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """``[N]`` bool, devices with a feasible cut."""
        return np.array([s == Reason.ALLOCATED for s in self.status], dtype=bool)


def _per_device(name: str, value, n: int | None, positive: bool = True) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if n is not None:
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape != (n,)):
            raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
        arr = np.broadcast_to(arr, (n,))
    bad = np.isnan(arr) | ((arr <= 0) if positive else (arr < 0))
    if np.any(bad):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} and not NaN, "
                         f"got {np.ravel(arr[bad])[:5]!r}")
    return arr


def _per_cut(name: str, value, n: int, c: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.shape not in ((c,), (n, c)):
        raise ValueError(f"{name} must have shape ({c},) or ({n}, {c}), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {arr!r}")
    return np.broadcast_to(arr, (n, c))


def choose_cut_layer(
    cuts,
    device_flops,
    server_flops,
    uplink_bits,
    downlink_bits,
    cpu_hz,
    flops_per_cycle,
    kappa,
    server_flops_per_s,
    uplink_rate_bps,
    downlink_rate_bps,
    tx_power_w,
    energy_budget_j,
    deadline_s=np.inf,
) -> CutChoice:
    """Per device, the feasible cut with the least round latency.

    Args:
        cuts: ``[C]`` candidate cuts (blocks on the device), strictly increasing integers.
        device_flops: ``[C]`` or ``[N, C]`` device FLOPs of the round at each cut (fwd + bwd).
        server_flops: ``[C]`` or ``[N, C]`` server FLOPs of the round for this device.
        uplink_bits: ``[C]`` or ``[N, C]`` bits the device sends in the round.
        downlink_bits: ``[C]`` or ``[N, C]`` bits the device receives in the round.
        cpu_hz: ``[N]`` CPU frequency f_i, Hz (its length sets N).
        flops_per_cycle: scalar or ``[N]`` phi_i.
        kappa: scalar or ``[N]`` effective switched capacitance, J / (cycle Hz^2), >= 0.
        server_flops_per_s: scalar or ``[N]`` the server throughput share s_i, FLOP/s.
        uplink_rate_bps: scalar or ``[N]`` uplink rate, bit/s.
        downlink_rate_bps: scalar or ``[N]`` downlink rate, bit/s.
        tx_power_w: scalar or ``[N]`` transmit power, W, >= 0.
        energy_budget_j: scalar or ``[N]`` energy budget of the round, J (``inf``: none).
        deadline_s: scalar or ``[N]`` deadline, s (``inf``: none).

    Returns:
        :class:`CutChoice`. Among feasible cuts the least latency wins; exact ties go to the
        earliest cut (less device memory and compute).

    Raises:
        ValueError: naming the argument, on bad shapes or values.
    """
    cuts = np.asarray(cuts)
    if (cuts.ndim != 1 or cuts.size == 0 or not np.issubdtype(cuts.dtype, np.integer)
            or np.any(np.diff(cuts) <= 0) or cuts[0] < 0):
        raise ValueError(f"cuts must be strictly increasing integers >= 0, got {cuts!r}")
    cpu = np.asarray(cpu_hz, dtype=float)
    if cpu.ndim != 1 or cpu.size == 0:
        raise ValueError(f"cpu_hz must be a non-empty 1-D array, got shape {cpu.shape}")
    n, c = cpu.size, cuts.size
    cpu = _per_device("cpu_hz", cpu, n)
    phi = _per_device("flops_per_cycle", flops_per_cycle, n)
    kap = _per_device("kappa", kappa, n, positive=False)
    srv = _per_device("server_flops_per_s", server_flops_per_s, n)
    r_up = _per_device("uplink_rate_bps", uplink_rate_bps, n)
    r_dn = _per_device("downlink_rate_bps", downlink_rate_bps, n)
    p_tx = _per_device("tx_power_w", tx_power_w, n, positive=False)
    budget = _per_device("energy_budget_j", energy_budget_j, n)
    deadline = _per_device("deadline_s", deadline_s, n)
    # [N, C]
    dev_f = _per_cut("device_flops", device_flops, n, c)
    srv_f = _per_cut("server_flops", server_flops, n, c)
    up = _per_cut("uplink_bits", uplink_bits, n, c)
    dn = _per_cut("downlink_bits", downlink_bits, n, c)
    col = lambda a: a[:, None]  # noqa: E731
    # [N, C]
    uplink_s = up / col(r_up)
    latency = (compute_time_s(dev_f, col(cpu), col(phi)) + uplink_s + srv_f / col(srv)
               + dn / col(r_dn))
    energy = compute_energy_j(dev_f, col(cpu), col(phi), col(kap)) + col(p_tx) * uplink_s
    in_time = latency <= col(deadline)
    feasible = in_time & (energy <= col(budget))
    # Infeasible cuts are pushed out of the argmin; argmin keeps the first of exact ties.
    best = np.argmin(np.where(feasible, latency, np.inf), axis=1)
    fastest = np.argmin(latency, axis=1)
    any_ok = feasible.any(axis=1)
    choice = np.where(any_ok, best, fastest)
    rows = np.arange(n)
    status = tuple(
        Reason.ALLOCATED if any_ok[i] else (Reason.ENERGY if in_time[i].any() else Reason.DEADLINE)
        for i in range(n)
    )
    return CutChoice(
        cut=cuts[choice].astype(np.int64), latency_s=latency[rows, choice],
        energy_j=energy[rows, choice], status=status, latency_table_s=latency,
        energy_table_j=energy, feasible=feasible,
    )
