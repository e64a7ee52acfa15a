"""Shared machinery of the policies: screening, exact radio for fixed tokens, batch radio.

A token vector fixes every payload; what is left is the radio: bandwidth and power that
minimise the round latency max_i T_i. Because STE = sum_i f_i(K_i) / max_i T_i, a device
finishing before the slowest one buys nothing, so at the optimum every device finishes at a
common latency tau, or at its own deadline if that is earlier (its time is capped), and the
band is used up:

    sum_i B_i(min(tau, D_i)) = W,

B_i(T) being the least bandwidth that lets device i finish by T (radio.bandwidth_for_time_hz,
with the power P = min(p_max, e / t) of step (a)). B_i is decreasing in T, so tau is a
one-dimensional root (all devices vectorised) — step (b) of the alternating algorithm:
``exact_radio`` (safeguarded Newton, one token vector) and ``batch_round_latency_s``
(Illinois regula falsi, many token vectors at once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from netsim.reasons import Reason

from .problem import Allocation, AllocationProblem
from .radio import bandwidth_for_time_hz, min_tx_time_alone_s, rate_bps, solve_snr


@dataclass(frozen=True, eq=False)
class Prepared:
    """Per-device, per-token-budget arrays of a problem restricted to some devices.

    Shapes: n candidate devices, Kr = K_max - min_tokens + 1 token budgets ``ks``.
    """

    problem: AllocationProblem
    idx: np.ndarray  # [n] device indices in the problem
    ks: np.ndarray  # [Kr] token budgets
    gain: np.ndarray  # [n, 1]
    max_power_w: np.ndarray  # [n, 1]
    deadline_s: np.ndarray  # [n, 1]
    payload_bits: np.ndarray  # [n, Kr]
    compute_time_s: np.ndarray  # [n, Kr]
    tx_energy_j: np.ndarray  # [n, Kr] energy budget left after compute
    retention: np.ndarray  # [n, Kr]
    alone_latency_s: np.ndarray  # [n, Kr] best latency with the whole band (inf: never)
    alone_reason: np.ndarray  # [n, Kr] str, "ok" or why the budget fails even alone

    @property
    def _d_retention(self) -> np.ndarray:
        # [n, Kr - 1] retention gained by each extra token.
        return np.diff(self.retention, axis=1)

    @property
    def _takeable_steps(self) -> np.ndarray:
        return self._d_retention > 0

    @property
    def n(self) -> int:
        return self.idx.size

    def subset(self, keep: np.ndarray) -> "Prepared":
        """The same arrays restricted to the devices where ``keep`` ([n] bool) is True."""
        fields = {
            name: getattr(self, name)[keep]
            for name in ("idx", "gain", "max_power_w", "deadline_s", "payload_bits",
                         "compute_time_s", "tx_energy_j", "retention", "alone_latency_s",
                         "alone_reason")
        }
        return replace(self, **fields)

    def rows(self, kidx: np.ndarray, name: str) -> np.ndarray:
        """Gather ``[..., n]`` values of a ``[n, Kr]`` field at token indices ``kidx[..., n]``."""
        return getattr(self, name)[np.arange(self.n), kidx]


def prepare(problem: AllocationProblem, idx: np.ndarray) -> Prepared:
    """Precompute the per-budget arrays for the devices ``idx`` (see :class:`Prepared`)."""
    p = problem
    idx = np.asarray(idx, dtype=np.intp)
    # [Kr]
    ks = np.arange(p.min_tokens, p.max_tokens + 1)
    col = lambda a: np.asarray(a)[idx][:, None]  # noqa: E731
    # [n, Kr]
    payload = col(p.bits_per_token) * (ks + p.extra_tokens)
    comp_t = col(p.compute_time_s) + col(p.compute_time_per_token_s) * ks
    comp_e = col(p.compute_energy_j) + col(p.compute_energy_per_token_j) * ks
    tx_e = col(p.energy_budget_j) - comp_e
    t_alone, energy_limited = min_tx_time_alone_s(
        payload, tx_e, col(p.max_power_w), col(p.gain_lin), p.noise_psd_w_per_hz,
        p.total_bandwidth_hz,
    )
    alone = comp_t + t_alone
    deadline = col(p.deadline_s)
    reason = np.full(alone.shape, Reason.ALLOCATED, dtype=object)
    late = ~(alone <= deadline)
    # Late because of the energy budget if max power alone would have made it in time.
    t_power_ok = comp_t + payload / rate_bps(
        p.total_bandwidth_hz, col(p.max_power_w), col(p.gain_lin), p.noise_psd_w_per_hz
    ) <= deadline
    reason[late] = Reason.DEADLINE
    reason[late & (energy_limited | ~np.isfinite(t_alone)) & t_power_ok] = Reason.ENERGY
    reason[(tx_e <= 0) & (comp_t < deadline)] = Reason.ENERGY
    return Prepared(
        problem=p, idx=idx, ks=ks, gain=col(p.gain_lin), max_power_w=col(p.max_power_w),
        deadline_s=deadline, payload_bits=payload, compute_time_s=comp_t, tx_energy_j=tx_e,
        retention=p.retention[idx][:, ks], alone_latency_s=np.where(late, np.inf, alone),
        alone_reason=reason,
    )


def vector_bandwidth_hz(
    prep: Prepared, kidx: np.ndarray, tau_s: np.ndarray, newton_steps: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """B_i(min(tau, D_i)) and the power used, for token indices ``kidx[..., n]``.

    ``tau_s`` broadcasts against ``kidx`` without its last axis (``[...]``).
    """
    # [..., n]
    d = prep.deadline_s[:, 0]
    t = np.minimum(np.asarray(tau_s)[..., None], d) - prep.rows(kidx, "compute_time_s")
    return bandwidth_for_time_hz(
        prep.rows(kidx, "payload_bits"), t, prep.rows(kidx, "tx_energy_j"),
        prep.max_power_w[:, 0], prep.gain[:, 0], prep.problem.noise_psd_w_per_hz, newton_steps,
    )


def batch_round_latency_s(
    prep: Prepared, kidx: np.ndarray, iterations: int = 30, newton_steps: int = 1,
    lo_s: np.ndarray | None = None, hi_s: np.ndarray | None = None, rtol: float = 1e-9,
) -> np.ndarray:
    """Min-max latency tau(K) of many token vectors at once.

    Root of h(x) = ln(sum_i B_i(min(e^x, D_i)) / W) in x = ln tau, by the Illinois variant of
    regula falsi (Dowell & Jarratt, BIT 1971), vectorised over the vectors: h is close to
    linear in ln tau (bandwidth needs scale like 1 / time), so a few steps suffice, and the
    bracket always holds the root.

    Args:
        prep: prepared arrays.
        kidx: ``[M, n]`` token indices into ``prep.ks``.
        iterations: maximum number of steps.
        newton_steps: accuracy of the bandwidth inverse (1: ~1e-6, 3: exact).
        lo_s, hi_s: optional ``[M]`` brackets known to hold tau(K).
        rtol: stop when every bracket is narrower than this, relative.

    Returns:
        ``[M]`` tau, s: the upper end of the final bracket (a latency that fits the band),
        inf where the vector cannot meet every deadline with the band.
    """
    w = prep.problem.total_bandwidth_hz
    # [M, n]
    alone = prep.alone_latency_s[np.arange(prep.n), kidx]
    lo = alone.max(axis=1) if lo_s is None else np.asarray(lo_s, dtype=float)
    hi = np.full(lo.shape, prep.deadline_s.max()) if hi_s is None else np.asarray(hi_s, dtype=float)

    def h(x: np.ndarray) -> np.ndarray:
        b, _ = vector_bandwidth_hz(prep, kidx, np.exp(x), newton_steps)
        with np.errstate(divide="ignore"):
            return np.log(b.sum(axis=1) / w)

    f_hi = h(np.log(hi))
    feasible = np.isfinite(lo) & (f_hi <= 0)
    x_lo = np.log(np.where(feasible, np.minimum(lo, hi), 1.0))
    x_hi = np.log(np.where(feasible, hi, 1.0))
    f_hi = np.where(feasible, f_hi, -1.0)
    f_lo = np.where(feasible, h(x_lo), 1.0)
    # A vector whose lower bound already fits is done (tau = lo).
    done = f_lo <= 0
    x_hi = np.where(done, x_lo, x_hi)
    f_lo = np.where(done | ~np.isfinite(f_lo), np.where(done, 0.0, 1e3), f_lo)
    side = np.zeros(lo.shape, dtype=np.int8)
    for _ in range(iterations):
        width = x_hi - x_lo
        if not np.any(width > rtol):
            break
        x = x_hi - f_hi * width / (f_hi - f_lo)
        # Keep the trial strictly inside the bracket.
        x = np.clip(x, x_lo + 0.01 * width, x_hi - 0.01 * width)
        f = h(x)
        fits = f <= 0
        active = width > rtol
        # Illinois: halve the stale end's value when the same end survives twice.
        f_lo = np.where(active & fits & (side == 1), 0.5 * f_lo, f_lo)
        f_hi = np.where(active & ~fits & (side == -1), 0.5 * f_hi, f_hi)
        x_hi = np.where(active & fits, x, x_hi)
        f_hi = np.where(active & fits, f, f_hi)
        x_lo = np.where(active & ~fits, x, x_lo)
        f_lo = np.where(active & ~fits, f, f_lo)
        side = np.where(active, np.where(fits, 1, -1), side).astype(np.int8)
    return np.where(feasible, np.exp(x_hi), np.inf)


class _RadioCurve:
    """B_i(min(tau, D_i)), the power and dB_i/dtau of one token vector, for repeated tau.

    The slope comes from differentiating b ln(1 + a / b) = S ln2 / t implicitly, with
    a = P g / N0 and P = min(p_max, e / t):  phi_b db/dt + phi_a da/dt = -S ln2 / t^2, where
    phi_b = ln(1 + y) - y / (1 + y), phi_a = 1 / (1 + y), y = a / b (the SNR), and
    da/dt = -a / t when the energy budget caps the power, 0 otherwise.
    """

    def __init__(self, prep: Prepared, kidx: np.ndarray):
        rows = np.arange(prep.n)
        # [n]
        self.s_ln2 = prep.payload_bits[rows, kidx] * np.log(2.0)
        self.compute_time_s = prep.compute_time_s[rows, kidx]
        self.tx_energy_j = prep.tx_energy_j[rows, kidx]
        self.deadline_s = prep.deadline_s[:, 0]
        self.max_power_w = prep.max_power_w[:, 0]
        self.gain_over_n0 = prep.gain[:, 0] / prep.problem.noise_psd_w_per_hz

    def __call__(self, tau_s: float):
        t = np.minimum(tau_s, self.deadline_s) - self.compute_time_s
        p_energy = self.tx_energy_j / t
        capped = p_energy < self.max_power_w
        power = np.where(capped, p_energy, self.max_power_w)
        a_hz = power * self.gain_over_n0
        rho = self.s_ln2 / t
        c = rho / a_hz
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = solve_snr(c)
            b = a_hz / y
            one_y = 1.0 + y
            slope = (-rho / t + np.where(capped, a_hz / t, 0.0) / one_y) / (
                np.log1p(y) - y / one_y)
        return b, power, np.where(tau_s < self.deadline_s, slope, 0.0)


def exact_radio(
    prep: Prepared, kidx: np.ndarray, max_iterations: int = 60
) -> tuple[float, np.ndarray, np.ndarray, int]:
    """Exact min-max radio allocation for one token vector.

    Solves sum_i B_i(min(tau, D_i)) = W for tau by Newton's method on
    ln(sum B / W) against ln tau (nearly linear: bandwidth needs scale like 1 / time) with
    the analytic slope of :class:`_RadioCurve`, safeguarded by bisection inside a
    bracket that always holds the root; converges in a handful of steps to ~1e-12 relative
    in band use, on the side that fits the band.

    Args:
        prep: prepared arrays.
        kidx: ``[n]`` token indices.
        max_iterations: safeguard on the number of steps.

    Returns:
        ``(tau_s, bandwidth_hz [n], power_w [n], iterations)`` with sum bandwidth <= W and
        every device done by min(tau, D_i).

    Raises:
        ValueError: if the token vector cannot meet every deadline within the band.
    """
    w = prep.problem.total_bandwidth_hz
    x_lo = np.log(float(prep.rows(kidx, "alone_latency_s").max()))
    x_hi = np.log(float(prep.deadline_s.max()))
    curve = _RadioCurve(prep, kidx)
    b, power, _ = curve(np.exp(x_hi))
    if not (np.isfinite(x_lo) and b.sum() <= w):
        raise ValueError("token vector cannot meet every deadline within the band")
    x, iters = x_lo, 0
    while iters < max_iterations:
        iters += 1
        tau = np.exp(x)
        b, power, slope = curve(tau)
        total = b.sum()
        if total <= w:
            x_hi = x
            if total >= w * (1 - 1e-12) or x_hi - x_lo < 1e-13:
                break
        else:
            x_lo = x
        # Newton step on h(x) = ln(total / w); dh/dx = tau * sum(slope) / total.
        dh = tau * slope.sum() / total
        step = -np.log(total / w) / dh if np.isfinite(total) and dh < 0 else np.nan
        if abs(step) < 1e-14:
            if total <= w:
                break
            # Converged on the side that overflows the band by ulps: step just past the root.
            x = min(x_hi, x + 1e-14)
            continue
        x_new = x + step
        if not (x_lo < x_new < x_hi):
            x_new = 0.5 * (x_lo + x_hi)
        x = x_new
    tau = float(np.exp(x_hi))
    if x != x_hi:
        b, power, _ = curve(tau)
    total = b.sum()
    if total > w:  # rounding of the last ulps only
        b = b * (w / total)
    return tau, b, power, iters


def screen(
    problem: AllocationProblem,
    selected: np.ndarray | None = None,
    reasons: tuple[str, ...] | list[str] | None = None,
):
    """Devices that can take part at all, with the reasons of the others.

    A device is excluded if it cannot meet its deadline and energy budget even alone with
    the whole band and K = min_tokens ("deadline" / "energy"); then, if the rest cannot all
    be served at K = min_tokens within their deadlines (sum_i B_i(K_min, D_i) > W), the
    devices needing the most bandwidth are dropped first ("capacity"), which keeps the
    largest number of devices.

    Args:
        problem: the problem.
        selected: optional ``[N]`` bool, devices allowed to take part.
        reasons: optional ``[N]`` reasons of the unselected devices (default "left-cell").

    Returns:
        ``(prep, status)``: :class:`Prepared` of the kept devices, ``[N]`` list of status.
    """
    n = problem.num_devices
    status = [Reason.ALLOCATED] * n
    idx = np.arange(n)
    if selected is not None:
        selected = np.asarray(selected, dtype=bool)
        if selected.shape != (n,):
            raise ValueError(f"selected must have shape ({n},), got {selected.shape}")
        idx = np.flatnonzero(selected)
        for i in np.flatnonzero(~selected):
            status[i] = Reason.LEFT_CELL if reasons is None else reasons[i]
    prep = prepare(problem, idx)
    reason0 = prep.alone_reason[:, 0]
    for j in np.flatnonzero(reason0 != Reason.ALLOCATED):
        status[idx[j]] = reason0[j]
    prep = prep.subset(reason0 == Reason.ALLOCATED)
    if prep.n == 0:
        return prep, status
    keep = drop_for_capacity(prep, np.zeros(prep.n, dtype=np.intp), status)
    if not keep.all():
        prep = prep.subset(keep)
    return prep, status


def drop_for_capacity(prep: Prepared, kidx: np.ndarray, status: list[str]) -> np.ndarray:
    """Keep mask after dropping the devices needing the most bandwidth until the rest fit.

    Each device's need is its least bandwidth at its deadline with the budgets ``kidx``
    (``[n]``); dropping the largest needs first keeps the largest number of devices. Dropped
    devices get ``Reason.CAPACITY`` in ``status`` (``[N]``, updated in place).
    """
    b_at_deadline, _ = vector_bandwidth_hz(prep, kidx, prep.deadline_s.max())
    excess = b_at_deadline.sum() - prep.problem.total_bandwidth_hz
    keep = np.ones(prep.n, dtype=bool)
    for j in np.argsort(-b_at_deadline, kind="stable"):
        if excess <= 0:
            break
        keep[j] = False
        excess -= b_at_deadline[j]
        status[prep.idx[j]] = Reason.CAPACITY
    return keep


def build_allocation(
    rule: str, problem: AllocationProblem, status: list[str], idx: np.ndarray,
    tokens: np.ndarray, bandwidth_hz: np.ndarray, power_w: np.ndarray, iterations: int,
    solve_time_s: float,
) -> Allocation:
    """Assemble an :class:`Allocation`, computing latency and energy by the forward model."""
    n = problem.num_devices
    full = lambda v, dtype=float: _scatter(n, idx, v, dtype)  # noqa: E731
    tok, bw, pw = full(tokens, np.int64), full(bandwidth_hz), full(power_w)
    ok = np.zeros(n, dtype=bool)
    ok[idx] = True
    latency = np.zeros(n)
    energy = np.zeros(n)
    rate = np.zeros(n)
    if idx.size:
        lat, en = problem.evaluate(tok, np.where(ok, bw, 1.0), np.where(ok, pw, 1.0))
        latency[ok], energy[ok] = lat[ok], en[ok]
        rate[ok] = rate_bps(bw[ok], pw[ok], problem.gain_lin[ok], problem.noise_psd_w_per_hz)
    ret = np.where(ok, problem.retention[np.arange(n), tok], 0.0)
    round_latency = float(latency[ok].max()) if ok.any() else 0.0
    ste = float(ret.sum() / round_latency) if ok.any() else 0.0
    return Allocation(
        rule=rule, tokens=tok, bandwidth_hz=bw, power_w=pw, rate_bps=rate,
        latency_s=latency, energy_j=energy, retention=ret, status=tuple(status), ste=ste,
        round_latency_s=round_latency, iterations=int(iterations), solve_time_s=solve_time_s,
    )


def _scatter(n: int, idx: np.ndarray, values, dtype) -> np.ndarray:
    out = np.zeros(n, dtype=dtype)
    out[idx] = values
    return out
