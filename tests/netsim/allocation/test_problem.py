"""The allocation problem container: validation, immutability, the forward model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from allocation_reference import N0, small_problem

from netsim.allocation import AllocationProblem

@pytest.mark.parametrize(
    "field, value",
    [
        ("gain_lin", np.array([1e-9, -1e-11, 1e-12])),
        ("gain_lin", np.array([1e-9, 0.0, 1e-12])),
        ("gain_lin", np.array([1e-9, np.nan, 1e-12])),
        ("noise_psd_w_per_hz", 0.0),
        ("total_bandwidth_hz", 0.0),
        ("total_bandwidth_hz", -1e6),
        ("max_power_w", np.array([0.2, 0.0, 0.2])),
        ("energy_budget_j", -1.0),
        ("deadline_s", np.array([1.0, 0.0, 1.0])),
        ("deadline_s", np.array([1.0, 2.0])),
        ("bits_per_token", 0.0),
        ("compute_time_s", -0.1),
        ("compute_energy_j", np.inf),
        ("compute_time_per_token_s", -1e-3),
        ("retention", np.tile([0.0, 0.5, 0.4, 1.0], (3, 1))),
        ("retention", np.tile([0.1, 0.5, 0.6, 1.0], (3, 1))),
        ("retention", np.zeros((2, 4))),
        ("retention", np.zeros((3, 1))),
        ("min_tokens", 9),
        ("min_tokens", -1),
        ("extra_tokens", -0.5),
        ("extra_tokens", np.nan),
    ],
)
def test_validation_rejects(field, value):
    with pytest.raises(ValueError, match=field):
        small_problem(**{field: value})


def test_validation_rejects_empty_payload():
    with pytest.raises(ValueError, match="min_tokens"):
        small_problem(min_tokens=0, extra_tokens=0)


def test_problem_is_frozen_and_arrays_read_only():
    p = small_problem()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.total_bandwidth_hz = 1.0
    with pytest.raises(ValueError):
        p.gain_lin[0] = 1.0
    assert p.deadline_s.shape == (3,) and p.max_tokens == 8


def test_evaluate_forward_model_by_hand():
    # SNR p g / (N0 b) = 3 on 1 MHz: rate 1e6 log2(4) = 2 Mbit/s. Payload 1e5 x (8 + 2) = 1e6
    # bits: 0.5 s on air; latency 0.2 + 0.5 = 0.7 s; energy 0.1 + 0.1 W x 0.5 s = 0.15 J.
    b, p = 1e6, 0.1
    problem = AllocationProblem(
        gain_lin=np.array([3 * N0 * b / p]), noise_psd_w_per_hz=N0, total_bandwidth_hz=20e6,
        max_power_w=0.2, energy_budget_j=1.0, deadline_s=3.0, bits_per_token=1e5,
        retention=np.linspace(0.0, 1.0, 9)[None], compute_time_s=0.2, compute_energy_j=0.1,
    )
    latency, energy = problem.evaluate(np.array([8]), np.array([b]), np.array([p]))
    np.testing.assert_allclose(latency, [0.7], rtol=1e-14)
    np.testing.assert_allclose(energy, [0.15], rtol=1e-14)
