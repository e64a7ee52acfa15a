"""The exact STE optimum over every integer token vector: the reference for small instances."""

from __future__ import annotations

import time

import numpy as np

from .core import Prepared, batch_round_latency_s, build_allocation, exact_radio, screen, vector_bandwidth_hz
from .problem import Allocation, AllocationProblem


def _exhaustive(
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


def exhaustive(problem: AllocationProblem, *, max_vectors: int = 2_000_000, selected: np.ndarray | None = None,
               reasons: tuple[str, ...] | list[str] | None = None) -> Allocation:
    """The exact STE optimum over every integer token vector (the reference for small instances).

    Raises:
        ValueError: if (K_max - min_tokens + 1) ** n exceeds ``max_vectors``.
    """
    t0 = time.perf_counter()
    prep, status = screen(problem, selected, reasons)
    return _exhaustive(problem, prep, status, t0, max_vectors=max_vectors)
