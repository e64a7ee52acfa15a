"""Screening and the exact min-max radio allocation, against a conic solver."""

from __future__ import annotations

import numpy as np
import pytest
from allocation_reference import check_allocation

from netsim.allocation import fixed_tokens, max_ste, random_problem
from netsim.allocation.core import batch_round_latency_s, exact_radio, screen

@pytest.mark.parametrize(
    "seed, n", [(0, 2), (1, 3), (2, 5), (3, 8), (4, 12), (5, 20), (6, 40), (7, 4)]
)
def test_fixed_token_radio_matches_cvxpy(seed, n):
    rng = np.random.default_rng(seed)
    p = random_problem(rng, n, 32, per_token_compute=seed % 2 == 0)
    prep, _ = screen(p)
    kidx = rng.integers(0, prep.ks.size // 2, size=prep.n)
    if not np.isfinite(batch_round_latency_s(prep, kidx[None]))[0]:
        kidx[:] = 0  # screening guarantees the smallest budgets fit
    tau, bw, pw, _ = exact_radio(prep, kidx)
    ref = cvxpy_min_round_latency_s(p, prep.idx, prep.ks[kidx])
    np.testing.assert_allclose(tau, ref, rtol=1e-4)
    # The public path (a quarter of the tokens) agrees too, and every device ends by the common latency.
    alloc = fixed_tokens(p, min(max(int(round(0.25 * p.max_tokens)), p.min_tokens), p.max_tokens))
    ok = alloc.ok
    np.testing.assert_allclose(
        alloc.round_latency_s, cvxpy_min_round_latency_s(p, np.flatnonzero(ok), alloc.tokens[ok]),
        rtol=1e-4,
    )
    np.testing.assert_allclose(alloc.bandwidth_hz.sum(), p.total_bandwidth_hz, rtol=1e-9)


def test_min_max_structure_everyone_finishes_together():
    p = random_problem(np.random.default_rng(5), 20, deadline_s=(10.0, 12.0))
    a = max_ste(p)
    ok = a.ok
    # Finishing early buys nothing: all devices end at the round latency (deadlines are loose).
    np.testing.assert_allclose(a.latency_s[ok], a.round_latency_s, rtol=1e-8)
    np.testing.assert_allclose(a.bandwidth_hz.sum(), p.total_bandwidth_hz, rtol=1e-9)


def test_capacity_drops_the_most_demanding_devices():
    p = random_problem(np.random.default_rng(3), 300, 16, total_bandwidth_hz=1e6)
    alloc = max_ste(p)
    check_allocation(p, alloc)
    assert 0 < alloc.num_ok < 300 and "capacity" in alloc.status


# Independent reference: the fixed-token radio problem handed to a generic conic solver.
def cvxpy_min_round_latency_s(problem, devices: np.ndarray, tokens: np.ndarray) -> float:
    """Min over (b, p, tau) of tau for fixed tokens, as one convex program (cvxpy + Clarabel).

    R(b, p) = b log(1 + k p / b) / ln 2 with k = g / N0 is the perspective of log, i.e.
    -rel_entr(b, b + k p) / ln 2 (exponential cone), jointly concave in (b, p). Then
        latency  c + S / R <= tau       <=>  R >= S * inv_pos(tau - c)      (convex)
        deadline c + S / R <= D         <=>  R >= S / (D - c)
        energy   eps + p S / R <= e     <=>  R >= p S / (e - eps)           (linear in p)
    Units are rescaled to MHz and Mbit for the solver.
    """
    import cvxpy as cp

    i = np.asarray(devices)
    k_tok = np.asarray(tokens)
    n = i.size
    s_mbit = problem.bits_per_token[i] * (k_tok + problem.extra_tokens) / 1e6
    comp_t = problem.compute_time_s[i] + problem.compute_time_per_token_s[i] * k_tok
    comp_e = problem.compute_energy_j[i] + problem.compute_energy_per_token_j[i] * k_tok
    k_per_mhz = problem.gain_lin[i] / (problem.noise_psd_w_per_hz * 1e6)
    p_max = problem.max_power_w[i]
    b = cp.Variable(n, nonneg=True)  # MHz
    q = cp.Variable(n, nonneg=True)  # p / p_max, for conditioning
    tau = cp.Variable()
    rate_mbps = -cp.rel_entr(b, b + cp.multiply(k_per_mhz * p_max, q)) / np.log(2)
    cons = [
        cp.sum(b) <= problem.total_bandwidth_hz / 1e6,
        q <= 1,
        rate_mbps >= cp.multiply(s_mbit, cp.inv_pos(tau - comp_t)),
        rate_mbps >= s_mbit / (problem.deadline_s[i] - comp_t),
        rate_mbps >= cp.multiply(s_mbit * p_max / (problem.energy_budget_j[i] - comp_e), q),
    ]
    prob = cp.Problem(cp.Minimize(tau), cons)
    # Devices with very poor channels make the cone program badly scaled; Clarabel then often
    # stops at "optimal_inaccurate" with tight tolerances, still accurate to ~1e-7 here.
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10,
               max_iter=1000, static_regularization_constant=1e-7)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), prob.status
    return float(tau.value)
