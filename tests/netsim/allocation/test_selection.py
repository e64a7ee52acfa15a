"""Mobility-aware selection by dwell time."""

from __future__ import annotations

import numpy as np
import pytest

from netsim.allocation import select_by_dwell

def test_select_by_dwell():
    sel, why = select_by_dwell(np.array([5.0, 1.0, np.inf, 2.0]), 2.0, margin_s=0.5,
                               in_cell=np.array([True, True, True, False]))
    assert sel.tolist() == [True, False, True, False]
    assert why == ("ok", "left-cell", "ok", "left-cell")
    with pytest.raises(ValueError, match="time_left_s"):
        select_by_dwell(np.array([-1.0]), 1.0)
    with pytest.raises(ValueError, match="estimated_round_s"):
        select_by_dwell(np.array([1.0]), np.nan)
