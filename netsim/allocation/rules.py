"""The allocation rules: plain functions of an :class:`AllocationProblem` and what each needs.

- :func:`max_ste`: tokens, bandwidth and power chosen jointly for the largest semantic
  transmission efficiency (the alternating algorithm of the package docstring);
- :func:`fixed_tokens`: given token budgets, the exact min-max bandwidth and power;
- :func:`random_tokens`: budgets uniform in [min_tokens, K_max] from ``rng``, exact radio;
- :func:`equal_share`: given token budgets, W / n each at full power (reduced only to meet
  the energy budget).
The exact reference over every token vector is :func:`.exhaustive.exhaustive`.

Every rule takes optional ``selected`` and ``reasons`` (devices allowed to take part, and why
the others are not). A rule knows no policy: each policy of ``scenarios.policies`` calls the
rule it needs with its own arguments.
"""

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


# ----------------------------------------------------------------------------- helpers


def _allocate_tokens(rule, problem, prep, status, kidx, iterations, t0) -> Allocation:
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
        return build_allocation(rule, problem, status, sub.idx, [], [], [], iterations,
                                time.perf_counter() - t0)
    _, bw, pw, it = exact_radio(sub, kidx)
    return build_allocation(rule, problem, status, sub.idx, sub.ks[kidx], bw, pw,
                            iterations + it, time.perf_counter() - t0)


def _token_index(prep: Prepared, tokens: np.ndarray) -> np.ndarray:
    """``[n]`` index into ``prep.ks`` of the kept devices' budgets (``tokens`` is ``[N]``)."""
    return (np.asarray(tokens, dtype=np.intp)[prep.idx] - prep.problem.min_tokens).astype(np.intp)


def _budgets(problem: AllocationProblem, tokens) -> np.ndarray:
    """``int [N]`` budgets from an integer or an ``[N]`` array, checked to be in range."""
    arr = np.asarray(tokens)
    if arr.dtype.kind not in "iu" or arr.ndim > 1 or (arr.ndim == 1 and arr.shape != (problem.num_devices,)):
        raise ValueError(f"tokens must be an integer or {problem.num_devices} integers, got {tokens!r}")
    arr = np.broadcast_to(arr, (problem.num_devices,)).astype(np.intp)
    bad = (arr < problem.min_tokens) | (arr > problem.max_tokens)
    if bad.any():
        raise ValueError(f"tokens must be in [{problem.min_tokens}, {problem.max_tokens}], "
                         f"got {int(arr[bad][0])}")
    return arr


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


def _max_ste(
    problem: AllocationProblem,
    prep: Prepared,
    status: list[str],
    t0: float,
    grid_points: int = 8,
    refine_rounds: int = 2,
    refine_points: int = 4,
    polish_max_devices: int = 6,
) -> Allocation:
    """Alternating token / bandwidth / power optimisation for STE (see package docs).

    ``iterations`` counts the common latencies tau tried, the local-search passes and the
    Newton steps of the exact radio allocations.
    """
    n = prep.n
    if n == 0:
        return build_allocation("max-ste", problem, status, prep.idx, [], [], [], 0,
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
    return build_allocation("max-ste", problem, status, prep.idx, prep.ks[kidx], bw, pw,
                            iterations, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- baselines


def _equal_share(problem: AllocationProblem, prep: Prepared, status: list[str], t0: float,
                 tokens: np.ndarray) -> Allocation:
    """Equal bandwidth W / n, maximum power, the given budgets ``tokens`` (``int [N]``).

    Power above what the energy budget allows is reduced by step (a); a device still missing
    its deadline or budget is dropped with the reason (its share of the band stays unused, as
    a static split would leave it).
    """
    n = prep.n
    kidx = _token_index(prep, tokens)
    if n == 0:
        return build_allocation("equal-share", problem, status, prep.idx, [], [], [], 0,
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
    return build_allocation("equal-share", problem, status, prep.idx[keep], prep.ks[kidx[keep]],
                            bw[keep], pw[keep], 0, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- entry points


def max_ste(problem: AllocationProblem, *, selected: np.ndarray | None = None,
            reasons: tuple[str, ...] | list[str] | None = None) -> Allocation:
    """Tokens, bandwidth and power chosen jointly for the largest STE (see package docs).

    Args:
        problem: the round's :class:`AllocationProblem`.
        selected: optional ``[N]`` bool, devices allowed to take part (e.g. the mask of
            :func:`select_by_dwell`); the others are excluded with their ``reasons``.
        reasons: optional ``[N]`` status of unselected devices (default ``"left-cell"``).

    Returns:
        The :class:`Allocation`. Devices that cannot be served get a status other than "ok"
        and zeros; the others satisfy every constraint.
    """
    t0 = time.perf_counter()
    prep, status = screen(problem, selected, reasons)
    return _max_ste(problem, prep, status, t0)


def fixed_tokens(problem: AllocationProblem, tokens: int | np.ndarray, *, selected: np.ndarray | None = None,
                 reasons: tuple[str, ...] | list[str] | None = None) -> Allocation:
    """The exact min-max bandwidth and power for given token budgets.

    Args:
        tokens: budget of every device (an integer) or ``int [N]``, in
            ``[min_tokens, K_max]``; ``problem.max_tokens`` sends every token.

    Raises:
        ValueError: a budget out of range.
    """
    t0 = time.perf_counter()
    budgets = _budgets(problem, tokens)
    prep, status = screen(problem, selected, reasons)
    return _allocate_tokens("fixed-tokens", problem, prep, status, _token_index(prep, budgets), 0, t0)


def random_tokens(problem: AllocationProblem, rng: np.random.Generator, *, selected: np.ndarray | None = None,
                  reasons: tuple[str, ...] | list[str] | None = None) -> Allocation:
    """Budgets uniform in ``[min_tokens, K_max]`` from ``rng``, then the exact radio allocation.

    Raises:
        ValueError: ``rng`` is not a ``np.random.Generator``.
    """
    t0 = time.perf_counter()
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a np.random.Generator, got {rng!r}")
    prep, status = screen(problem, selected, reasons)
    kidx = rng.integers(0, prep.ks.size, size=prep.n).astype(np.intp)
    return _allocate_tokens("random-budgets", problem, prep, status, kidx, 0, t0)


def equal_share(problem: AllocationProblem, tokens: int | np.ndarray, *, selected: np.ndarray | None = None,
                reasons: tuple[str, ...] | list[str] | None = None) -> Allocation:
    """W / n each at full power (less where the energy budget requires), given budgets.

    A device that still misses its deadline or budget is dropped with the reason.

    Raises:
        ValueError: a budget out of ``[min_tokens, K_max]``.
    """
    t0 = time.perf_counter()
    budgets = _budgets(problem, tokens)
    prep, status = screen(problem, selected, reasons)
    return _equal_share(problem, prep, status, t0, budgets)
