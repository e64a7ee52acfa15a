"""The one vocabulary of stop reasons: its strings, and that every netsim part speaks it."""

import numpy as np
import pytest

from netsim.allocation import max_ste, random_problem, select_by_dwell
from netsim.reasons import Reason


@pytest.mark.parametrize(
    ("member", "value"),
    [
        (Reason.COMPLETED, ""),
        (Reason.ALLOCATED, "ok"),
        (Reason.DEADLINE, "deadline"),
        (Reason.ENERGY, "energy"),
        (Reason.BATTERY, "battery"),
        (Reason.LEFT_CELL, "left-cell"),
        (Reason.CAPACITY, "capacity"),
        (Reason.NOT_SCHEDULED, "not-scheduled"),
        (Reason.NOT_SAMPLED, "not-sampled"),
    ],
)
def test_members_are_their_strings(member, value):
    # Trace files and the scenarios hold plain strings: a member must equal and print as one.
    assert member == value and str(member) == value and f"{member}" == value
    assert Reason(value) is member


def test_completed_is_the_only_falsy_reason():
    assert [r for r in Reason if not r] == [Reason.COMPLETED]


def test_no_out_of_cell_spelling():
    with pytest.raises(ValueError):
        Reason("out-of-cell")


def test_selection_and_allocation_statuses_are_reasons():
    selected, reasons = select_by_dwell(np.array([0.0, 5.0, np.inf]), 1.0)
    assert reasons == (Reason.LEFT_CELL, Reason.ALLOCATED, Reason.ALLOCATED)
    problem = random_problem(np.random.default_rng(0), 3, 8)
    alloc = max_ste(problem, selected=selected, reasons=reasons)
    assert all(isinstance(s, Reason) for s in alloc.status)
    assert alloc.status[0] == "left-cell"
