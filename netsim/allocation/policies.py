"""The allocation policies: ST-SFLora, the baselines and the exhaustive reference."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from netsim.reasons import Reason

from .core import (
    Prepared,
    batch_round_latency_s,
    build_allocation,
    drop_for_capacity,
    exact_radio,
    screen,
    vector_bandwidth_hz,
)
from .problem import Allocation, AllocationProblem
from .radio import _LN2, max_power_for_energy_w, rate_bps, solve_snr

POLICIES = ("st-sflora", "full-tokens", "equal", "random-tokens", "fixed-ratio", "exhaustive")


# ----------------------------------------------------------------------------- helpers


def _allocate_tokens(policy, problem, prep, status, kidx, iterations, t0) -> Allocation:
    """Exact radio for a token vector, dropping devices it cannot serve (with the reason)."""
    reason = prep.alone_reason[np.arange(prep.n), kidx]
    for j in np.flatnonzero(reason != Reason.ALLOCATED):
        status[prep.idx[j]] = reason[j]
    keep = reason == Reason.ALLOCATED
    sub, kidx = prep.subset(keep), kidx[keep]
    if sub.n:
        keep = drop_for_capacity(sub, kidx, status)
        if not keep.all():
            sub, kidx = sub.subset(keep), kidx[keep]
    if sub.n == 0:
        return build_allocation(policy, problem, status, sub.idx, [], [], [], iterations,
                                time.perf_counter() - t0)
    _, bw, pw, it = exact_radio(sub, kidx)
    return build_allocation(policy, problem, status, sub.idx, sub.ks[kidx], bw, pw,
                            iterations + it, time.perf_counter() - t0)


def _ratio_index(prep: Prepared, keep_ratio: float) -> np.ndarray:
    k = int(round(keep_ratio * prep.problem.max_tokens))
    k = min(max(k, prep.problem.min_tokens), prep.problem.max_tokens)
    return np.full(prep.n, k - prep.problem.min_tokens, dtype=np.intp)


# ----------------------------------------------------------------------------- ST-SFLora


def greedy_tokens(prep: Prepared, taus_s: np.ndarray, newton_steps: int = 0, stride: int = 1):
    """Step (c): the best token budgets for given common latencies tau (one per row).

    For a latency tau each device's bandwidth need B_i(K, tau) is known (steps (a)+(b)),
    and choosing K is a multiple-choice knapsack: maximise sum_i f_i(K_i) subject to
    sum_i B_i(K_i, tau) <= W. It is solved by the classic greedy on incremental efficiencies
    (f_i(K+1) - f_i(K)) / (B_i(K+1) - B_i(K)), largest first, which is the Lagrangian
    (water-filling) solution and exact up to one partial step when f_i is concave and B_i
    convex in K (Sinha & Zoltners, Oper. Res. 1979). Efficiencies are made non-increasing
    in K per device (running minimum) so that every device takes a prefix of its steps.

    Args:
        prep: prepared arrays.
        taus_s: ``[G]`` candidate common latencies, s.
        newton_steps: accuracy of the bandwidth inverse.
        stride: consider every stride-th token budget only (a coarse ladder, for locating tau).

    Returns:
        ``(kidx [G, n], retention_sum [G], fits [G])``; fits is False where even
        K = min_tokens exceeds the band at that tau.
    """
    if stride > 1:
        cols = np.unique(np.r_[np.arange(0, prep.ks.size, stride), prep.ks.size - 1])
        kidx, retention_sum, fits = greedy_tokens(_columns(prep, cols), taus_s, newton_steps)
        return cols[kidx], retention_sum, fits
    w = prep.problem.total_bandwidth_hz
    g_count, n = taus_s.size, prep.n
    n0 = prep.problem.noise_psd_w_per_hz
    # Per-token compute terms make time and energy depend on K; without them the per-device
    # quantities are computed once per (tau, device), not per token budget.
    k_dependent = bool(np.ptp(prep.compute_time_s, axis=1).any()
                       or np.ptp(prep.tx_energy_j, axis=1).any())
    comp_t = prep.compute_time_s if k_dependent else prep.compute_time_s[:, :1]
    tx_e = prep.tx_energy_j if k_dependent else prep.tx_energy_j[:, :1]
    # [G, n, 1 or Kr] transmission time, power P = min(p_max, e / t), a = P g / N0.
    t = np.minimum(taus_s[:, None, None], prep.deadline_s[None]) - comp_t[None]
    usable = (t > 0) & (tx_e[None] > 0)
    t = np.where(usable, t, 1.0)
    a_hz = np.minimum(prep.max_power_w[None], tx_e[None] / t) * (prep.gain[None] / n0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # [G, n, Kr] least bandwidth a / y(c), c = S ln2 / (t a)  (radio module, eq. (*)).
        y = solve_snr(prep.payload_bits[None] * (_LN2 / (t * a_hz)), newton_steps)
        b = np.where(usable & (y > 0), a_hz / y, np.inf)
        b[b > w] = np.inf
        budget = w - b[:, :, 0].sum(axis=1)
        fits = budget >= 0
        # [G, n, Kr - 1] incremental efficiency, made non-increasing in K.
        d_b = np.diff(b, axis=2)
        eff = np.where(prep._takeable_steps[None] & (d_b < np.inf), prep._d_retention[None] / d_b,
                       -np.inf)
    eff = np.minimum.accumulate(eff, axis=2).reshape(g_count, -1)
    order = np.argsort(-eff, axis=1)
    sorted_eff = np.take_along_axis(eff, order, axis=1)
    cum_b = np.cumsum(np.take_along_axis(d_b.reshape(g_count, -1), order, axis=1), axis=1)
    take_sorted = (cum_b <= budget[:, None]) & (sorted_eff > -np.inf)
    taken = np.empty_like(take_sorted)
    np.put_along_axis(taken, order, take_sorted, axis=1)
    kidx = taken.reshape(g_count, n, -1).sum(axis=2)
    kidx[~fits] = 0
    retention_sum = prep.retention[np.arange(n), kidx].sum(axis=1)
    return kidx, retention_sum, fits


def _columns(prep: Prepared, cols: np.ndarray) -> Prepared:
    """The prepared arrays restricted to the token budgets ``prep.ks[cols]``."""
    names = ("payload_bits", "compute_time_s", "tx_energy_j", "retention", "alone_latency_s",
             "alone_reason")
    return replace(prep, ks=prep.ks[cols], **{k: getattr(prep, k)[:, cols] for k in names})


def _polish(prep: Prepared, kidx: np.ndarray, ste: float, max_passes: int, pairs: bool):
    """Local search on integer token vectors: single-device and (optionally) pair moves."""
    n, kr = prep.n, prep.ks.size
    passes = 0
    for passes in range(1, max_passes + 1):
        cands = []
        for i in range(n):
            rows = np.repeat(kidx[None], kr, axis=0)
            rows[:, i] = np.arange(kr)
            cands.append(rows)
        if pairs and n >= 2:
            d = np.arange(-3, 4)
            da, db = (a.ravel() for a in np.meshgrid(d, d))
            for i in range(n):
                for j in range(i + 1, n):
                    rows = np.repeat(kidx[None], da.size, axis=0)
                    rows[:, i] += da
                    rows[:, j] += db
                    cands.append(rows)
        cand = np.vstack(cands)
        cand = cand[np.all((cand >= 0) & (cand < kr), axis=1)]
        tau = batch_round_latency_s(prep, cand, rtol=1e-7)
        score = prep.retention[np.arange(n), cand].sum(axis=1) / tau
        best = int(np.argmax(score))
        if not score[best] > ste * (1 + 1e-9):
            break
        kidx, ste = cand[best], float(score[best])
    return kidx, ste, passes


def st_sflora(
    problem: AllocationProblem,
    prep: Prepared,
    status: list[str],
    t0: float,
    grid_points: int = 8,
    refine_rounds: int = 2,
    refine_points: int = 4,
    polish_max_devices: int = 6,
) -> Allocation:
    """ST-SFLora: alternating token / bandwidth / power optimisation (see package docs).

    ``iterations`` counts the common latencies tau tried, the local-search passes and the
    Newton steps of the exact radio allocations.
    """
    n = prep.n
    if n == 0:
        return build_allocation("st-sflora", problem, status, prep.idx, [], [], [], 0,
                                time.perf_counter() - t0)
    k_min = np.zeros(n, dtype=np.intp)
    # Largest budget each device could send alone (alone latency is increasing in K).
    k_cap = np.isfinite(prep.alone_latency_s).sum(axis=1) - 1
    retention_of = lambda k: float(prep.retention[np.arange(n), k].sum())  # noqa: E731
    radio_min = exact_radio(prep, k_min)  # feasible: screening guarantees it
    tau_lo = radio_min[0]
    b_cap, _ = vector_bandwidth_hz(prep, k_cap, prep.deadline_s.max())
    cap_fits = bool(b_cap.sum() <= problem.total_bandwidth_hz)
    radio_cap = exact_radio(prep, k_cap) if cap_fits else None
    # Beyond the latency at which every device sends all it can, STE only falls.
    tau_hi = radio_cap[0] if cap_fits else float(prep.deadline_s.max())
    evaluated_k, evaluated_score = [], []
    iterations = radio_min[3]
    if tau_hi > tau_lo * (1 + 1e-9):
        # Outer search on the common latency tau: STE(tau) = F*(tau) / tau with F*(tau) the
        # step-(c) retention at tau; a coarse geometric grid, then finer grids around the best.
        grid = np.geomspace(tau_lo, tau_hi, grid_points)
        for r in range(refine_rounds + 1):
            # The coarse grid only locates tau: a ladder of every 4th budget is enough there.
            kidx, f_sum, fits = greedy_tokens(prep, grid, stride=4 if r == 0 else 1)
            score = np.where(fits, f_sum / grid, 0.0)
            evaluated_k.append(kidx)
            evaluated_score.append(score)
            iterations += grid.size
            if r == refine_rounds:
                break
            j = int(np.argmax(score))
            left, right = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
            grid = np.geomspace(left, right, refine_points + 2)[1:-1]
    # Exact candidates: all budgets at their minimum, and all at the most each can send.
    results = [(retention_of(k_min) / tau_lo, k_min, radio_min)]
    if cap_fits:
        iterations += radio_cap[3]
        results.append((retention_of(k_cap) / radio_cap[0], k_cap, radio_cap))
    if evaluated_k:
        cand = np.vstack(evaluated_k)
        score = np.concatenate(evaluated_score)
        # The score F / tau is a lower bound (tau fits the band, maybe with some to spare).
        # With few devices the spare band matters: re-time the best few before choosing.
        if n <= 16:
            top = np.argsort(-score, kind="stable")[:8]
            cand = np.unique(cand[top], axis=0)
            score = prep.retention[np.arange(n), cand].sum(axis=1) / batch_round_latency_s(
                prep, cand, rtol=1e-7)
        best = int(np.argmax(score))
        kidx = cand[best]
        if n <= polish_max_devices:
            kidx, _, passes = _polish(prep, kidx, float(score[best]), max_passes=4,
                                      pairs=n <= 4)
            iterations += passes
        radio = exact_radio(prep, kidx)
        iterations += radio[3]
        results.append((retention_of(kidx) / radio[0], kidx, radio))
    _, kidx, (_, bw, pw, _) = max(results, key=lambda item: item[0])
    return build_allocation("st-sflora", problem, status, prep.idx, prep.ks[kidx], bw, pw,
                            iterations, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- reference


def exhaustive(
    problem: AllocationProblem, prep: Prepared, status: list[str], t0: float,
    max_vectors: int = 2_000_000, grid_points: int = 96,
) -> Allocation:
    """Exact optimum over every integer token vector, each with its exact radio allocation.

    Every vector K in [min_tokens, K_max]^n is considered. To avoid a full bisection per
    vector, tau(K) is first bracketed on a shared geometric grid of latencies (feasible at a
    grid tau iff sum_i B_i(K_i, tau) <= W, with exact B), giving for every vector an upper
    bound F(K) / tau_lower and a lower bound F(K) / tau_upper on its STE. Vectors whose upper
    bound is below the best lower bound cannot be optimal; the others are timed exactly
    (regula falsi to 1e-13, exact bandwidth inverse). ``iterations`` is the number of
    vectors timed exactly.

    Raises:
        ValueError: if (K_max - min_tokens + 1) ** n exceeds ``max_vectors``.
    """
    n, kr = prep.n, prep.ks.size
    if n == 0:
        return build_allocation("exhaustive", problem, status, prep.idx, [], [], [], 0,
                                time.perf_counter() - t0)
    if kr**n > max_vectors:
        raise ValueError(
            f"exhaustive needs {kr}**{n} = {kr**n} token vectors, more than max_vectors="
            f"{max_vectors}; use a smaller instance or raise max_vectors"
        )
    w = problem.total_bandwidth_hz

    def outer(table: np.ndarray, op) -> np.ndarray:
        # [Kr] x n -> [Kr ** n] combining one row per device (device 0 varies slowest).
        acc = table[0]
        for i in range(1, n):
            acc = op(acc[:, None], table[i][None, :]).ravel()
        return acc

    f_vec = outer(prep.retention, np.add)
    lo_vec = outer(prep.alone_latency_s, np.maximum)
    d_max = float(prep.deadline_s.max())
    finite_lo = lo_vec[np.isfinite(lo_vec)]
    if finite_lo.size == 0:
        raise AssertionError("screening guarantees K = min_tokens is feasible alone")
    grid = np.geomspace(finite_lo.min(), d_max, grid_points)
    upper = np.full(lo_vec.shape, np.inf)
    lower = lo_vec.copy()
    for tau in grid[::-1]:
        b, _ = vector_bandwidth_hz(prep, np.broadcast_to(np.arange(kr)[:, None], (kr, n)), tau)
        fits = outer(np.where(np.isfinite(b), b, np.inf).T, np.add) <= w
        upper = np.where(fits, tau, upper)
        lower = np.where(fits, lower, np.maximum(lower, tau))
    feasible = np.isfinite(upper) & np.isfinite(lo_vec)
    with np.errstate(invalid="ignore", divide="ignore"):
        best_lb = np.max(np.where(feasible, f_vec / upper, 0.0))
        ub = np.where(feasible, f_vec / lower, 0.0)
    survivors = np.flatnonzero(feasible & (ub >= best_lb * (1 - 1e-9)))
    # [S, n] token indices of the survivors (device 0 varies slowest, as in outer()).
    kidx = np.stack(np.unravel_index(survivors, (kr,) * n), axis=1)
    tau = batch_round_latency_s(prep, kidx, iterations=100, newton_steps=3, rtol=1e-13,
                                lo_s=np.minimum(lower[survivors], upper[survivors]),
                                hi_s=upper[survivors])
    ste = f_vec[survivors] / tau
    best = int(np.argmax(ste))
    _, bw, pw, _ = exact_radio(prep, kidx[best])
    return build_allocation("exhaustive", problem, status, prep.idx, prep.ks[kidx[best]], bw, pw,
                            survivors.size, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- baselines


def equal_allocation(problem: AllocationProblem, prep: Prepared, status: list[str], t0: float,
                     keep_ratio: float) -> Allocation:
    """Equal bandwidth W / n, maximum power, K = round(keep_ratio K_max) for every device.

    Power above what the energy budget allows is reduced by step (a); a device still missing
    its deadline or budget is dropped with the reason (its share of the band stays unused, as
    a static split would leave it).
    """
    n = prep.n
    kidx = _ratio_index(prep, keep_ratio)
    if n == 0:
        return build_allocation("equal", problem, status, prep.idx, [], [], [], 0,
                                time.perf_counter() - t0)
    rows = np.arange(n)
    bw = np.full(n, problem.total_bandwidth_hz / n)
    payload = prep.payload_bits[rows, kidx]
    tx_e = prep.tx_energy_j[rows, kidx]
    pw = max_power_for_energy_w(bw, payload, tx_e, prep.max_power_w[:, 0], prep.gain[:, 0],
                                problem.noise_psd_w_per_hz)
    with np.errstate(divide="ignore"):
        latency = prep.compute_time_s[rows, kidx] + payload / rate_bps(
            bw, np.maximum(pw, 1e-300), prep.gain[:, 0], problem.noise_psd_w_per_hz)
    late = ~(latency <= prep.deadline_s[:, 0])
    energy_cut = pw < prep.max_power_w[:, 0]
    for j in np.flatnonzero(late | (pw <= 0)):
        status[prep.idx[j]] = Reason.ENERGY if (energy_cut[j] or pw[j] <= 0) else Reason.DEADLINE
    keep = ~late & (pw > 0)
    return build_allocation("equal", problem, status, prep.idx[keep], prep.ks[kidx[keep]],
                            bw[keep], pw[keep], 0, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- entry point


def solve(
    problem: AllocationProblem,
    policy: str = "st-sflora",
    *,
    keep_ratio: float = 0.5,
    rng: np.random.Generator | None = None,
    selected: np.ndarray | None = None,
    reasons: tuple[str, ...] | list[str] | None = None,
    max_vectors: int = 2_000_000,
) -> Allocation:
    """Allocate tokens, bandwidth and power for one round.

    Args:
        problem: the round's :class:`AllocationProblem`.
        policy: one of ``"st-sflora"`` (the alternating algorithm), ``"full-tokens"``
            (K = K_max, optimal radio), ``"equal"`` (W / n each, max power, K from
            ``keep_ratio``), ``"random-tokens"`` (K uniform in [min_tokens, K_max] from
            ``rng``, optimal radio), ``"fixed-ratio"`` (K from ``keep_ratio``, optimal
            radio), ``"exhaustive"`` (exact reference, small instances only).
        keep_ratio: fraction of K_max kept by ``"equal"`` and ``"fixed-ratio"``, in (0, 1];
            K = round(keep_ratio K_max) clipped to [min_tokens, K_max].
        rng: random generator, required by ``"random-tokens"``.
        selected: optional ``[N]`` bool, devices allowed to take part (e.g. the mask of
            :func:`select_by_dwell`); the others are excluded with their ``reasons``.
        reasons: optional ``[N]`` status of unselected devices (default ``"left-cell"``).
        max_vectors: size limit of ``"exhaustive"``.

    Returns:
        The :class:`Allocation`. Devices that cannot be served get a status other than "ok"
        (see :class:`Allocation`) and zeros; the others satisfy every constraint.

    Raises:
        ValueError: unknown policy, bad keep_ratio, missing rng, exhaustive too large.
    """
    t0 = time.perf_counter()
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if not (0.0 < keep_ratio <= 1.0):
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
    if policy == "random-tokens" and not isinstance(rng, np.random.Generator):
        raise ValueError(f"policy 'random-tokens' needs rng=np.random.Generator, got {rng!r}")
    prep, status = screen(problem, selected, reasons)
    if policy == "st-sflora":
        return st_sflora(problem, prep, status, t0)
    if policy == "exhaustive":
        return exhaustive(problem, prep, status, t0, max_vectors=max_vectors)
    if policy == "equal":
        return equal_allocation(problem, prep, status, t0, keep_ratio)
    if policy == "full-tokens":
        kidx = np.full(prep.n, prep.ks.size - 1, dtype=np.intp)
    elif policy == "fixed-ratio":
        kidx = _ratio_index(prep, keep_ratio)
    else:
        kidx = rng.integers(0, prep.ks.size, size=prep.n).astype(np.intp)
    return _allocate_tokens(policy, problem, prep, status, kidx, 0, t0)
