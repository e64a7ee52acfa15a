"""Tests of netsim.allocation.sflam: distortion, payload, validation, feasibility, optimality."""

from __future__ import annotations

import numpy as np
import pytest

from netsim.allocation.sflam import (
    SflamProblem,
    quantisation_distortion,
    solve_sflam,
)
from netsim.reasons import Reason

N0 = 10 ** ((-174.0 + 9.0 - 30.0) / 10.0)


def random_sflam(rng: np.random.Generator, n: int, weight_s: float, levels=(2, 4, 8, 16)):
    """A random cell: 3GPP TR 36.814 macro path loss, 8 dB shadowing, ViT-Tiny-like payloads."""
    r_m = np.sqrt(rng.uniform(50.0**2, 500.0**2, n))
    gain_db = -(128.1 + 37.6 * np.log10(r_m / 1e3)) + 8.0 * rng.standard_normal(n)
    comp_e = rng.uniform(0.02, 0.2, n)
    return SflamProblem(
        gain_lin=10 ** (gain_db / 10), noise_psd_w_per_hz=N0, total_bandwidth_hz=20e6,
        max_power_w=0.2, energy_budget_j=comp_e + rng.uniform(0.05, 1.0, n),
        deadline_s=rng.uniform(2.0, 6.0, n), values_per_step=8 * 65 * 192,
        header_bits_per_step=8 * 65 * 64, steps=rng.integers(1, 6, n),
        distortion_weight_s=weight_s, compute_time_s=rng.uniform(0.05, 0.3, n),
        compute_energy_j=comp_e, bit_levels=levels, tokens=64,
    )


def check_feasible(problem: SflamProblem, alloc) -> None:
    """Constraints recomputed from the decision with the Shannon rate written out here."""
    ok = alloc.ok
    assert alloc.bandwidth_hz.sum() <= problem.total_bandwidth_hz * (1 + 1e-9)
    assert np.all(alloc.bandwidth_hz[ok] > 0) and np.all(alloc.power_w[ok] > 0)
    assert np.all(alloc.power_w[ok] <= problem.max_power_w[ok] * (1 + 1e-12))
    b, p = alloc.bandwidth_hz[ok], alloc.power_w[ok]
    rate = b * np.log1p(p * problem.gain_lin[ok] / (N0 * b)) / np.log(2)  # log2(1 + x), exact at small x
    bits = alloc.bits_per_value[ok]
    payload = problem.steps[ok] * (problem.values_per_step[ok] * bits
                                   + np.where(bits < 32, problem.header_bits_per_step[ok], 0))
    latency = problem.compute_time_s[ok] + problem.fixed_time_s[ok] + payload / rate
    energy = problem.compute_energy_j[ok] + p * payload / rate
    assert np.all(latency <= problem.deadline_s[ok] * (1 + 1e-9))
    assert np.all(energy <= problem.energy_budget_j[ok] * (1 + 1e-9))
    np.testing.assert_allclose(alloc.latency_s[ok], latency, rtol=1e-9)
    assert np.all(np.isin(bits, problem.bit_levels))
    assert np.all(alloc.bits_per_value[~ok] == 0) and np.all(alloc.bandwidth_hz[~ok] == 0)


def test_distortion_golden_values():
    # Uniform quantiser, Delta = r / (2^b - 1): MSE / (r^2 / 12) = (2^b - 1)^-2.
    np.testing.assert_allclose(quantisation_distortion([1, 2, 4, 8]),
                               [1.0, 1 / 9, 1 / 225, 1 / 65025])
    assert quantisation_distortion(32) == 0.0


def test_payload_counts_headers_only_when_quantised():
    p = SflamProblem(gain_lin=[1e-10, 1e-10], noise_psd_w_per_hz=N0, total_bandwidth_hz=1e6,
                     max_power_w=0.2, energy_budget_j=1.0, deadline_s=5.0,
                     values_per_step=[100, 200], header_bits_per_step=[64, 0], steps=[3, 1],
                     distortion_weight_s=1.0, bit_levels=(4, 32))
    np.testing.assert_allclose(p.payload_bits(4), [3 * (400 + 64), 800])
    np.testing.assert_allclose(p.payload_bits(32), [3 * 3200, 6400])


@pytest.mark.parametrize("field, value", [
    ("gain_lin", [0.0]), ("steps", [0]), ("header_bits_per_step", [-1.0]),
    ("distortion_weight_s", -1.0), ("bit_levels", (4, 2)), ("bit_levels", (0, 2)),
    ("bit_levels", (2, 33)), ("tokens", -1), ("total_bandwidth_hz", 0.0),
])
def test_validation_names_the_field(field, value):
    kwargs = dict(gain_lin=[1e-10], noise_psd_w_per_hz=N0, total_bandwidth_hz=1e6,
                  max_power_w=0.2, energy_budget_j=1.0, deadline_s=5.0, values_per_step=100,
                  header_bits_per_step=64, steps=1, distortion_weight_s=1.0)
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        SflamProblem(**kwargs)


def test_single_device_closed_form():
    # One device, ample energy: whole band at p_max, T(b) = c + S(b) / (W log2(1 + p g / (N0 W))),
    # and the best b minimises T(b) + lambda D(b) over the levels.
    g, w, pmax, c = 1e-11, 5e6, 0.2, 0.1
    problem = SflamProblem(gain_lin=[g], noise_psd_w_per_hz=N0, total_bandwidth_hz=w,
                           max_power_w=pmax, energy_budget_j=100.0, deadline_s=100.0,
                           values_per_step=10_000, header_bits_per_step=640, steps=10,
                           distortion_weight_s=2.0, compute_time_s=c, bit_levels=(2, 4, 8, 16))
    rate = w * np.log2(1 + pmax * g / (N0 * w))
    levels = np.array([2, 4, 8, 16])
    j = c + 10 * (10_000 * levels + 640) / rate + 2.0 / (2.0**levels - 1) ** 2
    alloc = solve_sflam(problem)
    assert alloc.bits_per_value[0] == levels[np.argmin(j)]
    assert alloc.objective == pytest.approx(j.min(), rel=1e-9)
    assert alloc.power_w[0] == pytest.approx(pmax)


def test_weight_extremes():
    rng = np.random.default_rng(3)
    p0 = random_sflam(rng, 6, 0.0)
    a0 = solve_sflam(p0)
    assert np.all(a0.bits_per_value[a0.ok] == 2)
    big = solve_sflam(SflamProblem(**{**p0.__dict__, "distortion_weight_s": 1e9}))
    assert np.all(big.bits_per_value[big.ok] >= a0.bits_per_value[big.ok])
    assert big.bits_per_value[big.ok].mean() > 2


@pytest.mark.parametrize("band_hz", [20e6, 2e6])
def test_bcd_matches_exhaustive_on_small_instances(band_hz):
    rng = np.random.default_rng([20260514, int(band_hz)])
    gaps, served = [], 0
    for _ in range(300):
        n = int(rng.integers(1, 5))
        levels = (2, 4, 8, 16) if rng.random() < 0.5 else (2, 4, 8)
        problem = random_sflam(rng, n, float(10 ** rng.uniform(-1.0, 2.0)), levels)
        problem = SflamProblem(**{**problem.__dict__, "total_bandwidth_hz": band_hz})
        bcd = solve_sflam(problem)
        ref = solve_sflam(problem, "exhaustive")
        check_feasible(problem, bcd)
        check_feasible(problem, ref)
        assert bcd.status == ref.status
        if ref.num_ok:
            served += 1
            gaps.append(bcd.objective / ref.objective - 1)
    gaps = np.array(gaps)
    assert served > 250
    assert np.mean(gaps <= 1e-9) >= 0.95
    assert gaps.max() <= 0.02
    assert gaps.min() >= -1e-9  # the exhaustive optimum is never beaten


def test_exclusions_use_reasons():
    rng = np.random.default_rng(7)
    base = random_sflam(rng, 4, 1.0)
    gain = base.gain_lin.copy()
    gain[1] = 1e-20  # cannot send even the fewest bits by its deadline
    energy = base.energy_budget_j.copy()
    energy[2] = base.compute_energy_j[2] * 1.0000001  # nothing left to transmit
    problem = SflamProblem(**{**base.__dict__, "gain_lin": gain, "energy_budget_j": energy})
    alloc = solve_sflam(problem)
    assert alloc.status[1] == Reason.DEADLINE
    assert alloc.status[2] == Reason.ENERGY
    assert alloc.bits_per_value[1] == 0 and alloc.bandwidth_hz[2] == 0
    check_feasible(problem, alloc)


def test_large_instance_is_feasible_and_uses_the_band():
    problem = random_sflam(np.random.default_rng(11), 60, 10.0)
    alloc = solve_sflam(problem)
    check_feasible(problem, alloc)
    assert alloc.num_ok > 50
    assert alloc.bandwidth_hz.sum() == pytest.approx(problem.total_bandwidth_hz, rel=1e-6)
    assert np.all(alloc.tokens[alloc.ok] == 64)


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        solve_sflam(random_sflam(np.random.default_rng(0), 2, 1.0), "sca")
