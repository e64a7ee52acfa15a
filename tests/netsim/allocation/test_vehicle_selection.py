"""Tests of netsim.allocation.vehicle_selection: EMD, eligibility, ranking, ties, radio."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.stats import wasserstein_distance

from netsim.allocation import random_problem
from netsim.allocation.vehicle_selection import label_emd, select_and_allocate, select_vehicles
from netsim.reasons import Reason


def transport_emd(p: np.ndarray, q: np.ndarray, cost: np.ndarray) -> float:
    """Earth mover's distance as the transport linear programme (independent reference)."""
    c = p.size
    a_eq = np.vstack([np.kron(np.eye(c), np.ones(c)), np.kron(np.ones(c), np.eye(c))])
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=np.r_[p, q], bounds=(0, None), method="highs")
    return float(res.fun)


def test_emd_hand_examples():
    # All mass in class 0 vs split over 1 and 2: everything moves, EMD 1.
    assert label_emd([1, 0, 0], [0, 1, 1]) == pytest.approx(1.0)
    # Half the mass moves from class 1 to class 2.
    assert label_emd([[5, 5, 0]], [5, 0, 5])[0] == pytest.approx(0.5)
    assert label_emd([3, 1], [6, 2]) == pytest.approx(0.0)


def test_emd_is_the_unit_cost_transport_problem():
    rng = np.random.default_rng(4)
    for c in (2, 3, 5, 10):
        for _ in range(10):
            p, q = rng.dirichlet(np.ones(c)), rng.dirichlet(np.ones(c))
            unit = 1.0 - np.eye(c)
            assert label_emd(p, q) == pytest.approx(transport_emd(p, q, unit), abs=1e-9)


def test_emd_against_scipy_on_ordinal_labels():
    rng = np.random.default_rng(5)
    labels = np.arange(2.0)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(2)), rng.dirichlet(np.ones(2))
        # Two classes: the ordinal distance |0 - 1| is the unit distance, so they agree.
        assert label_emd(p, q) == pytest.approx(wasserstein_distance(labels, labels, p, q))
    labels = np.arange(6.0)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        # More classes: ordinal distances are >= 1, so the ordinal EMD is an upper bound.
        assert label_emd(p, q) <= wasserstein_distance(labels, labels, p, q) + 1e-12
    assert wasserstein_distance(labels[:3], labels[:3], [1, 0, 0], [0, 0.5, 0.5]) == 1.5


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 12), st.integers(0, 2**32 - 1), st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_a_vehicle_leaving_before_the_round_ends_is_never_selected(n, seed, w_d, w_e):
    rng = np.random.default_rng(seed)
    t_left = np.where(rng.random(n) < 0.2, np.inf, rng.uniform(0.0, 10.0, n))
    est = rng.uniform(0.5, 5.0, n)
    hist = rng.integers(0, 20, (n, 4)) + 1
    sel = select_vehicles(t_left, est, hist, hist.sum(axis=0), int(rng.integers(0, n + 1)),
                          dwell_weight=w_d, emd_weight=w_e, margin_s=0.5)
    leaves = t_left < est + 0.5
    assert not np.any(sel.selected & leaves)
    assert all(r == Reason.LEFT_CELL for r in np.array(sel.reasons, dtype=object)[leaves])
    # Every eligible vehicle left out scores no better than every selected one.
    eligible_out = ~leaves & ~sel.selected
    if sel.selected.any() and eligible_out.any():
        assert sel.score[eligible_out].max() <= sel.score[sel.selected].min()


def test_lower_emd_wins_at_equal_dwell():
    glob = np.array([1, 1, 1, 1])
    hist = np.array([[9, 1, 1, 1], [3, 3, 3, 3], [5, 5, 1, 1], [1, 1, 1, 9]])
    sel = select_vehicles([10.0] * 4, 2.0, hist, glob, 2)
    np.testing.assert_array_equal(sel.selected, [False, True, True, False])
    np.testing.assert_allclose(sel.dwell, 0.8)
    np.testing.assert_allclose(sel.emd, [0.5, 0.0, 1 / 3, 0.5])
    assert sel.reasons == (Reason.NOT_SCHEDULED, Reason.ALLOCATED, Reason.ALLOCATED,
                           Reason.NOT_SCHEDULED)


def test_dwell_trades_against_emd():
    glob = np.ones(2)
    hist = np.array([[1, 1], [3, 1]])  # EMD 0 and 0.25
    t_left = np.array([2.5, np.inf])  # dwell 0.2 and 1
    assert select_vehicles(t_left, 2.0, hist, glob, 1).selected.tolist() == [False, True]
    assert select_vehicles(t_left, 2.0, hist, glob, 1, dwell_weight=0.1).selected.tolist() == [
        True, False]


def test_ties_are_broken_deterministically():
    hist = np.ones((4, 3))
    sel = select_vehicles([np.inf] * 4, 1.0, hist, np.ones(3), 2)
    np.testing.assert_array_equal(sel.selected, [True, True, False, False])
    # Equal score: the lower EMD first, then the longer time left.
    sel = select_vehicles([5.0, np.inf, 5.0], 1.0, [[1, 1], [1, 1], [1, 1]], [1, 1], 1,
                          dwell_weight=0.0)
    np.testing.assert_array_equal(sel.selected, [False, True, False])


def test_fraction_and_count_limits():
    hist = np.ones((5, 2))
    assert select_vehicles([9.0] * 5, 1.0, hist, [1, 1], fraction=0.5).selected.sum() == 3
    sel = select_vehicles([9.0, 0.0, 9.0, 0.5, 9.0], 1.0, hist, [1, 1], 5)
    np.testing.assert_array_equal(sel.selected, [True, False, True, False, True])


@pytest.mark.parametrize("kwargs, name", [
    (dict(time_left_s=[-1.0, 1.0]), "time_left_s"),
    (dict(expected_round_s=0.0), "expected_round_s"),
    (dict(num_selected=None), "num_selected"),
    (dict(fraction=1.5, num_selected=None), "fraction"),
    (dict(emd_weight=-1.0), "emd_weight"),
    (dict(label_hist=[[1, 1, 1], [1, 1, 1]]), "label_hist"),
    (dict(global_hist=[0, 0]), "global_hist"),
])
def test_validation_names_the_argument(kwargs, name):
    args = dict(time_left_s=[5.0, 5.0], expected_round_s=1.0, label_hist=[[1, 1], [1, 2]],
                global_hist=[1, 1], num_selected=1)
    with pytest.raises(ValueError, match=name):
        select_vehicles(**{**args, **kwargs})


def test_select_and_allocate_keeps_reasons_and_serves_the_selected():
    rng = np.random.default_rng(9)
    problem = random_problem(rng, 8, 16)
    t_left = np.array([0.5, 30, 30, 30, 30, 30, 1.0, np.inf])
    hist = rng.integers(1, 30, (8, 10))
    sel = select_vehicles(t_left, 2.0, hist, hist.sum(axis=0), 4)
    alloc = select_and_allocate(problem, sel)
    assert alloc.status[0] == Reason.LEFT_CELL and alloc.status[6] == Reason.LEFT_CELL
    assert sum(s == Reason.NOT_SCHEDULED for s in alloc.status) == 2
    served = alloc.ok
    assert np.all(sel.selected[served])
    assert np.all(alloc.tokens[served] == problem.max_tokens)
    assert alloc.bandwidth_hz.sum() <= problem.total_bandwidth_hz * (1 + 1e-9)
    assert np.all(alloc.bandwidth_hz[~sel.selected] == 0)
