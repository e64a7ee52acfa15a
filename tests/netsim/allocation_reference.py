"""Independent references for the allocation tests: constraint checks and a cvxpy model.

Nothing here calls the code under test: formulas are written out again from the problem
statement, and the fixed-token radio problem is handed to a generic conic solver.
"""

from __future__ import annotations

import numpy as np

RTOL = 1e-9


def check_allocation(problem, alloc) -> None:
    """Assert that every "ok" device meets every constraint to RTOL relative, and no NaN."""
    n = problem.num_devices
    for name in ("tokens", "bandwidth_hz", "power_w", "rate_bps", "latency_s", "energy_j",
                 "retention"):
        arr = np.asarray(getattr(alloc, name))
        assert arr.shape == (n,), name
        assert np.all(np.isfinite(arr)), f"{name} has non-finite values: {arr}"
    assert np.isfinite(alloc.ste) and alloc.ste >= 0
    assert len(alloc.status) == n
    assert set(alloc.status) <= {"ok", "deadline", "energy", "capacity", "left-cell"}
    ok = np.array([s == "ok" for s in alloc.status])
    off = ~ok
    for name in ("tokens", "bandwidth_hz", "power_w", "latency_s", "energy_j", "retention"):
        assert np.all(np.asarray(getattr(alloc, name))[off] == 0), name
    if not ok.any():
        assert alloc.ste == 0
        return
    k = alloc.tokens[ok]
    b = alloc.bandwidth_hz[ok]
    p = alloc.power_w[ok]
    g = problem.gain_lin[ok]
    assert np.all(b > 0) and np.all(p > 0)
    assert np.all((k >= problem.min_tokens) & (k <= problem.max_tokens))
    assert b.sum() <= problem.total_bandwidth_hz * (1 + RTOL)
    assert np.all(p <= problem.max_power_w[ok] * (1 + RTOL))
    # Independent forward model, written out from the problem statement.
    rate = b * np.log2(1 + p * g / (problem.noise_psd_w_per_hz * b))
    payload = problem.bits_per_token[ok] * (k + problem.extra_tokens)
    t_tx = payload / rate
    latency = problem.compute_time_s[ok] + problem.compute_time_per_token_s[ok] * k + t_tx
    energy = problem.compute_energy_j[ok] + problem.compute_energy_per_token_j[ok] * k + p * t_tx
    np.testing.assert_allclose(alloc.latency_s[ok], latency, rtol=1e-12)
    np.testing.assert_allclose(alloc.energy_j[ok], energy, rtol=1e-12)
    assert np.all(latency <= problem.deadline_s[ok] * (1 + RTOL)), (latency, problem.deadline_s[ok])
    assert np.all(energy <= problem.energy_budget_j[ok] * (1 + RTOL))
    f = problem.retention[np.flatnonzero(ok), k]
    np.testing.assert_allclose(alloc.retention[ok], f, rtol=0, atol=0)
    np.testing.assert_allclose(alloc.ste, f.sum() / latency.max(), rtol=1e-12)


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
