"""Shared by the allocation tests: an independent constraint check and two small fixtures.

:func:`check_allocation` does not call the code under test: its forward model is written out
again from the problem statement.
"""

from __future__ import annotations

import numpy as np

from netsim.allocation import (AllocationProblem, equal_share, exhaustive, fixed_tokens, max_ste, random_retention,
                               random_tokens)

RTOL = 1e-9
N0 = 10 ** ((-174 + 9 - 30) / 10)


def small_problem(**over) -> AllocationProblem:
    kw = dict(
        gain_lin=np.array([1e-9, 1e-11, 1e-12]),
        noise_psd_w_per_hz=N0,
        total_bandwidth_hz=20e6,
        max_power_w=0.2,
        energy_budget_j=1.0,
        deadline_s=3.0,
        bits_per_token=2e5,
        retention=random_retention(np.random.default_rng(0), 3, 8),
        compute_time_s=0.2,
        compute_energy_j=0.1,
    )
    kw.update(over)
    return AllocationProblem(**kw)


def half_tokens(problem) -> int:
    """round(K_max / 2) clipped to [min_tokens, K_max]."""
    return min(max(int(round(0.5 * problem.max_tokens)), problem.min_tokens), problem.max_tokens)


def solve_all(problem, **kw):
    """Every allocation rule on the problem, by name (the exhaustive reference only when small)."""
    num_vectors = (problem.max_tokens - problem.min_tokens + 1) ** problem.num_devices
    out = {
        "max-ste": max_ste(problem, **kw),
        "full-tokens": fixed_tokens(problem, problem.max_tokens, **kw),
        "equal-share": equal_share(problem, half_tokens(problem), **kw),
        "random-budgets": random_tokens(problem, np.random.default_rng(7), **kw),
        "half-tokens": fixed_tokens(problem, half_tokens(problem), **kw),
    }
    if num_vectors <= 100_000:
        out["exhaustive"] = exhaustive(problem, **kw)
    return out


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
    # log2(1 + x) as log1p(x) / ln 2: at an SNR x near 1e-4, 1 + x keeps only ~12 digits of x,
    # more error than the 1e-12 asked of the allocation below.
    rate = b * np.log1p(p * g / (problem.noise_psd_w_per_hz * b)) / np.log(2)
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
